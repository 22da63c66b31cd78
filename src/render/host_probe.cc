#include "render/host_probe.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <thread>

#include "base/unique_fd.h"
#include "util/fs.h"

extern char** environ;

namespace ff {

namespace {

// `--version` runs of real renderers take about a second; a hung or
// misbehaving executable must not stall a render server's start-up.
constexpr std::chrono::seconds kVersionTimeout{20};
// More than any version banner; the rest is drained and dropped.
constexpr size_t kMaxCapturedOutput = 1 << 20;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Calls fn(line) for each '\n'-separated line of text.
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    fn(line);
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
}

// Value of the first "key : value" line (the /proc/cpuinfo layout) whose key
// is `key`; empty when absent.
std::string KeyColonValue(std::string_view text, std::string_view key) {
  std::string found;
  bool done = false;
  ForEachLine(text, [&](std::string_view line) {
    if (done) return;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    if (Trim(line.substr(0, colon)) != key) return;
    found = std::string(Trim(line.substr(colon + 1)));
    done = true;
  });
  return found;
}

// Value of KEY=value in an os-release file, with shell quoting removed.
std::string OsReleaseValue(std::string_view text, std::string_view key) {
  std::string found;
  ForEachLine(text, [&](std::string_view line) {
    line = Trim(line);
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != '=') {
      return;
    }
    std::string_view value = line.substr(key.size() + 1);
    std::string out;
    if (!value.empty() && (value.front() == '"' || value.front() == '\'')) {
      char quote = value.front();
      for (size_t i = 1; i < value.size() && value[i] != quote; ++i) {
        if (quote == '"' && value[i] == '\\' && i + 1 < value.size()) ++i;
        out.push_back(value[i]);
      }
    } else {
      out = std::string(value);
    }
    found = out;
  });
  return found;
}

int ProbeCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  // The CPUs this process may run on: in a container limited by cpuset this
  // is the usable share of the machine, which is what slots are cut from.
  if (::sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  if (n > 0) return static_cast<int>(n);
  long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(online) : 0;
}

int64_t ProbeMemoryBytes() {
  Result<std::string> meminfo = ReadFile("/proc/meminfo");
  if (!meminfo.ok()) return 0;
  std::string value = KeyColonValue(*meminfo, "MemTotal");  // "24684084 kB"
  char* end = nullptr;
  long long kib = std::strtoll(value.c_str(), &end, 10);
  if (end == value.c_str() || kib <= 0) return 0;
  return static_cast<int64_t>(kib) * 1024;
}

std::string ProbeCpuModel() {
  Result<std::string> cpuinfo = ReadFile("/proc/cpuinfo");
  if (!cpuinfo.ok()) return "";
  // x86 has "model name"; other architectures name the CPU differently.
  for (std::string_view key : {"model name", "Hardware", "cpu model", "cpu"}) {
    std::string model = KeyColonValue(*cpuinfo, key);
    if (!model.empty()) return model;
  }
  return "";
}

std::string ProbeOs() {
  std::string name;
  for (const char* path : {"/etc/os-release", "/usr/lib/os-release"}) {
    Result<std::string> text = ReadFile(path);
    if (!text.ok()) continue;
    name = OsReleaseValue(*text, "PRETTY_NAME");
    if (!name.empty()) break;
  }
  struct utsname uts;
  if (::uname(&uts) == 0) {
    if (name.empty()) name = uts.sysname;
    name += name.empty() ? "" : " ";
    name += uts.release;
  }
  return name;
}

std::vector<std::string> ProbeGpus() {
  std::vector<std::string> gpus;
  const std::string root = "/proc/driver/nvidia/gpus";
  Result<std::vector<std::string>> entries = ListDir(root);
  if (!entries.ok()) return gpus;
  for (const std::string& entry : *entries) {
    Result<std::string> info = ReadFile(JoinPath(JoinPath(root, entry), "information"));
    if (!info.ok()) continue;
    std::string model = KeyColonValue(*info, "Model");
    if (!model.empty()) gpus.push_back(model);
  }
  return gpus;
}

bool IsExecutableFile(const std::string& path) {
  struct stat st;
  // access() alone is not enough: for root it passes X_OK on any file with
  // an execute bit for anyone, and on some filesystems for every file.
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111) != 0 &&
         ::access(path.c_str(), X_OK) == 0;
}

std::string Absolute(const std::string& path) {
  std::filesystem::path p(path);
  if (p.is_relative()) {
    std::error_code ec;
    std::filesystem::path cwd = std::filesystem::current_path(ec);
    if (ec) return path;
    p = cwd / p;
  }
  return p.lexically_normal().string();
}

struct CommandOutput {
  int wait_status = 0;
  bool exited = false;  // false when the status could not be collected
  std::string output;   // stdout and stderr interleaved
};

// Kills the child's whole process group (it leads its own group) unless
// released; used on every early return once the child runs.
class ChildReaper {
 public:
  explicit ChildReaper(pid_t pid) : pid_(pid) {}
  ~ChildReaper() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    int status;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
  }
  ChildReaper(const ChildReaper&) = delete;
  ChildReaper& operator=(const ChildReaper&) = delete;
  void Release() { pid_ = -1; }

 private:
  pid_t pid_;
};

// Runs argv[0] (an absolute path) with stdin from /dev/null and stdout and
// stderr captured together, for at most `timeout`.
Result<CommandOutput> RunCapture(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  const std::string& exe = argv.at(0);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return ErrnoError("cannot create pipe for", exe, errno);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(pipe_fds[1]);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, write_end.get(), STDERR_FILENO);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t default_signals;
  sigemptyset(&default_signals);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2}) {
    sigaddset(&default_signals, sig);
  }
  posix_spawnattr_setsigmask(&attr, &empty_mask);
  posix_spawnattr_setsigdefault(&attr, &default_signals);
  // Own process group, so a timeout can kill helpers the child started.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> cargv;
  for (const std::string& arg : argv) cargv.push_back(const_cast<char*>(arg.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, exe.c_str(), &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return ErrnoError("cannot run", exe, rc);
  ChildReaper reaper(pid);
  write_end.Reset();  // so the pipe reports EOF once the child's copies close

  // A pidfd lets one poll() wait for output and exit together; without one
  // (old kernels) the exit is collected after the output reaches EOF.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));

  CommandOutput out;
  bool eof = false;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  while (!eof || !out.exited) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      if (out.exited) {
        // A helper left in the child's group holds the pipe open; the answer
        // is in, so stop it rather than leave it running.
        ::kill(-pid, SIGKILL);
        break;
      }
      return InvalidArgument("'" + exe + "' did not finish within " +
                             std::to_string(timeout.count() / 1000) + " s");
    }
    if (eof && pidfd.get() < 0) {
      int status;
      pid_t r;
      while ((r = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
      }
      out.exited = true;
      if (r == pid) out.wait_status = status;
      reaper.Release();
      break;
    }
    pollfd fds[2];
    nfds_t nfds = 0;
    if (!eof) fds[nfds++] = {read_end.get(), POLLIN, 0};
    if (!out.exited && pidfd.get() >= 0) fds[nfds++] = {pidfd.get(), POLLIN, 0};
    int ready = ::poll(fds, nfds, static_cast<int>(left.count()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot wait for", exe, errno);
    }
    for (nfds_t i = 0; i < nfds; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == read_end.get()) {
        ssize_t n = ::read(read_end.get(), buf, sizeof buf);
        if (n < 0 && errno != EINTR && errno != EAGAIN)
          return ErrnoError("cannot read output of", exe, errno);
        if (n == 0) eof = true;
        if (n > 0 && out.output.size() < kMaxCapturedOutput) {
          out.output.append(
              buf, std::min(static_cast<size_t>(n), kMaxCapturedOutput - out.output.size()));
        }
      } else {
        int status;
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) {
          out.exited = true;
          if (r == pid) out.wait_status = status;
          reaper.Release();
        }
      }
    }
  }
  return out;
}

std::string DescribeWaitStatus(const CommandOutput& out) {
  if (!out.exited) return "did not exit";
  if (WIFEXITED(out.wait_status))
    return "exited with status " + std::to_string(WEXITSTATUS(out.wait_status));
  if (WIFSIGNALED(out.wait_status))
    return "was killed by signal " + std::to_string(WTERMSIG(out.wait_status));
  return "ended abnormally";
}

// The dotted numeric version on the first line of `text` that starts with
// "<marker> <digits>.<digits>", e.g. "3.7.0.10" from "POV-Ray
// 3.7.0.10.unofficial". Anchoring at the line start keeps warnings that
// merely mention the program ("Warning: Blender 3 config ...") from
// matching. Empty when there is none.
std::string FindVersionAfter(std::string_view text, std::string_view marker) {
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  std::string found;
  ForEachLine(text, [&](std::string_view line) {
    if (!found.empty()) return;
    line = Trim(line);
    if (line.substr(0, marker.size()) != marker) return;
    line.remove_prefix(marker.size());
    if (line.empty() || (line.front() != ' ' && line.front() != '\t')) return;
    line = Trim(line);
    if (!line.empty() && (line.front() == 'v' || line.front() == 'V')) line.remove_prefix(1);
    size_t i = 0;
    bool dotted = false;
    while (i < line.size() && is_digit(line[i])) {
      ++i;
      if (i + 1 < line.size() && line[i] == '.' && is_digit(line[i + 1])) {
        dotted = true;
        ++i;
      }
    }
    if (i > 0 && dotted) found = std::string(line.substr(0, i));
  });
  return found;
}

std::string FirstLines(std::string_view text, size_t max_chars) {
  text = Trim(text);
  if (text.size() <= max_chars) return std::string(text);
  return std::string(text.substr(0, max_chars)) + "...";
}

Result<PackageRecord> ProbeVersionedPackage(const std::string& executable, const std::string& kind,
                                            std::string_view marker) {
  FF_ASSIGN_OR_RETURN(std::string path, FindExecutable(executable));
  Result<CommandOutput> run = RunCapture({path, "--version"}, kVersionTimeout);
  if (!run.ok()) {
    return InvalidArgument("cannot read the " + kind + " version: " + run.status().message());
  }
  std::string version = FindVersionAfter(run->output, marker);
  if (version.empty()) {
    return InvalidArgument("'" + path + " --version' " + DescribeWaitStatus(*run) +
                           " without printing a \"" + std::string(marker) +
                           " <version>\" line; it printed: \"" + FirstLines(run->output, 200) +
                           "\"");
  }
  PackageRecord record;
  record.name = kind;
  record.kind = kind;
  record.version = version;
  record.executable = path;
  return record;
}

}  // namespace

HostRecord ProbeHardware(const std::string& host_name) {
  HostRecord host;
  host.name = host_name;
  host.cpu_model = ProbeCpuModel();
  host.cores = ProbeCores();
  host.memory_bytes = ProbeMemoryBytes();
  host.gpus = ProbeGpus();
  host.os = ProbeOs();
  return host;
}

Result<PackageRecord> ProbePovray(const std::string& executable) {
  return ProbeVersionedPackage(executable, "povray", "POV-Ray");
}

Result<PackageRecord> ProbeBlender(const std::string& executable) {
  return ProbeVersionedPackage(executable, "blender", "Blender");
}

Result<std::string> FindExecutable(const std::string& name) {
  if (name.empty()) return NotFound("no executable name given");
  if (name.find('/') != std::string::npos) {
    if (!IsExecutableFile(name)) return NotFound("executable '" + name + "' does not exist");
    return Absolute(name);
  }
  const char* env = std::getenv("PATH");
  std::string search = env != nullptr ? env : "/usr/local/bin:/usr/bin:/bin";
  std::string_view rest = search;
  for (;;) {
    size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    // An empty PATH entry means the current directory.
    std::string candidate = JoinPath(dir.empty() ? "." : dir, name);
    if (IsExecutableFile(candidate)) return Absolute(candidate);
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return NotFound("executable '" + name + "' is not in $PATH");
}

}  // namespace ff
