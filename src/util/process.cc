#include "util/process.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>

namespace ff {

namespace {

// A pidfd becomes readable when the process exits. -1 where the kernel has
// none (before Linux 5.3); WaitFor() then polls instead.
int OpenPidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

class PosixProcess final : public RunningProcess {
 public:
  PosixProcess(pid_t pid, int out_fd, LineCallback cb)
      : pid_(pid), pidfd_(OpenPidfd(pid)), out_fd_(out_fd), cb_(std::move(cb)) {
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~PosixProcess() override {
    if (!waited_) {
      KillTree(0);
      Wait();
    }
    if (reader_.joinable()) reader_.join();
    if (pidfd_ >= 0) ::close(pidfd_);
  }

  int pid() const override { return pid_; }

  void KillTree(int grace_ms) override {
    if (exited_.load()) {
      // The leader is gone; descendants may survive in its group.
      ::kill(-pid_, SIGKILL);
      return;
    }
    ::kill(-pid_, grace_ms > 0 ? SIGTERM : SIGKILL);
    if (grace_ms <= 0) return;
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(grace_ms), [&] { return exited_.load(); })) {
      ::kill(-pid_, SIGKILL);
    } else {
      ::kill(-pid_, SIGKILL);  // leftovers in the group
    }
  }

  int Wait() override {
    std::lock_guard<std::mutex> wait_lock(wait_mu_);
    if (!waited_) {
      int status = 0;
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        exited_ = true;
      }
      cv_.notify_all();
      // Descendants still holding the pipe open would keep the reader alive.
      ::kill(-pid_, SIGKILL);
      // Reap group members re-parented to us (render servers are child
      // subreapers), so no zombies pile up.
      while (::waitpid(-pid_, nullptr, 0) > 0 || errno == EINTR) {
      }
      if (reader_.joinable()) reader_.join();
      code_ = WIFEXITED(status) ? WEXITSTATUS(status)
                                : (WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 255);
      waited_ = true;
    }
    return code_;
  }

  std::optional<int> WaitFor(int timeout_ms) override {
    if (!exited_.load() && !ExitedWithin(std::max(0, timeout_ms))) return std::nullopt;
    return Wait();
  }

 private:
  // True once the process has exited (it is not reaped here).
  bool ExitedWithin(int timeout_ms) {
    if (pidfd_ >= 0) {
      struct pollfd p = {pidfd_, POLLIN, 0};
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
      while (true) {
        int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                        deadline - std::chrono::steady_clock::now())
                                        .count());
        int n = ::poll(&p, 1, std::max(0, left));
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) break;  // fall back to polling below
      }
    }
    // No pidfd: look every few milliseconds without reaping.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (true) {
      siginfo_t info;
      info.si_pid = 0;
      if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          info.si_pid == pid_) {
        return true;
      }
      if (exited_.load()) return true;
      auto now = std::chrono::steady_clock::now();
      if (now >= deadline) return false;
      std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
          deadline - now, std::chrono::milliseconds(5)));
    }
  }

  void ReadLoop() {
    std::string line;
    char buf[8192];
    while (true) {
      ssize_t n = ::read(out_fd_, buf, sizeof(buf));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      for (ssize_t i = 0; i < n; ++i) {
        char c = buf[i];
        if (c == '\n' || c == '\r') {
          if (!line.empty() && cb_) cb_(line);
          line.clear();
        } else if (line.size() < 64 * 1024) {
          line.push_back(c);
        }
      }
    }
    if (!line.empty() && cb_) cb_(line);
    ::close(out_fd_);
  }

  pid_t pid_;
  int pidfd_;
  int out_fd_;
  LineCallback cb_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> exited_{false};
  std::mutex wait_mu_;
  bool waited_ = false;
  int code_ = 0;
};

// Everything the child needs, prepared by the parent: between clone and exec
// the child only makes system calls (it shares the parent's memory, and the
// parent's launching thread is suspended until it execs or exits).
struct ChildArgs {
  char* const* argv;
  char* const* envp;
  const char* cwd;  // null: inherit
  int out_fd;       // >= 3: becomes stdout and stderr
  int null_fd;      // >= 3: becomes stdin
  pid_t parent;
  uint32_t uid;  // non-zero: switch to uid/gid before exec
  uint32_t gid;
  // Written by the child when it cannot exec: the errno of the failed step.
  int error;
};

int ChildMain(void* raw) {
  auto* a = static_cast<ChildArgs*>(raw);
  // Every signal is blocked (by the parent). Handlers of the parent must
  // never run here, on its memory: reset them before unblocking. Ignored
  // signals stay ignored across exec, except SIGPIPE, which the render
  // server ignores for itself and renderers expect at its default.
  for (int sig = 1; sig < NSIG; ++sig) {
    struct sigaction sa;
    if (::sigaction(sig, nullptr, &sa) != 0) continue;
    if (sa.sa_handler == SIG_DFL || (sa.sa_handler == SIG_IGN && sig != SIGPIPE)) continue;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    ::sigaction(sig, &sa, nullptr);
  }
  ::setsid();
  // Raw system calls: glibc's setresuid() would signal every thread of the
  // process it believes it is, the render server whose memory this shares.
  // Before the parent-death signal, which a change of uid clears.
  if (a->uid != 0 && (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
                      ::syscall(SYS_setresgid, a->gid, a->gid, a->gid) != 0 ||
                      ::syscall(SYS_setresuid, a->uid, a->uid, a->uid) != 0)) {
    a->error = errno;
    ::_exit(127);
  }
  // Renderers must not outlive a crashed render server (the thread that
  // started them): they would keep writing into work directories the
  // restarted server removes, on cores it hands out again.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != a->parent) ::_exit(127);
  ::dup2(a->null_fd, 0);
  ::dup2(a->out_fd, 1);
  ::dup2(a->out_fd, 2);
  // Only stdin, stdout and stderr reach the renderer, whatever the render
  // server has open without O_CLOEXEC (the descriptor table is the child's
  // own copy). Kernels before 5.9 lack close_range: O_CLOEXEC still holds.
  ::close_range(3, ~0U, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (a->cwd != nullptr && ::chdir(a->cwd) != 0) {
    a->error = errno;
    ::_exit(127);
  }
  ::execvpe(a->argv[0], a->argv, a->envp);
  a->error = errno;
  ::_exit(127);
}

// Moves `fd` to a number >= 3 (close-on-exec), so dup2 onto 0..2 in the
// child never hits itself. Returns the fd to use, or -1 with errno set.
int AboveStdio(int fd) {
  if (fd >= 3) return fd;
  int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  int err = errno;
  ::close(fd);
  errno = err;
  return moved;
}

class PosixLauncher final : public ProcessLauncher {
 public:
  Result<std::unique_ptr<RunningProcess>> Start(const ProcessSpec& spec,
                                                LineCallback on_line) override {
    if (spec.argv.empty()) return InvalidArgument("process argv is empty");
    std::vector<char*> argv;
    size_t arg_bytes = 0;
    for (const auto& a : spec.argv) {
      argv.push_back(const_cast<char*>(a.c_str()));
      arg_bytes += a.size() + 1;
    }
    argv.push_back(nullptr);
    std::vector<std::string> env_store;
    // Extra entries replace inherited ones of the same name.
    auto key_of = [](const std::string& e) { return e.substr(0, e.find('=')); };
    std::set<std::string> overridden;
    for (const auto& e : spec.env) overridden.insert(key_of(e));
    for (char** e = environ; *e; ++e) {
      if (overridden.empty() || !overridden.count(key_of(*e))) env_store.emplace_back(*e);
    }
    for (const auto& e : spec.env) env_store.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);

    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd < 0) return ErrnoError("cannot open", "/dev/null", errno);
    null_fd = AboveStdio(null_fd);
    if (null_fd < 0) return ErrnoError("cannot duplicate", "/dev/null", errno);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      int e = errno;
      ::close(null_fd);
      return ErrnoError("cannot create pipe", "", e);
    }
    const int read_fd = fds[0];
    const int write_fd = AboveStdio(fds[1]);
    if (write_fd < 0) {
      int e = errno;
      ::close(read_fd);
      ::close(null_fd);
      return ErrnoError("cannot create pipe", "", e);
    }

    // The child's stack: room for execvpe's path buffer and, for scripts
    // without a #! line, its copy of argv.
    const size_t stack_size =
        ((64 * 1024 + arg_bytes + (argv.size() + 2) * sizeof(char*) + 4095) / 4096) * 4096;
    void* stack = ::mmap(nullptr, stack_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED) {
      int e = errno;
      ::close(read_fd);
      ::close(write_fd);
      ::close(null_fd);
      return ErrnoError("cannot map a stack to start", spec.argv[0], e);
    }
    ChildArgs args{argv.data(), envp.data(), spec.cwd.empty() ? nullptr : spec.cwd.c_str(),
                   write_fd,    null_fd,     ::getpid(),
                   spec.uid,    spec.gid,    0};
    // With every signal blocked, no handler of ours runs in the child while
    // it shares our memory; the child unblocks them just before exec.
    sigset_t all, old;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &old);
    pid_t pid = ::clone(ChildMain, static_cast<char*>(stack) + stack_size,
                        CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    int clone_errno = errno;
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    // The child has exec'd or exited: it no longer uses the stack.
    ::munmap(stack, stack_size);
    ::close(write_fd);
    ::close(null_fd);
    if (pid < 0) {
      ::close(read_fd);
      return ErrnoError("cannot start", spec.argv[0], clone_errno);
    }
    if (args.error != 0) {
      int status;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      ::close(read_fd);
      return ErrnoError("cannot start", spec.argv[0] + (spec.cwd.empty() ? "" : " in " + spec.cwd),
                        args.error);
    }
    return std::unique_ptr<RunningProcess>(new PosixProcess(pid, read_fd, std::move(on_line)));
  }
};

}  // namespace

ProcessLauncher* DefaultProcessLauncher() {
  static PosixLauncher launcher;
  return &launcher;
}

}  // namespace ff
