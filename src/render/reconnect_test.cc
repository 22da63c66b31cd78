#include "render/reconnect.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

TEST(ReconnectDelayTest, FirstRetryIsQuickAndTheBackoffIsCapped) {
  EXPECT_EQ(ReconnectDelayMs(1), kReconnectFirstDelayMs);
  EXPECT_EQ(ReconnectDelayMs(2), 2 * kReconnectFirstDelayMs);
  EXPECT_EQ(ReconnectDelayMs(3), 4 * kReconnectFirstDelayMs);
  for (int failures = 1; failures < 100; ++failures) {
    EXPECT_GE(ReconnectDelayMs(failures + 1), ReconnectDelayMs(failures)) << failures;
    EXPECT_LE(ReconnectDelayMs(failures), kReconnectMaxDelayMs) << failures;
  }
  EXPECT_EQ(ReconnectDelayMs(1000000), kReconnectMaxDelayMs);
  // A restarted schedule server on a fixed address is found within about a
  // second, so the whole recovery stays within the 2 s goal.
  EXPECT_LE(kReconnectMaxDelayMs, 1000);
}

class AddressFileTest : public TempDirFixture {};

TEST_F(AddressFileTest, EveryAtomicRewriteIsANewVersion) {
  const std::string file = Path("schedule-server.addr");
  EXPECT_EQ(FileVersion(file), "");
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.1:7450\n").ok());
  const std::string first = FileVersion(file);
  EXPECT_NE(first, "");
  EXPECT_EQ(FileVersion(file), first);
  // The same address written again (a restart on a fixed port) is a change too.
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.1:7450\n").ok());
  EXPECT_NE(FileVersion(file), first);
}

TEST_F(AddressFileTest, WaitEndsWhenTheAddressFileIsRewritten) {
  const std::string file = Path("schedule-server.addr");
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.1:40001\n").ok());
  const std::string version = FileVersion(file);
  std::atomic<bool> stop{false};
  std::thread restart([&] { EXPECT_TRUE(WriteFileAtomic(file, "127.0.0.1:40002\n").ok()); });
  // Far longer than the test may take: only the rewrite can end the wait.
  EXPECT_TRUE(WaitForRetry(600'000, &stop, file, version));
  restart.join();
}

TEST_F(AddressFileTest, WaitEndsWhenTheAddressFileAppears) {
  const std::string file = Path("schedule-server.addr");
  std::atomic<bool> stop{false};
  std::thread start([&] { EXPECT_TRUE(WriteFileAtomic(file, "127.0.0.1:40001\n").ok()); });
  EXPECT_TRUE(WaitForRetry(600'000, &stop, file, FileVersion(file)));
  start.join();
}

TEST_F(AddressFileTest, WaitEndsOnStopAndOtherwiseRunsItsCourse) {
  const std::string file = Path("schedule-server.addr");
  ASSERT_TRUE(WriteFileAtomic(file, "127.0.0.1:40001\n").ok());
  std::atomic<bool> stop{true};
  EXPECT_FALSE(WaitForRetry(600'000, &stop, file, FileVersion(file)));
  stop = false;
  EXPECT_FALSE(WaitForRetry(1, &stop, file, FileVersion(file)));
  EXPECT_FALSE(WaitForRetry(1, &stop, "", ""));  // nothing watched
}

}  // namespace
}  // namespace ff
