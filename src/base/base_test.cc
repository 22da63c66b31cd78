#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

#include "base/json_fields.h"
#include "base/mutex.h"
#include "base/open_beneath.h"
#include "base/rfc3339.h"
#include "base/unique_fd.h"
#include "base/units.h"

namespace ff {
namespace {

// The sandbox's tests (sandbox_test.cc) cover the plain forms ("512M",
// "2g", "64 MiB", "1.5 KiB"); these the rest.
TEST(UnitsTest, ParsesAndFormatsByteSizes) {
  EXPECT_EQ(*ParseByteSize(" 2g "), 2LL << 30);
  EXPECT_EQ(ParseByteSize("1.5G").status().message(),
            "byte size '1.5G': unknown suffix '.5G' (use K, M, G or T, powers of 1024)");
  EXPECT_EQ(FormatBytes(100), "100 bytes");
  EXPECT_EQ(FormatBytes(1LL << 30, ByteStyle::kOneDecimal), "1.0 GiB");
  EXPECT_EQ(FormatBytes(100, ByteStyle::kOneDecimal), "100 B");
}

TEST(Rfc3339Test, RoundTripsAndRejects) {
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:01Z"), 1000);
  EXPECT_EQ(*ParseRfc3339("2026-11-21T19:00:00+01:00"), *ParseRfc3339("2026-11-21T18:00:00Z"));
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-11-21T18:00:00.250Z")), "2026-11-21T18:00:00.250Z");
  EXPECT_FALSE(ParseRfc3339("2026-02-30T00:00:00Z").ok());
}

class OpenBeneathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ff-base-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    ASSERT_EQ(::mkdir((dir_ + "/a").c_str(), 0700), 0);
    UniqueFd f(::open((dir_ + "/a/file").c_str(), O_WRONLY | O_CREAT, 0600));
    ASSERT_TRUE(f.valid());
    ASSERT_EQ(::symlink("/etc", (dir_ + "/link").c_str()), 0);
    root_.Reset(::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_;
  UniqueFd root_;
};

TEST_F(OpenBeneathTest, OpensInsideRefusesLinksAndEscapes) {
  UniqueFd f(OpenBeneath(root_.get(), "a/file", O_RDONLY));
  EXPECT_TRUE(f.valid());
  errno = 0;
  UniqueFd l(OpenBeneath(root_.get(), "link/passwd", O_RDONLY));
  EXPECT_FALSE(l.valid());
  EXPECT_EQ(errno, ELOOP);
  UniqueFd up(OpenBeneath(root_.get(), "a/../../etc/passwd", O_RDONLY));
  EXPECT_FALSE(up.valid());
  EXPECT_EQ(errno, EXDEV);
  UniqueFd self(OpenBeneath(root_.get(), "", O_RDONLY | O_DIRECTORY));
  EXPECT_TRUE(self.valid());
}

TEST(UniqueFdTest, ClosesOnceAndMoves) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  UniqueFd a(fds[0]);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), fds[0]);
  EXPECT_EQ(b.Close(), 0);
  EXPECT_EQ(::fcntl(fds[0], F_GETFD), -1);  // closed
  ::close(fds[1]);
}

TEST(MutexTest, CondVarWakesAWaiter) {
  Mutex mu;
  CondVar cv;
  bool ready = false;
  std::thread t([&] {
    MutexLock lock(&mu);
    ready = true;
    cv.SignalAll();
  });
  {
    MutexLock lock(&mu);
    while (!ready) cv.Wait(lock);
    EXPECT_TRUE(ready);
  }
  t.join();
}

TEST(JsonFieldsTest, NamesTheKeyAndChecksRange) {
  auto j = nlohmann::json::parse(R"({"n": 5, "f": 1.5, "s": "x", "big": 18446744073709551615})");
  EXPECT_EQ(*JsonInt(j, "n"), 5);
  EXPECT_EQ(*JsonInt(j, "missing", 7), 7);
  EXPECT_EQ(JsonInt(j, "f").status().message(),
            "f: not an integer in -9223372036854775808..9223372036854775807");
  EXPECT_FALSE(JsonInt(j, "big").ok());
  EXPECT_FALSE(JsonInt(j, "n", std::nullopt, 0, 4).ok());
  EXPECT_EQ(JsonInt(j, "missing").status().message(), "missing: missing");
  EXPECT_EQ(*JsonString(j, "s"), "x");
  EXPECT_FALSE(JsonString(j, "n").ok());
}

}  // namespace
}  // namespace ff
