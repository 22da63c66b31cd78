// DefaultProcessLauncher(): how renderers are run.
#include "util/process.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

// Collects output lines; lets a test block until a number of lines arrived.
class Lines {
 public:
  LineCallback Callback() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(line);
      cv_.notify_all();
    };
  }
  // False if fewer than `n` lines arrived within a generous deadline.
  bool WaitFor(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return lines_.size() >= n; });
  }
  std::vector<std::string> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
};

ProcessSpec Shell(const std::string& script) {
  ProcessSpec p;
  p.argv = {"/bin/sh", "-c", script};
  return p;
}

// True once process `pid` (not our child) has terminated, waiting up to 30s
// via a pidfd. `pidfd` must have been opened while the process was alive.
bool WaitForExit(int pidfd) {
  struct pollfd p = {pidfd, POLLIN, 0};
  int n;
  do {
    n = ::poll(&p, 1, 30000);
  } while (n < 0 && errno == EINTR);
  return n == 1 && (p.revents & POLLIN);
}

// Starts `sh -c 'sleep 100 & echo $!; sleep 100'` and opens a pidfd on the
// background grandchild.
struct Tree {
  Lines lines;  // outlives proc, whose reader thread writes to it
  std::unique_ptr<RunningProcess> proc;
  int grandchild_fd = -1;
  ~Tree() {
    if (grandchild_fd >= 0) ::close(grandchild_fd);
  }
};

void StartTree(Tree* t) {
  auto proc =
      DefaultProcessLauncher()->Start(Shell("sleep 100 & echo $!; sleep 100"), t->lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  t->proc = std::move(*proc);
  ASSERT_TRUE(t->lines.WaitFor(1));
  pid_t grandchild = std::atoi(t->lines.Get()[0].c_str());
  ASSERT_GT(grandchild, 0);
  t->grandchild_fd = static_cast<int>(::syscall(SYS_pidfd_open, grandchild, 0));
  ASSERT_GE(t->grandchild_fd, 0) << "pidfd_open: " << std::strerror(errno);
}

TEST(ProcessTest, DeliversLinesAndExitCode) {
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(Shell(R"(echo a; printf "b\rc\n"; exit 3)"),
                                              lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_GT((*proc)->pid(), 0);
  EXPECT_EQ((*proc)->Wait(), 3);
  std::vector<std::string> want = {"a", "b", "c"};
  EXPECT_EQ(lines.Get(), want);
  // Wait() is idempotent.
  EXPECT_EQ((*proc)->Wait(), 3);
}

TEST(ProcessTest, StderrIsMergedAndUnterminatedLastLineDelivered) {
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(Shell("echo out; echo err >&2; printf tail"),
                                              lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  std::vector<std::string> want = {"out", "err", "tail"};
  EXPECT_EQ(lines.Get(), want);
}

TEST(ProcessTest, CwdAndExtraEnvironment) {
  Result<std::string> dir = MakeTempDir("ff-process-test");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  char real[PATH_MAX];
  ASSERT_NE(::realpath(dir->c_str(), real), nullptr);
  ProcessSpec p = Shell("pwd -P; echo \"$FF_PROCESS_TEST\"");
  p.cwd = *dir;
  p.env = {"FF_PROCESS_TEST=hello world"};
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(p, lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  std::vector<std::string> want = {real, "hello world"};
  EXPECT_EQ(lines.Get(), want);
  EXPECT_TRUE(RemoveAll(*dir).ok());
}

TEST(ProcessTest, StdinIsEmpty) {
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(Shell("cat; echo done"), lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  EXPECT_EQ(lines.Get(), std::vector<std::string>{"done"});
}

TEST(ProcessTest, KillTreeKillsTheWholeGroup) {
  Tree t;
  ASSERT_NO_FATAL_FAILURE(StartTree(&t));
  // No grace: SIGKILL to the group. The background grandchild dies with the
  // shell, before anyone calls Wait().
  t.proc->KillTree(0);
  EXPECT_TRUE(WaitForExit(t.grandchild_fd)) << "the grandchild survived KillTree";
  EXPECT_EQ(t.proc->Wait(), 128 + SIGKILL);
  t.proc->KillTree(0);  // harmless after exit
}

TEST(ProcessTest, KillTreeWithGraceSendsTermFirst) {
  Tree t;
  ASSERT_NO_FATAL_FAILURE(StartTree(&t));
  int code = -1;
  std::thread waiter([&] { code = t.proc->Wait(); });
  // The shell dies of SIGTERM; KillTree returns as soon as Wait() saw that,
  // well before the grace period.
  auto start = std::chrono::steady_clock::now();
  t.proc->KillTree(60000);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(30));
  waiter.join();
  EXPECT_EQ(code, 128 + SIGTERM);
  EXPECT_TRUE(WaitForExit(t.grandchild_fd)) << "the grandchild survived KillTree";
}

TEST(ProcessTest, DestructorKillsARunningProcess) {
  Tree t;
  ASSERT_NO_FATAL_FAILURE(StartTree(&t));
  t.proc.reset();
  EXPECT_TRUE(WaitForExit(t.grandchild_fd));
}

TEST(ProcessTest, MissingExecutableIsAnErrorNamingIt) {
  ProcessSpec p;
  p.argv = {"/nonexistent/ff-no-such-renderer", "x"};
  auto proc = DefaultProcessLauncher()->Start(p, nullptr);
  ASSERT_FALSE(proc.ok());
  EXPECT_TRUE(HasSubstr(proc.status().message(), "/nonexistent/ff-no-such-renderer"));

  p.argv = {"ff-no-such-renderer-in-path"};
  proc = DefaultProcessLauncher()->Start(p, nullptr);
  ASSERT_FALSE(proc.ok());
  EXPECT_TRUE(HasSubstr(proc.status().message(), "ff-no-such-renderer-in-path"));
}

TEST(ProcessTest, MissingCwdIsAnError) {
  Result<std::string> dir = MakeTempDir("ff-process-test");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  ProcessSpec p = Shell("echo never");
  p.cwd = JoinPath(*dir, "missing");
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(p, lines.Callback());
  ASSERT_FALSE(proc.ok());
  EXPECT_TRUE(HasSubstr(proc.status().message(), p.cwd));
  EXPECT_TRUE(lines.Get().empty());
  EXPECT_TRUE(RemoveAll(*dir).ok());
}

TEST(ProcessTest, EmptyArgvIsAnError) {
  auto proc = DefaultProcessLauncher()->Start(ProcessSpec{}, nullptr);
  ASSERT_FALSE(proc.ok());
  EXPECT_EQ(proc.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ff
