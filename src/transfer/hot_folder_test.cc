#include "transfer/hot_folder.h"

#include <chrono>
#include <thread>

#include "gtest/gtest.h"
#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

class HotFolderTest : public TempDirFixture {};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

TEST_F(HotFolderTest, WakesOnRenameIntoFolderKickAndStop) {
  Result<std::unique_ptr<HotFolderWatcher>> w = HotFolderWatcher::Open(Path("in"), 60000);
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(PathExists(Path("in")));

  // A package renamed into place wakes a waiter long before the rescan.
  ASSERT_TRUE(MakeDirs(Path(".staging")).ok());
  std::thread mover([&] { ::rename(Path(".staging").c_str(), Path("in/pkg").c_str()); });
  int64_t start = NowMs();
  EXPECT_TRUE((*w)->Wait(30000));
  EXPECT_LT(NowMs() - start, 20000);
  mover.join();

  std::thread kicker([&] { (*w)->Kick(); });
  start = NowMs();
  EXPECT_TRUE((*w)->Wait(30000));
  EXPECT_LT(NowMs() - start, 20000);
  kicker.join();

  // Nothing happened: returns after the timeout.
  EXPECT_TRUE((*w)->Wait(1));

  std::thread stopper([&] { (*w)->Stop(); });
  EXPECT_FALSE((*w)->Wait(30000));
  stopper.join();
  EXPECT_FALSE((*w)->Wait(30000));
}

TEST_F(HotFolderTest, RescanPeriodBoundsTheWait) {
  Result<std::unique_ptr<HotFolderWatcher>> w = HotFolderWatcher::Open(Path("in"), 10);
  ASSERT_TRUE(w.ok());
  int64_t start = NowMs();
  EXPECT_TRUE((*w)->Wait(60000));
  EXPECT_LT(NowMs() - start, 30000);
}

}  // namespace
}  // namespace ff
