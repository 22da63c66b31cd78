#include "sandbox/wrapper.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "base/json_fields.h"
#include "sandbox/cgroup.h"
#include "sandbox/credentials.h"
#include "sandbox/landlock.h"
#include "sandbox/mounts.h"
#include "sandbox/seccomp.h"

extern char** environ;

namespace ff::sandbox {

namespace {

int64_t MonotonicMicros() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000000 + ts.tv_nsec / 1000;
}

// What init tells the wrapper when the program is done.
struct InitStatus {
  int32_t kind;  // 0: the program ran, `value` is its wait status; 1: exec failed, `value` is errno
  int32_t value;
  int64_t exec_us;  // CLOCK_MONOTONIC when the program was exec'd
};

const int kForwarded[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};

char* g_cmdline = nullptr;
size_t g_cmdline_size = 0;

// In init: nothing of the wrapper's command line or environment stays
// visible through /proc/1/cmdline (or /proc/1/environ, were it readable).
void ScrubCommandLine() {
  constexpr char kTitle[] = "frameflow-init";
  if (g_cmdline && g_cmdline_size > 0) {
    std::memset(g_cmdline, 0, g_cmdline_size);
    std::memcpy(g_cmdline, kTitle, std::min(sizeof kTitle, g_cmdline_size) - 1);
  }
  for (char** e = environ; e && *e; ++e) std::memset(*e, 0, std::strlen(*e));
}

void WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    p += n;
    size -= static_cast<size_t>(n);
  }
}

std::string ReadAll(int fd) {
  std::string out;
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::vector<std::string> ProgramEnvironment(const WrapSpec& spec) {
  std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                  "HOME=/tmp",
                                  "TMPDIR=/tmp",
                                  "LANG=C.UTF-8",
                                  "USER=render",
                                  "LOGNAME=render"};
  for (const auto& e : spec.env) {
    const std::string key = e.substr(0, e.find('=') + 1);
    std::erase_if(env, [&](const std::string& x) { return x.compare(0, key.size(), key) == 0; });
    env.push_back(e);
  }
  return env;
}

// The sandbox's pid 1. Never returns.
[[noreturn]] void InitMain(const WrapSpec& spec, const RunCgroup* cgroup, int output_fd, int tmp_fd,
                           int setup_w, int status_w, int alive_r) {
  auto fail = [&](const Status& st) {
    std::string m = st.message();
    WriteAll(setup_w, m.data(), m.size());
    ::_exit(kSetupFailed);
  };
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The wrapper may have died before the line above: then the write end of
  // `alive` is closed, and nothing would enforce the limits.
  struct pollfd alive = {alive_r, POLLIN, 0};
  if (::poll(&alive, 1, 0) != 0) ::_exit(kSetupFailed);
  ::close(alive_r);
  ScrubCommandLine();
  for (int fd : cgroup->procs_fds()) {
    if (::write(fd, "0", 1) != 1)
      fail(ErrnoError("cannot join the run's cgroup", "cgroup.procs", errno));
  }
  for (int fd : cgroup->procs_fds()) ::close(fd);
  if (::unshare(CLONE_NEWCGROUP) != 0)
    fail(ErrnoError("cannot create a cgroup namespace", "", errno));
  if (::sethostname(spec.hostname.data(), spec.hostname.size()) != 0) {
    fail(ErrnoError("cannot set the host name", spec.hostname, errno));
  }
  auto rules = BuildSandboxRoot(spec, output_fd, tmp_fd);
  if (!rules.ok()) fail(rules.status());
  if (output_fd >= 0) ::close(output_fd);
  ::close(tmp_fd);
  const std::string cwd = !spec.cwd.empty() ? spec.cwd : spec.input.empty() ? "/" : kInputPath;
  if (::chdir(cwd.c_str()) != 0) fail(ErrnoError("cannot enter the working directory", cwd, errno));
  auto ruleset = BuildLandlockRuleset(*rules, spec.landlock_min_abi);
  if (!ruleset.ok()) fail(ruleset.status());
  if (Status st = ApplyRlimits(spec.limits); !st.ok()) fail(st);
  if (Status st = DropToUser(spec.uid, spec.gid); !st.ok()) fail(st);
  if (Status st = RestrictSelf(*ruleset); !st.ok()) fail(st);
  if (Status st = InstallSeccompFilter(); !st.ok()) fail(st);
  // Nothing of the wrapper's leaks into the program.
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

  std::vector<std::string> env = ProgramEnvironment(spec);
  std::vector<char*> envp, argv;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = spec.argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  sigset_t mask;
  sigemptyset(&mask);
  for (int s : kForwarded) sigaddset(&mask, s);
  sigaddset(&mask, SIGCHLD);
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC);
  if (sfd < 0) fail(ErrnoError("signalfd failed", "", errno));
  int exec_pipe[2];
  if (::pipe2(exec_pipe, O_CLOEXEC) != 0) fail(ErrnoError("pipe failed", "", errno));
  pid_t program = ::fork();
  if (program < 0) fail(ErrnoError("cannot start the program", spec.argv[0], errno));
  if (program == 0) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    environ = envp.data();
    ::execvp(argv[0], argv.data());
    int err = errno;
    WriteAll(exec_pipe[1], &err, sizeof err);
    ::_exit(err == ENOENT ? kNotFound : kCannotExecute);
  }
  ::close(exec_pipe[1]);
  InitStatus status{0, 0, 0};
  int exec_errno = 0;
  ssize_t n = ::read(exec_pipe[0], &exec_errno, sizeof exec_errno);
  status.exec_us = MonotonicMicros();
  ::close(exec_pipe[0]);
  if (n == static_cast<ssize_t>(sizeof exec_errno)) {
    status.kind = 1;
    status.value = exec_errno;
  }
  // Reap everything; forward signals to the program until it exits.
  while (true) {
    struct signalfd_siginfo si;
    if (::read(sfd, &si, sizeof si) != static_cast<ssize_t>(sizeof si)) continue;
    if (si.ssi_signo != SIGCHLD) {
      ::kill(program, static_cast<int>(si.ssi_signo));
      continue;
    }
    bool done = false;
    int ws;
    pid_t p;
    while ((p = ::waitpid(-1, &ws, WNOHANG)) > 0) {
      if (p == program) {
        if (status.kind == 0) status.value = ws;
        done = true;
      }
    }
    if (done) break;
  }
  WriteAll(status_w, &status, sizeof status);
  ::_exit(0);
}

bool AlmostFull(int mount_fd, int64_t size) {
  struct statfs sf {};
  if (mount_fd < 0 || ::fstatfs(mount_fd, &sf) != 0) return false;
  const int64_t free_bytes = static_cast<int64_t>(sf.f_bavail) * static_cast<int64_t>(sf.f_bsize);
  return free_bytes < std::max<int64_t>(64 << 10, size / 100);
}

}  // namespace

void SetCommandLineArea(char* begin, size_t size) {
  g_cmdline = begin;
  g_cmdline_size = size;
}

WrapReport RunWrapped(const WrapSpec& spec) {
  WrapReport r;
  const int64_t start_us = MonotonicMicros();
  auto setup_failed = [&](const Status& st) {
    r.exit_code = kSetupFailed;
    r.setup_error = st.message();
    return r;
  };
  if (Status st = ValidateSpec(spec); !st.ok()) return setup_failed(st);
  if (::geteuid() != 0) {
    return setup_failed(FailedPrecondition(
        "the I/O wrapper must run as root: it builds the sandbox, then runs the program as uid " +
        std::to_string(spec.uid)));
  }
  if (Status st = CheckLandlockAbi(spec.landlock_min_abi); !st.ok()) return setup_failed(st);
  if (Status st = CheckRootIsMountPoint(); !st.ok()) return setup_failed(st);
  for (const char* d : {"/run/frameflow-wrap", kStagingDir}) {
    if (::mkdir(d, 0755) != 0 && errno != EEXIST)
      return setup_failed(ErrnoError("cannot create", d, errno));
  }
  auto cgroup = RunCgroup::Create(spec.cgroup_parent, spec.name, spec.limits.memory_bytes,
                                  spec.limits.processes);
  if (!cgroup.ok()) return setup_failed(cgroup.status());
  int output_fd = -1;
  if (!spec.output.empty()) {
    auto fd = MakeDetachedTmpfs(spec.limits.output_bytes, 0700, spec.uid, spec.gid);
    if (!fd.ok()) return setup_failed(fd.status().WithContext("output area"));
    output_fd = *fd;
  }
  auto tmp = MakeDetachedTmpfs(spec.limits.tmp_bytes, 01777, 0, 0);
  if (!tmp.ok()) {
    if (output_fd >= 0) ::close(output_fd);
    return setup_failed(tmp.status().WithContext("/tmp"));
  }
  const int tmp_fd = *tmp;
  int setup_pipe[2], status_pipe[2];
  int alive_pipe[2];
  if (::pipe2(setup_pipe, O_CLOEXEC) != 0 || ::pipe2(status_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(alive_pipe, O_CLOEXEC) != 0) {
    return setup_failed(ErrnoError("pipe failed", "", errno));
  }
  // Signals for the program arrive through a signalfd, in the wrapper and
  // (inherited mask) in init.
  sigset_t mask, old_mask;
  sigemptyset(&mask);
  for (int s : kForwarded) sigaddset(&mask, s);
  sigaddset(&mask, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &mask, &old_mask);

  const long flags =
      CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | SIGCHLD;
  pid_t init = static_cast<pid_t>(::syscall(SYS_clone, flags, nullptr, nullptr, nullptr, nullptr));
  if (init < 0)
    return setup_failed(ErrnoError("cannot create the sandbox's namespaces", "clone", errno));
  if (init == 0) {
    ::close(setup_pipe[0]);
    ::close(status_pipe[0]);
    ::close(alive_pipe[1]);
    InitMain(spec, cgroup->get(), output_fd, tmp_fd, setup_pipe[1], status_pipe[1], alive_pipe[0]);
  }
  ::close(setup_pipe[1]);
  ::close(status_pipe[1]);
  ::close(alive_pipe[0]);  // the write end stays open while this process lives
  int sfd = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  // Without a pidfd (an old kernel, a filtered container) init's exit is
  // noticed by polling waitpid.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, init, 0));
  bool reaped = false;
  int init_status = 0;

  const int64_t wall_deadline = spec.limits.wall_ms > 0 ? start_us / 1000 + spec.limits.wall_ms : 0;
  const int64_t cpu_limit_us = spec.limits.cpu_seconds * 1000000;
  bool killed = false;
  while (true) {
    int timeout = -1;
    const int64_t now_ms = MonotonicMicros() / 1000;
    if (wall_deadline) timeout = static_cast<int>(std::max<int64_t>(0, wall_deadline - now_ms));
    if (cpu_limit_us) timeout = timeout < 0 ? 250 : std::min(timeout, 250);
    if (pidfd < 0) timeout = timeout < 0 ? 20 : std::min(timeout, 20);
    struct pollfd fds[2] = {{pidfd, POLLIN, 0}, {sfd, POLLIN, 0}};
    int rc = ::poll(fds, 2, timeout);
    if (rc < 0 && errno != EINTR) break;
    if (fds[0].revents) break;
    if (pidfd < 0 && ::waitpid(init, &init_status, WNOHANG) == init) {
      reaped = true;
      break;
    }
    if (fds[1].revents) {
      struct signalfd_siginfo si;
      while (::read(sfd, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
        if (si.ssi_signo != SIGCHLD) ::kill(init, static_cast<int>(si.ssi_signo));
      }
    }
    if (killed) continue;
    if (wall_deadline && MonotonicMicros() / 1000 >= wall_deadline) {
      ::kill(init, SIGKILL);
      killed = true;
      r.limit = "wall_time";
      r.reason =
          "wall-time limit: still running after " + FormatSeconds(spec.limits.wall_ms) + ", killed";
    } else if (cpu_limit_us && (*cgroup)->CpuMicros() >= cpu_limit_us) {
      ::kill(init, SIGKILL);
      killed = true;
      r.limit = "cpu_time";
      r.reason =
          "CPU-time limit: used " + std::to_string(spec.limits.cpu_seconds) + " s of CPU, killed";
    }
  }
  while (!reaped && ::waitpid(init, &init_status, 0) < 0 && errno == EINTR) {
  }
  if (pidfd >= 0) ::close(pidfd);
  ::close(alive_pipe[1]);
  ::close(sfd);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  r.wall_ms = (MonotonicMicros() - start_us) / 1000;
  std::string setup_error = ReadAll(setup_pipe[0]);
  ::close(setup_pipe[0]);
  InitStatus st{};
  std::string status_bytes = ReadAll(status_pipe[0]);
  ::close(status_pipe[0]);
  const bool have_status = status_bytes.size() == sizeof st;
  if (have_status) std::memcpy(&st, status_bytes.data(), sizeof st);
  (*cgroup)->KillAll();
  const int64_t cpu_us = (*cgroup)->CpuMicros();
  r.cpu_ms = cpu_us < 0 ? 0 : cpu_us / 1000;
  r.peak_memory = (*cgroup)->PeakMemory();

  if (!setup_error.empty()) {
    r.exit_code = kSetupFailed;
    r.setup_error = setup_error;
  } else if (have_status && st.kind == 1) {
    r.exit_code = st.value == ENOENT ? kNotFound : kCannotExecute;
    r.setup_error =
        "cannot execute '" + spec.argv[0] + "' in the sandbox: " + std::strerror(st.value);
  } else if (have_status) {
    r.launch_us = st.exec_us - start_us;
    if (WIFEXITED(st.value)) {
      r.exit_code = WEXITSTATUS(st.value);
    } else if (WIFSIGNALED(st.value)) {
      r.signal = WTERMSIG(st.value);
      r.exit_code = 128 + r.signal;
    }
  } else {
    // Init itself was killed: by the wrapper (a limit), or with the whole
    // cgroup by the OOM killer.
    r.signal = WIFSIGNALED(init_status) ? WTERMSIG(init_status) : SIGKILL;
    r.exit_code = 128 + r.signal;
  }
  // RLIMIT_CPU kills a single busy process with SIGKILL at its hard limit,
  // possibly before the cgroup poll saw it: the cgroup's total says why.
  if (r.limit.empty() && cpu_limit_us && r.exit_code != 0 && cpu_us >= cpu_limit_us - 50000) {
    r.limit = "cpu_time";
    r.reason =
        "CPU-time limit: used " + std::to_string(spec.limits.cpu_seconds) + " s of CPU, killed";
  }
  const bool failed = r.exit_code != 0;
  if (r.limit.empty() && failed && r.setup_error.empty()) {
    const Limits& l = spec.limits;
    if ((*cgroup)->OomKills() > 0) {
      r.limit = "memory";
      r.reason = "out of memory: killed at the memory limit of " + FormatBytes(l.memory_bytes);
    } else if (r.signal == SIGXFSZ || r.exit_code == 128 + SIGXFSZ) {
      // A shell reports a child killed by SIGXFSZ as 128 + SIGXFSZ.
      r.limit = "file_size";
      r.reason = "per-file size limit: a file reached " + FormatBytes(l.file_bytes);
    } else if (r.signal == SIGXCPU || r.exit_code == 128 + SIGXCPU) {
      r.limit = "cpu_time";
      r.reason = "CPU-time limit: a process used " + std::to_string(l.cpu_seconds) + " s of CPU";
    } else if (AlmostFull(output_fd, l.output_bytes)) {
      r.limit = "output_size";
      r.reason = "output size limit: the output area (" + spec.output + ") is full at " +
                 FormatBytes(l.output_bytes);
    } else if (AlmostFull(tmp_fd, l.tmp_bytes)) {
      r.limit = "tmp_size";
      r.reason = "/tmp size limit: /tmp is full at " + FormatBytes(l.tmp_bytes);
    } else if (l.processes > 0 && (*cgroup)->PidsLimitHits() > 0) {
      r.limit = "processes";
      r.reason = "process limit: " + std::to_string(l.processes) + " processes and threads reached";
    }
  }
  // The sandbox is gone: nothing can change the output any more.
  if (output_fd >= 0 && r.setup_error.empty()) {
    auto c = CollectOutputs(output_fd, spec.collect_to);
    if (c.ok()) {
      r.collection = std::move(*c);
    } else {
      r.setup_error = "collecting the output: " + c.status().message();
      if (r.exit_code == 0) r.exit_code = kSetupFailed;
    }
  }
  if (output_fd >= 0) ::close(output_fd);
  ::close(tmp_fd);
  return r;
}

std::string ReportToJson(const WrapReport& r) {
  nlohmann::json j;
  j["exit_code"] = r.exit_code;
  j["signal"] = r.signal;
  j["limit"] = r.limit;
  j["reason"] = r.reason;
  j["setup_error"] = r.setup_error;
  j["collected"] = nlohmann::json::array();
  for (const auto& c : r.collection.collected)
    j["collected"].push_back({{"path", c.path}, {"size", c.size}});
  j["refused"] = nlohmann::json::array();
  for (const auto& c : r.collection.refused)
    j["refused"].push_back({{"path", c.path}, {"why", c.why}});
  j["cpu_ms"] = r.cpu_ms;
  j["wall_ms"] = r.wall_ms;
  j["peak_memory"] = r.peak_memory;
  j["launch_us"] = r.launch_us;
  // File names are bytes, not necessarily UTF-8: invalid sequences become
  // U+FFFD rather than failing the whole report.
  return j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<WrapReport> ReportFromJson(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument("the wrapper's report is not a JSON object");
  auto parse = [&]() -> Result<WrapReport> {
    constexpr int64_t kIntMin = std::numeric_limits<int>::min();
    constexpr int64_t kIntMax = std::numeric_limits<int>::max();
    WrapReport r;
    FF_ASSIGN_OR_RETURN(int64_t exit_code, JsonInt(j, "exit_code", 0, kIntMin, kIntMax));
    FF_ASSIGN_OR_RETURN(int64_t signal, JsonInt(j, "signal", 0, kIntMin, kIntMax));
    r.exit_code = static_cast<int>(exit_code);
    r.signal = static_cast<int>(signal);
    FF_ASSIGN_OR_RETURN(r.limit, JsonString(j, "limit", ""));
    FF_ASSIGN_OR_RETURN(r.reason, JsonString(j, "reason", ""));
    FF_ASSIGN_OR_RETURN(r.setup_error, JsonString(j, "setup_error", ""));
    FF_ASSIGN_OR_RETURN(const nlohmann::json* collected, JsonArray(j, "collected"));
    for (const auto& c : *collected) {
      FF_ASSIGN_OR_RETURN(std::string path, JsonString(c, "path"));
      FF_ASSIGN_OR_RETURN(int64_t size, JsonInt(c, "size"));
      r.collection.collected.push_back({std::move(path), size});
    }
    FF_ASSIGN_OR_RETURN(const nlohmann::json* refused, JsonArray(j, "refused"));
    for (const auto& c : *refused) {
      FF_ASSIGN_OR_RETURN(std::string path, JsonString(c, "path"));
      FF_ASSIGN_OR_RETURN(std::string why, JsonString(c, "why"));
      r.collection.refused.push_back({std::move(path), std::move(why)});
    }
    FF_ASSIGN_OR_RETURN(r.cpu_ms, JsonInt(j, "cpu_ms", 0));
    FF_ASSIGN_OR_RETURN(r.wall_ms, JsonInt(j, "wall_ms", 0));
    FF_ASSIGN_OR_RETURN(r.peak_memory, JsonInt(j, "peak_memory", 0));
    FF_ASSIGN_OR_RETURN(r.launch_us, JsonInt(j, "launch_us", 0));
    return r;
  };
  auto r = parse();
  if (!r.ok()) return r.status().WithContext("the wrapper's report");
  return r;
}

}  // namespace ff::sandbox
