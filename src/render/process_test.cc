// DefaultProcessLauncher(): how renderers are run.
#include "util/process.h"

#include <fcntl.h>
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
#include <optional>
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

// A renderer started with a uid runs as that uid with no groups and no
// capabilities (as root; otherwise the launch fails to switch and says so).
TEST(ProcessTest, RunsAsTheGivenUid) {
  Lines lines;
  ProcessSpec spec = Shell("id -u; id -g; id -G; grep CapEff /proc/self/status");
  spec.uid = 2099999500;
  spec.gid = 2099999501;
  auto proc = DefaultProcessLauncher()->Start(spec, lines.Callback());
  if (::geteuid() != 0) {
    EXPECT_FALSE(proc.ok());
    return;
  }
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  std::vector<std::string> want = {"2099999500", "2099999501", "2099999501",
                                   "CapEff:\t0000000000000000"};
  EXPECT_EQ(lines.Get(), want);
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

TEST(ProcessTest, WaitForTimesOutWhileRunningThenReturnsTheExitCode) {
  Tree t;
  ASSERT_NO_FATAL_FAILURE(StartTree(&t));
  EXPECT_EQ(t.proc->WaitFor(0), std::nullopt);
  EXPECT_EQ(t.proc->WaitFor(10), std::nullopt);
  t.proc->KillTree(0);
  EXPECT_EQ(t.proc->WaitFor(30000), 128 + SIGKILL);
  EXPECT_TRUE(WaitForExit(t.grandchild_fd));
  EXPECT_EQ(t.proc->Wait(), 128 + SIGKILL);  // WaitFor finished as Wait does

  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(Shell("echo hi; exit 5"), lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->WaitFor(30000), 5);
  EXPECT_EQ(lines.Get(), std::vector<std::string>{"hi"});  // every line delivered
  EXPECT_EQ((*proc)->WaitFor(0), 5);
}

TEST(ProcessTest, InheritsOnlyStdio) {
  // A descriptor the launching process left inheritable does not leak.
  int leaky = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(leaky, 3);
  const std::string fd = std::to_string(leaky);
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(
      Shell("for f in 0 1 2 " + fd +
            "; do if [ -e /proc/$$/fd/$f ]; then echo $f open; else echo $f closed; fi; done"),
      lines.Callback());
  ::close(leaky);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  std::vector<std::string> want = {"0 open", "1 open", "2 open", fd + " closed"};
  EXPECT_EQ(lines.Get(), want);
}

bool g_usr1_seen = false;
void OnUsr1(int) { g_usr1_seen = true; }

TEST(ProcessTest, ChildStartsWithDefaultSignalsAndAnEmptyMask) {
  // The launching thread blocks SIGUSR2, handles SIGUSR1, ignores SIGPIPE
  // (as the render server does); none of that reaches the renderer.
  struct sigaction usr1 = {}, old_usr1, ign = {}, old_pipe;
  usr1.sa_handler = OnUsr1;
  ign.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGUSR1, &usr1, &old_usr1), 0);
  ASSERT_EQ(::sigaction(SIGPIPE, &ign, &old_pipe), 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, &old_mask), 0);

  // grep reads its own mask (a shell would block signals around its
  // children); then a shell shows SIGUSR1 has its default action.
  Lines lines;
  ProcessSpec grep;
  grep.argv = {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"};
  auto proc = DefaultProcessLauncher()->Start(grep, lines.Callback());
  auto usr1_proc = DefaultProcessLauncher()->Start(Shell("kill -USR1 $$; echo survived"), nullptr);
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  ASSERT_TRUE(usr1_proc.ok()) << usr1_proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  int code = (*usr1_proc)->Wait();
  ::sigaction(SIGUSR1, &old_usr1, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);

  EXPECT_EQ(code, 128 + SIGUSR1) << "SIGUSR1 must kill the child (default action)";
  EXPECT_FALSE(g_usr1_seen);
  std::vector<std::string> got = lines.Get();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], "SigBlk:\t0000000000000000");
  ASSERT_EQ(got[1].rfind("SigIgn:\t", 0), 0u) << got[1];
  const uint64_t ignored = std::stoull(got[1].substr(8), nullptr, 16);
  EXPECT_EQ(ignored & (uint64_t{1} << (SIGPIPE - 1)), 0u) << got[1];
}

TEST(ProcessTest, ChildDiesWithTheThreadThatStartedIt) {
  std::unique_ptr<RunningProcess> proc;
  Status st;
  std::thread starter([&] {
    auto r = DefaultProcessLauncher()->Start(Shell("sleep 100"), nullptr);
    if (r.ok()) {
      proc = std::move(*r);
    } else {
      st = r.status();
    }
  });
  starter.join();
  ASSERT_TRUE(proc) << st.ToString();
  EXPECT_EQ(proc->WaitFor(30000), 128 + SIGKILL);
}

TEST(ProcessTest, ScriptWithoutInterpreterLineRunsUnderSh) {
  Result<std::string> dir = MakeTempDir("ff-process-test");
  ASSERT_TRUE(dir.ok()) << dir.status().ToString();
  const std::string script = JoinPath(*dir, "plain-script");
  ASSERT_TRUE(WriteFileAtomic(script, "echo \"$# $1\"\n", 0755).ok());
  ProcessSpec p;
  p.argv = {script, "first"};
  for (int i = 0; i < 2000; ++i) p.argv.push_back(std::string(100, 'x'));
  Lines lines;
  auto proc = DefaultProcessLauncher()->Start(p, lines.Callback());
  ASSERT_TRUE(proc.ok()) << proc.status().ToString();
  EXPECT_EQ((*proc)->Wait(), 0);
  EXPECT_EQ(lines.Get(), std::vector<std::string>{"2001 first"});
  EXPECT_TRUE(RemoveAll(*dir).ok());
}

TEST(ProcessTest, EmptyArgvIsAnError) {
  auto proc = DefaultProcessLauncher()->Start(ProcessSpec{}, nullptr);
  ASSERT_FALSE(proc.ok());
  EXPECT_EQ(proc.status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ff
