#include "util/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

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

class PosixProcess final : public RunningProcess {
 public:
  PosixProcess(pid_t pid, int out_fd, LineCallback cb)
      : pid_(pid), out_fd_(out_fd), cb_(std::move(cb)) {
    reader_ = std::thread([this] { ReadLoop(); });
  }
  ~PosixProcess() override {
    if (!waited_) {
      KillTree(0);
      Wait();
    }
    if (reader_.joinable()) reader_.join();
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

 private:
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

class PosixLauncher final : public ProcessLauncher {
 public:
  Result<std::unique_ptr<RunningProcess>> Start(const ProcessSpec& spec,
                                                LineCallback on_line) override {
    if (spec.argv.empty()) return InvalidArgument("process argv is empty");
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return ErrnoError("cannot create pipe", "", errno);
    // Everything the child needs is prepared before fork: only
    // async-signal-safe calls happen between fork and exec.
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_store;
    // Extra entries replace inherited ones of the same name.
    auto key_of = [](const std::string& e) { return e.substr(0, e.find('=')); };
    std::set<std::string> overridden;
    for (const auto& e : spec.env) overridden.insert(key_of(e));
    for (char** e = environ; *e; ++e) {
      if (!overridden.count(key_of(*e))) env_store.emplace_back(*e);
    }
    for (const auto& e : spec.env) env_store.push_back(e);
    std::vector<char*> envp;
    for (auto& e : env_store) envp.push_back(e.data());
    envp.push_back(nullptr);
    int err_pipe[2];
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      return ErrnoError("cannot create pipe", "", errno);
    }
    const pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) {
      int e = errno;
      ::close(fds[0]);
      ::close(fds[1]);
      ::close(err_pipe[0]);
      ::close(err_pipe[1]);
      return ErrnoError("cannot fork for", spec.argv[0], e);
    }
    if (pid == 0) {
      ::setsid();
      // Renderers must not outlive a crashed render server (the thread that
      // started them): they would keep writing into work directories the
      // restarted server removes, on cores it hands out again.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::dup2(fds[1], 1);
      ::dup2(fds[1], 2);
      sigset_t all;
      sigemptyset(&all);
      ::sigprocmask(SIG_SETMASK, &all, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      if (!spec.cwd.empty() && ::chdir(spec.cwd.c_str()) != 0) {
        int e = errno;
        (void)!::write(err_pipe[1], &e, sizeof(e));
        ::_exit(127);
      }
      ::execvpe(argv[0], argv.data(), envp.data());
      int e = errno;
      (void)!::write(err_pipe[1], &e, sizeof(e));
      ::_exit(127);
    }
    ::close(fds[1]);
    ::close(err_pipe[1]);
    int child_errno = 0;
    ssize_t n;
    do {
      n = ::read(err_pipe[0], &child_errno, sizeof(child_errno));
    } while (n < 0 && errno == EINTR);
    ::close(err_pipe[0]);
    if (n == sizeof(child_errno)) {
      int status;
      ::waitpid(pid, &status, 0);
      ::close(fds[0]);
      return ErrnoError("cannot start", spec.argv[0] + (spec.cwd.empty() ? "" : " in " + spec.cwd),
                        child_errno);
    }
    return std::unique_ptr<RunningProcess>(new PosixProcess(pid, fds[0], std::move(on_line)));
  }
};

}  // namespace

ProcessLauncher* DefaultProcessLauncher() {
  static PosixLauncher launcher;
  return &launcher;
}

}  // namespace ff
