// Unit tests of the wrapper's pure parts: the command line both ends share,
// sizes, the report, and the output collector (on a plain directory).
// What the sandbox holds against is tested end to end, as root, by
// tests/sandbox (the escape suite).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sandbox/collector.h"
#include "sandbox/spec.h"
#include "sandbox/wrapper.h"
#include "util/fs.h"

namespace ff::sandbox {
namespace {

std::vector<std::string> Args(std::initializer_list<std::string> extra) {
  std::vector<std::string> a = {"--name",     "rs1-0-j1-c0-a1", "--uid",
                                "2000000001", "--gid",          "2000000001"};
  a.insert(a.end(), extra);
  return a;
}

TEST(WrapSpecTest, ArgumentsRoundTrip) {
  WrapSpec s;
  s.name = "rs1-0-j7-c3-a2";
  s.uid = 2000000005;
  s.gid = 2000000006;
  s.system = {{"/usr", "/usr"}, {"/etc/ld.so.cache", "/etc/ld.so.cache"}};
  s.input = "/srv/rs1/secure/studio/7/0/input";
  s.central = {{"/srv/rs1/secure/studio/7/0/input/assets", "/studio/assets/clock"}};
  s.output = "/studio/renders/clock";
  s.collect_to = "/srv/rs1/secure/studio/7/0/output";
  s.env = {"OMP_NUM_THREADS=2"};
  s.limits.memory_bytes = 2LL << 30;
  s.limits.processes = 256;
  s.limits.wall_ms = 3600000;
  s.report = "/srv/rs1/secure/studio/7/0/report.json";
  s.argv = {"/usr/bin/povray", "+Iclock.pov"};
  auto back = ParseWrapArgs(ToArgs(s));
  ASSERT_TRUE(back.ok()) << back.status().message();
  EXPECT_EQ(ToArgs(*back), ToArgs(s));
  EXPECT_EQ(back->central[0].sandbox, "/studio/assets/clock");
  EXPECT_EQ(back->limits.memory_bytes, 2LL << 30);
}

TEST(WrapSpecTest, ErrorsNameTheOption) {
  auto expect_error = [](std::vector<std::string> args, const std::string& needle) {
    auto r = ParseWrapArgs(args);
    ASSERT_FALSE(r.ok()) << needle;
    EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().message();
  };
  expect_error({"--name", "x", "--uid", "0", "--gid", "5", "--", "/bin/true"}, "--uid");
  expect_error(Args({"--memory", "lots", "--", "/bin/true"}), "--memory");
  expect_error(Args({"--central", "/a", "--", "/bin/true"}), "--central");
  expect_error(Args({"--central", "/a:/proc/x", "--", "/bin/true"}), "overlaps /proc");
  expect_error(Args({"--output", "/studio/r", "--", "/bin/true"}), "--collect-to");
  expect_error(Args({"--central", "/a:/studio", "--output", "/studio/r", "--collect-to", "/c", "--",
                     "/bin/true"}),
               "overlaps");
  expect_error(Args({"--central", "/a:/studio/../etc", "--", "/bin/true"}), "normalised");
  expect_error(Args({"--bogus", "--", "/bin/true"}), "unknown option '--bogus'");
  expect_error(Args({}), "no program");
  expect_error({"--name", "../x", "--uid", "5", "--gid", "5", "--", "/bin/true"}, "--name");
}

TEST(WrapSpecTest, SizesAndSummary) {
  EXPECT_EQ(*ParseByteSize("512M"), 512LL << 20);
  EXPECT_EQ(*ParseByteSize("2g"), 2LL << 30);
  EXPECT_EQ(*ParseByteSize("1000"), 1000);
  EXPECT_FALSE(ParseByteSize("-1").ok());
  EXPECT_FALSE(ParseByteSize("9999999999T").ok());
  EXPECT_EQ(FormatBytes(64LL << 20), "64 MiB");
  EXPECT_EQ(FormatBytes(1536), "1.5 KiB");
  auto s = ParseWrapArgs(Args({"--memory", "64M", "--processes", "32", "--wall-time", "1500",
                               "--central", "/h/a:/studio/a", "--", "/bin/true"}));
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::string all;
  for (const auto& l : SummaryLines(*s)) all += l + "\n";
  EXPECT_NE(all.find("mount /studio/a <- /h/a (read-only, noexec)"), std::string::npos) << all;
  EXPECT_NE(all.find("memory 64 MiB, processes 32, cpu time none, wall time 1.500 s"),
            std::string::npos)
      << all;
}

TEST(WrapReportTest, JsonRoundTrip) {
  WrapReport r;
  r.exit_code = 137;
  r.signal = 9;
  r.limit = "memory";
  r.reason = "out of memory";
  r.collection.collected = {{"f0001.png", 1234}};
  r.collection.refused = {{"evil", "symlink"}};
  r.launch_us = 1500;
  auto back = ReportFromJson(ReportToJson(r));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->limit, "memory");
  EXPECT_EQ(back->collection.collected[0].size, 1234);
  EXPECT_EQ(back->collection.refused[0].why, "symlink");
  EXPECT_FALSE(ReportFromJson("[1]").ok());
  EXPECT_FALSE(ReportFromJson("{\"collected\": [{\"path\": 3}]}").ok());
  // Found by tests/fuzz/render_assignment_fuzz: numbers that are floats or
  // do not fit were converted anyway (undefined behaviour).
  for (const char* bad : {"{\"exit_code\": 1e300}", "{\"signal\": 4294967296}", "{\"cpu_ms\": 1.5}",
                          "{\"wall_ms\": 18446744073709551615}",
                          "{\"collected\": [{\"path\": \"f\", \"size\": -1e30}]}"}) {
    EXPECT_FALSE(ReportFromJson(bad).ok()) << bad;
  }
  auto big = ReportFromJson("{\"exit_code\": -2147483648, \"launch_us\": 9223372036854775807}");
  ASSERT_TRUE(big.ok()) << big.status().ToString();
  EXPECT_EQ(big->exit_code, -2147483648);
  EXPECT_EQ(big->launch_us, 9223372036854775807);
}

TEST(CollectorTest, CopiesRegularFilesAndRefusesEverythingElse) {
  auto dir = MakeTempDir("frameflow-test-collect");
  ASSERT_TRUE(dir.ok());
  const std::string src = *dir + "/src", dest = *dir + "/dest";
  ASSERT_TRUE(MakeDirs(src + "/sub").ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/f0001.png", "frame").ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/sub/log.txt", "log").ok());
  ASSERT_TRUE(WriteFileAtomic(src + "/a", "twice").ok());
  ASSERT_EQ(::link((src + "/a").c_str(), (src + "/b").c_str()), 0);
  ASSERT_EQ(::symlink("/etc/shadow", (src + "/shadow").c_str()), 0);
  ASSERT_EQ(::symlink("/etc", (src + "/etcdir").c_str()), 0);
  ASSERT_EQ(::mkfifo((src + "/pipe").c_str(), 0600), 0);
  int fd = ::open(src.c_str(), O_RDONLY | O_DIRECTORY);
  auto c = CollectOutputs(fd, dest);
  ::close(fd);
  ASSERT_TRUE(c.ok()) << c.status().message();
  std::map<std::string, std::string> refused;
  for (const auto& r : c->refused) refused[r.path] = r.why;
  EXPECT_EQ(refused["shadow"], "symlink");
  EXPECT_EQ(refused["etcdir"], "symlink");
  EXPECT_EQ(refused["pipe"], "fifo");
  EXPECT_EQ(refused["a"], "hard link");
  EXPECT_EQ(refused["b"], "hard link");
  EXPECT_EQ(c->collected.size(), 2u);
  EXPECT_EQ(*ReadFile(dest + "/f0001.png"), "frame");
  EXPECT_EQ(*ReadFile(dest + "/sub/log.txt"), "log");
  EXPECT_FALSE(PathExists(dest + "/shadow"));
  EXPECT_FALSE(PathExists(dest + "/a"));
  EXPECT_FALSE(PathExists(dest + "/pipe"));
  ASSERT_TRUE(RemoveAll(*dir).ok());
}

}  // namespace
}  // namespace ff::sandbox
