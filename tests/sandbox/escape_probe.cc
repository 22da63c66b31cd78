// ff-escape-probe: runs INSIDE frameflow-wrap as the "renderer" and tries one
// way out of the sandbox per invocation:
//
//   ff-escape-probe ATTEMPT [ARGS...]
//
// It prints exactly one line on stdout and exits with the matching code:
//   PROBE <attempt> BLOCKED <detail>   exit 0: every try failed the expected way
//   PROBE <attempt> ESCAPED <detail>   exit 1: something got through
//   PROBE <attempt> ERROR <detail>     exit 2: the probe could not make the attempt
//                                              (a control failed; not evidence either way)
// Detail lists each try as `what=ERRNO` (or `what=OK` when it succeeded).
// Attempts that exhaust a limit (memory-bomb, cpu-spin, sleep-forever, ...)
// are expected to be killed and then print nothing; escape_test.cc checks the
// wrapper's report for them.
//
// Plain C++/POSIX, linked statically so it runs whatever the sandbox's library
// mounts are. The probe never writes into host files that already exist, even
// when it gets write access: it opens without O_TRUNC and writes nothing, and
// removes the entries it managed to create.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/landlock.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Args = std::vector<std::string>;

std::string ErrName(int e) {
  const char* n = strerrorname_np(e);
  return n ? n : "errno" + std::to_string(e);
}

// Tokens and secrets come as "rev:<reversed>", so that they appear in no
// command line (the probe's, or the wrapper's that its init inherits) and
// searches of /proc only find real leaks.
std::string Decode(const std::string& arg) {
  if (arg.rfind("rev:", 0) != 0) return arg;
  return std::string(arg.rbegin(), arg.rend() - 4);
}

std::string OutputDir() {
  const char* o = std::getenv("FF_PROBE_OUTPUT");
  return o && *o ? o : "/studio/renders/shot";
}

enum class Verdict { kBlocked, kEscaped, kError };

struct Outcome {
  Verdict verdict;
  std::string detail;
};

// Collects the tries of one attempt: any success makes the attempt ESCAPED.
class Tally {
 public:
  // Runs `fn` (a syscall wrapper: < 0 and errno on failure) and records it.
  // Returns fn's result; a successful fd-returning call is the caller's to close.
  long Try(const std::string& what, const std::function<long()>& fn) {
    errno = 0;
    long rc = fn();
    int e = errno;
    if (rc < 0) {
      Add(what + "=" + ErrName(e));
    } else {
      Escape(what + "=OK");
    }
    last_errno_ = rc < 0 ? e : 0;
    return rc;
  }
  // As Try, for calls returning a file descriptor: closes it on success.
  void TryFd(const std::string& what, const std::function<long()>& fn) {
    long fd = Try(what, fn);
    if (fd >= 0) close(static_cast<int>(fd));
  }
  int last_errno() const { return last_errno_; }
  void Add(const std::string& s) { parts_.push_back(s); }
  void Escape(const std::string& s) {
    parts_.push_back(s);
    escaped_ = true;
  }
  void Error(const std::string& s) {
    parts_.push_back(s);
    error_ = true;
  }
  bool escaped() const { return escaped_; }
  Outcome Done() const {
    std::string d;
    for (const auto& p : parts_) d += (d.empty() ? "" : "; ") + p;
    if (escaped_) return {Verdict::kEscaped, d};
    if (error_) return {Verdict::kError, d};
    return {Verdict::kBlocked, d};
  }

 private:
  std::vector<std::string> parts_;
  bool escaped_ = false;
  bool error_ = false;
  int last_errno_ = 0;
};

// Replaces characters that would break the one-line output.
std::string Printable(const std::string& s, size_t max = 200) {
  std::string r;
  for (char c : s.substr(0, max)) {
    unsigned char u = static_cast<unsigned char>(c);
    r += (u < 0x20 || u == 0x7f) ? '?' : c;
  }
  if (s.size() > max) r += "...";
  return r;
}

bool ReadAll(const std::string& path, std::string* out, int* err = nullptr, size_t max = 1 << 20) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (err) *err = errno;
    return false;
  }
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (err) *err = errno;
      close(fd);
      return false;
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
    if (out->size() >= max) break;
  }
  close(fd);
  return true;
}

bool WriteAll(int fd, const char* data, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool CopyFile(const std::string& from, const std::string& to, mode_t mode, std::string* why) {
  std::string data;
  int e = 0;
  if (!ReadAll(from, &data, &e, 64 << 20)) {
    *why = "read " + from + "=" + ErrName(e);
    return false;
  }
  int fd = open(to.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    *why = "create " + to + "=" + ErrName(errno);
    return false;
  }
  bool ok = WriteAll(fd, data.data(), data.size());
  int we = errno;
  close(fd);
  if (!ok) {
    *why = "write " + to + "=" + ErrName(we);
    return false;
  }
  if (chmod(to.c_str(), mode) != 0) {
    *why = "chmod " + to + "=" + ErrName(errno);
    return false;
  }
  return true;
}

// Prints the one result line (a single write, control characters blanked).
void PrintOutcome(const std::string& attempt, const Outcome& o) {
  const char* names[] = {"BLOCKED", "ESCAPED", "ERROR"};
  std::string detail = o.detail;
  for (char& c : detail) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  std::string line =
      "PROBE " + attempt + " " + names[static_cast<int>(o.verdict)] + " " + detail + "\n";
  WriteAll(1, line.data(), line.size());
}

std::map<std::string, std::string> ProcStatus(const std::string& pid) {
  std::map<std::string, std::string> m;
  std::string s;
  if (!ReadAll("/proc/" + pid + "/status", &s)) return m;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    if (nl == std::string::npos) nl = s.size();
    std::string line = s.substr(pos, nl - pos);
    size_t colon = line.find(':');
    if (colon != std::string::npos) {
      std::string v = line.substr(colon + 1);
      size_t b = v.find_first_not_of(" \t");
      m[line.substr(0, colon)] = b == std::string::npos ? "" : v.substr(b);
    }
    pos = nl + 1;
  }
  return m;
}

std::vector<std::string> Fields(const std::string& s) {
  std::vector<std::string> r;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t b = s.find_first_not_of(" \t", pos);
    if (b == std::string::npos) break;
    size_t e = s.find_first_of(" \t", b);
    if (e == std::string::npos) e = s.size();
    r.push_back(s.substr(b, e - b));
    pos = e;
  }
  return r;
}

std::vector<std::string> ListDir(const std::string& path) {
  std::vector<std::string> names;
  DIR* d = opendir(path.c_str());
  if (!d) return names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(n);
  }
  closedir(d);
  return names;
}

std::vector<std::string> VisiblePids() {
  std::vector<std::string> pids;
  for (const auto& n : ListDir("/proc")) {
    if (n.find_first_not_of("0123456789") == std::string::npos) pids.push_back(n);
  }
  return pids;
}

// Waits for `pid` to exit (reaping it) and returns its exit code, or
// 128 + signal; -1 when it is still running after `timeout_ms` (then killed).
int WaitChild(pid_t pid, int timeout_ms) {
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (;;) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (r < 0) return -2;
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    if (ms > timeout_ms) {
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      return -1;
    }
    usleep(2000);
  }
}

// Forks and execs argv (env empty) with stdio on /dev/null. Returns the exec
// errno in *exec_errno (0 if the exec succeeded) and the child's exit code.
int Spawn(const std::string& path, const Args& argv, int* exec_errno, int fd_to_exec = -1) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) {
    *exec_errno = errno;
    return -3;
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    int null = open("/dev/null", O_RDWR);
    if (null >= 0) {
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
    }
    std::vector<char*> av;
    for (const auto& a : argv) av.push_back(const_cast<char*>(a.c_str()));
    av.push_back(nullptr);
    char* envp[] = {nullptr};
    if (fd_to_exec >= 0) {
      fexecve(fd_to_exec, av.data(), envp);
    } else {
      execve(path.c_str(), av.data(), envp);
    }
    int e = errno;
    (void)!write(p[1], &e, sizeof e);
    _exit(127);
  }
  close(p[1]);
  if (pid < 0) {
    *exec_errno = errno;
    close(p[0]);
    return -3;
  }
  int e = 0;
  ssize_t n = read(p[0], &e, sizeof e);
  close(p[0]);
  *exec_errno = n == sizeof e ? e : 0;
  return WaitChild(pid, 5000);
}

// ---------------------------------------------------------------------------
// Identity and configuration

Outcome Whoami(const Args&) {
  Tally t;
  auto st = ProcStatus("self");
  if (st.empty()) {
    t.Error("cannot read /proc/self/status");
    return t.Done();
  }
  for (const char* k : {"Uid", "Gid"}) {
    t.Add(std::string(k) + "=" + st[k]);
    for (const auto& f : Fields(st[k])) {
      if (f == "0") t.Escape(std::string(k) + " has 0");
    }
  }
  t.Add("Groups=" + st["Groups"]);
  for (const auto& g : Fields(st["Groups"])) {
    if (g == "0") t.Escape("supplementary group 0");
  }
  for (const char* k : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    t.Add(std::string(k) + "=" + st[k]);
    if (st[k] != "0000000000000000") t.Escape(std::string(k) + " not empty");
  }
  t.Add("NoNewPrivs=" + st["NoNewPrivs"]);
  if (st["NoNewPrivs"] != "1") t.Escape("no_new_privs not set");
  t.Add("Seccomp=" + st["Seccomp"]);
  if (st["Seccomp"] != "2") t.Escape("seccomp filter not active");
  long abi = syscall(__NR_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  t.Add("landlock_abi=" + (abi < 0 ? ErrName(errno) : std::to_string(abi)));
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  t.Add(std::string("hostname=") + host);
  return t.Done();
}

// Landlock is the only thing that refuses a symlink in a 1777 tmpfs: EACCES
// there means a Landlock domain is enforced on this process.
Outcome Landlock(const Args&) {
  Tally t;
  long abi = syscall(__NR_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 1) {
    t.Escape("kernel landlock abi=" + (abi < 0 ? ErrName(errno) : std::to_string(abi)));
  } else {
    t.Add("abi=" + std::to_string(abi));
  }
  std::string out = OutputDir();
  if (t.Try("symlink(/tmp)", [] { return symlink("/job", "/tmp/ff-ll-link"); }) == 0) {
    unlink("/tmp/ff-ll-link");
  } else if (t.last_errno() != EACCES) {
    t.Escape("symlink in /tmp refused by something other than Landlock (not EACCES)");
  }
  if (t.Try("mkfifo(/tmp)", [] { return mkfifo("/tmp/ff-ll-fifo", 0600); }) == 0) {
    unlink("/tmp/ff-ll-fifo");
  }
  std::string link = out + "/ff-ll-link";
  if (t.Try("symlink(output)", [&] { return symlink("/job", link.c_str()); }) == 0) {
    unlink(link.c_str());
  }
  return t.Done();
}

Outcome Env(const Args& args) {
  Tally t;
  std::set<std::string> allowed = {"PATH", "HOME", "TMPDIR", "LANG", "USER", "LOGNAME"};
  for (const auto& a : args) allowed.insert(a);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    env[kv.substr(0, eq)] = eq == std::string::npos ? "" : kv.substr(eq + 1);
  }
  for (const auto& [k, v] : env) {
    if (!allowed.count(k)) t.Escape("unexpected " + k + "=" + Printable(v, 60));
  }
  std::map<std::string, std::string> want = {{"HOME", "/tmp"},
                                             {"TMPDIR", "/tmp"},
                                             {"LANG", "C.UTF-8"},
                                             {"USER", "render"},
                                             {"LOGNAME", "render"}};
  for (const auto& [k, v] : want) {
    auto it = env.find(k);
    if (it == env.end()) {
      t.Error(k + " missing");
    } else if (it->second != v) {
      t.Error(k + "=" + Printable(it->second, 60) + " (contract: " + v + ")");
    }
  }
  if (!env.count("PATH")) t.Error("PATH missing");
  t.Add(std::to_string(env.size()) + " variables");
  return t.Done();
}

Outcome LeakedFds(const Args&) {
  Tally t;
  DIR* d = opendir("/proc/self/fd");
  if (!d) {
    t.Error("opendir /proc/self/fd=" + ErrName(errno));
    return t.Done();
  }
  int self = dirfd(d);
  std::vector<std::pair<int, std::string>> fds;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    int fd = atoi(e->d_name);
    char target[512] = {};
    std::string p = std::string("/proc/self/fd/") + e->d_name;
    ssize_t n = readlink(p.c_str(), target, sizeof target - 1);
    fds.emplace_back(fd, n > 0 ? std::string(target, static_cast<size_t>(n)) : "?");
  }
  closedir(d);
  for (const auto& [fd, target] : fds) {
    if (fd == self) continue;
    std::string s = "fd " + std::to_string(fd) + " -> " + Printable(target, 100);
    if (fd > 2) {
      t.Escape("leaked " + s);
    } else {
      t.Add(s);
    }
  }
  return t.Done();
}

Outcome DevNodes(const Args&) {
  Tally t;
  std::set<std::string> allowed = {"null", "zero", "urandom", "fd", "stdin", "stdout", "stderr"};
  std::string names;
  for (const auto& n : ListDir("/dev")) {
    names += (names.empty() ? "" : ",") + n;
    if (!allowed.count(n)) t.Escape("unexpected /dev/" + n);
  }
  t.Add("/dev=" + names);
  const std::map<std::string, dev_t> want = {
      {"/dev/null", makedev(1, 3)}, {"/dev/zero", makedev(1, 5)}, {"/dev/urandom", makedev(1, 9)}};
  for (const auto& [p, rdev] : want) {
    struct stat sb;
    if (stat(p.c_str(), &sb) != 0 || !S_ISCHR(sb.st_mode) || sb.st_rdev != rdev) {
      t.Error(p + " is not the expected character device");
    }
  }
  for (const char* p : {"/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/vda", "/dev/sda",
                        "/dev/tty", "/dev/ptmx", "/dev/fuse", "/dev/net/tun", "/dev/vsock",
                        "/dev/vhost-vsock", "/dev/console"}) {
    t.TryFd(std::string("open ") + p, [p] { return open(p, O_RDONLY | O_CLOEXEC | O_NONBLOCK); });
  }
  return t.Done();
}

// Checks /proc/self/mountinfo against the contract: only the output area, /tmp,
// /proc and device binds writable; output and /tmp noexec/nosuid/nodev; /job
// read-only noexec; the root read-only; /proc/sys read-only.
Outcome Mounts(const Args&) {
  Tally t;
  std::string info;
  if (!ReadAll("/proc/self/mountinfo", &info)) {
    t.Error("cannot read mountinfo");
    return t.Done();
  }
  std::string out = OutputDir();
  std::map<std::string, std::set<std::string>> opts;  // last mount at a point wins
  std::string listing;
  size_t pos = 0;
  while (pos < info.size()) {
    size_t nl = info.find('\n', pos);
    if (nl == std::string::npos) nl = info.size();
    auto f = Fields(info.substr(pos, nl - pos));
    pos = nl + 1;
    if (f.size() < 6) continue;
    std::set<std::string> o;
    size_t b = 0;
    std::string s = f[5];
    while (b <= s.size()) {
      size_t c = s.find(',', b);
      if (c == std::string::npos) c = s.size();
      o.insert(s.substr(b, c - b));
      b = c + 1;
    }
    std::string fstype;
    for (size_t i = 6; i + 1 < f.size(); ++i) {
      if (f[i] == "-") fstype = f[i + 1];
    }
    opts[f[4]] = o;
    listing += (listing.empty() ? "" : " ") + f[4] + "(" + (o.count("ro") ? "ro" : "rw") +
               (o.count("noexec") ? ",noexec" : "") + "," + fstype + ")";
  }
  for (const auto& [mp, o] : opts) {
    bool rw = !o.count("ro");
    bool may_write = mp == out || mp == "/tmp" || mp == "/proc" || mp.rfind("/dev/", 0) == 0;
    if (rw && !may_write) t.Escape("writable mount " + mp);
  }
  for (const std::string& mp : {out, std::string("/tmp")}) {
    auto it = opts.find(mp);
    if (it == opts.end()) {
      t.Error("no mount at " + mp);
      continue;
    }
    for (const char* need : {"noexec", "nosuid", "nodev"}) {
      if (!it->second.count(need)) t.Escape(mp + " lacks " + need);
    }
  }
  auto job = opts.find("/job");
  if (job != opts.end() && (!job->second.count("ro") || !job->second.count("noexec"))) {
    t.Escape("/job not ro+noexec");
  }
  if (opts.count("/") && !opts["/"].count("ro")) t.Escape("root is writable");
  if (!opts.count("/proc/sys") || !opts["/proc/sys"].count("ro")) {
    t.Escape("/proc/sys is not a read-only mount");
  }
  t.Add(listing);
  return t.Done();
}

// ---------------------------------------------------------------------------
// Reading outside

Outcome ReadShadow(const Args&) {
  Tally t;
  for (const char* p : {"/etc/shadow", "/etc/gshadow", "/etc/sudoers", "/root/.ssh/id_rsa",
                        "/etc/ssh/ssh_host_ed25519_key"}) {
    t.TryFd(std::string("open ") + p, [p] { return open(p, O_RDONLY | O_CLOEXEC); });
  }
  return t.Done();
}

// Host paths (another job's secure location, the host's files) must be neither
// readable nor even visible.
Outcome ReadHostPath(const Args& args) {
  Tally t;
  if (args.empty()) t.Error("no path given");
  for (const auto& p : args) {
    t.TryFd("open " + p, [&] { return open(p.c_str(), O_RDONLY | O_CLOEXEC); });
    struct stat sb;
    t.Try("stat " + p, [&] { return stat(p.c_str(), &sb); });
  }
  return t.Done();
}

// Opens `path` and escapes when it holds `token` (the host marker's content).
void TryReadToken(Tally& t, const std::string& path, const std::string& token) {
  std::string data;
  int e = 0;
  if (!ReadAll(path, &data, &e)) {
    t.Add(Printable(path, 80) + "=" + ErrName(e));
  } else if (!token.empty() && data.find(token) != std::string::npos) {
    t.Escape(Printable(path, 80) + "=READ HOST MARKER");
  } else {
    t.Add(Printable(path, 80) + "=opened(sandbox file, no marker)");
  }
}

Outcome DotDot(const Args& args) {
  Tally t;
  if (args.size() < 2) {
    t.Error("usage: dotdot HOSTPATH TOKEN");
    return t.Done();
  }
  const std::string& host = args[0];
  const std::string token = Decode(args[1]);
  std::string up = "/../../../../../../../..";
  std::string out = OutputDir();
  mkdir((out + "/a").c_str(), 0700);
  mkdir((out + "/a/b").c_str(), 0700);
  for (const std::string& base :
       {std::string("/job"), out, out + "/a/b", std::string("/tmp"), std::string("/proc/self/cwd"),
        std::string("/proc/self/root"), std::string("/dev/fd"), std::string("/opt/probe")}) {
    TryReadToken(t, base + up + host, token);
  }
  for (const char* dir : {"/job", "/tmp"}) {
    int dfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) continue;
    std::string rel = "../../../../../.." + host;
    int fd = openat(dfd, rel.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      t.Add(std::string("openat(") + dir + ", ../..host)=" + ErrName(errno));
    } else {
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof buf);
      std::string data(buf, n > 0 ? static_cast<size_t>(n) : 0);
      if (data.find(token) != std::string::npos) {
        t.Escape(std::string("openat(") + dir + ", ../..host)=READ HOST MARKER");
      } else {
        t.Add(std::string("openat(") + dir + ", ../..host)=opened(no marker)");
      }
      close(fd);
    }
    close(dfd);
  }
  for (const char* p : {"/job/../../etc/shadow", "/tmp/../../../etc/shadow"}) {
    t.TryFd(std::string("open ") + p, [p] { return open(p, O_RDONLY | O_CLOEXEC); });
  }
  // What ".." of the sandbox root and of /job resolve to.
  struct stat root, up1;
  if (stat("/", &root) == 0 && stat("/job/../..", &up1) == 0) {
    if (root.st_ino != up1.st_ino || root.st_dev != up1.st_dev) {
      t.Escape("/job/../.. is not the sandbox root");
    }
  }
  return t.Done();
}

// Walks the visible tree (not /proc, /sys) looking for names containing
// `fragment`; small regular files outside /usr are searched for `token`.
void Search(Tally& t, const std::string& dir, const std::string& fragment, const std::string& token,
            int depth, int* files) {
  if (depth > 24 || dir == "/proc" || dir == "/sys" || *files > 400000) return;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::pair<std::string, unsigned char>> entries;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") entries.emplace_back(n, e->d_type);
  }
  closedir(d);
  for (const auto& [n, type] : entries) {
    std::string p = (dir == "/" ? "" : dir) + "/" + n;
    ++*files;
    if (n.find(fragment) != std::string::npos) t.Escape("found " + Printable(p, 120));
    if (type == DT_DIR) {
      Search(t, p, fragment, token, depth + 1, files);
    } else if (type == DT_REG && p.rfind("/usr/", 0) != 0) {
      struct stat sb;
      if (stat(p.c_str(), &sb) == 0 && sb.st_size <= 65536) {
        std::string data;
        if (ReadAll(p, &data) && data.find(token) != std::string::npos) {
          t.Escape("token in " + Printable(p, 120));
        }
      }
    }
  }
}

// Two jobs at once (see escape_test.cc): reads its own marker, then tries the
// other job's by host path, by guessed paths, by a walk of everything visible
// and through /proc. Synchronised by the test with SIGUSR1: "go" once both
// sandboxes are up, "release" once both probes have printed.
Outcome CrossJob(const Args& args) {
  Tally t;
  if (args.size() < 5) {
    t.Error("usage: cross-job OWN_PATH OWN_TOKEN OTHER_HOSTPATH OTHER_TOKEN OTHER_UID");
    return t.Done();
  }
  const std::string &own = args[0], &other = args[2], &other_uid = args[4];
  const std::string own_token = Decode(args[1]), other_token = Decode(args[3]);
  // Leave traces of this job where the other one could look if anything were shared.
  std::string out = OutputDir();
  for (const std::string& p : {"/tmp/ff-secret-" + own_token, out + "/ff-secret-" + own_token}) {
    int fd = open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd >= 0) {
      WriteAll(fd, own_token.data(), own_token.size());
      close(fd);
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  const char ready[] = "ff-escape-probe: ready\n";
  WriteAll(2, ready, sizeof ready - 1);
  sigwaitinfo(&set, nullptr);

  std::string data;
  int e = 0;
  if (!ReadAll(own, &data, &e)) {
    t.Error("own marker " + own + "=" + ErrName(e));
  } else if (data.find(own_token) == std::string::npos) {
    t.Error("own marker has wrong content");
  } else {
    t.Add("own marker read");
  }
  TryReadToken(t, other, other_token);
  struct stat sb;
  t.Try("stat other", [&] { return stat(other.c_str(), &sb); });
  std::string other_dir = other.substr(0, other.rfind('/'));
  std::string other_base = other.substr(other.rfind('/') + 1);
  std::string other_parent = other_dir.substr(other_dir.rfind('/') + 1);
  for (const std::string& guess :
       {"/proc/1/root" + other, "/job/../" + other_parent + "/" + other_base,
        "/tmp/ff-secret-" + other_token, out + "/ff-secret-" + other_token,
        "/tmp/" + other_parent + "/" + other_base, "/job/" + other_base}) {
    TryReadToken(t, guess, other_token);
  }
  int files = 0;
  Search(t, "/", other_token, other_token, 0, &files);
  if (files == 0) {  // the root itself may not be listable (Landlock): walk what is mounted
    for (const std::string& root :
         {std::string("/job"), std::string("/tmp"), out, std::string("/studio"),
          std::string("/opt"), std::string("/etc"), std::string("/dev"), std::string("/usr")}) {
      Search(t, root, other_token, other_token, 1, &files);
    }
  }
  t.Add("walked " + std::to_string(files) + " entries");
  auto pids = VisiblePids();
  for (const auto& pid : pids) {
    std::string cmd;
    if (ReadAll("/proc/" + pid + "/cmdline", &cmd) && cmd.find(other_token) != std::string::npos) {
      t.Escape("other job's token in the command line of pid " + pid);
    }
    auto uids = Fields(ProcStatus(pid)["Uid"]);
    if (!uids.empty() && uids[0] == other_uid) t.Escape("other job's process visible: pid " + pid);
  }
  t.Add(std::to_string(pids.size()) + " pids visible");
  Outcome o = t.Done();
  PrintOutcome("cross-job", o);
  sigwaitinfo(&set, nullptr);  // release
  _exit(static_cast<int>(o.verdict));
}

Outcome Proc1Root(const Args& args) {
  Tally t;
  std::string host = args.size() > 0 ? args[0] : "";
  std::string token = args.size() > 1 ? Decode(args[1]) : "";
  t.TryFd("open /proc/1/root/etc/shadow",
          [] { return open("/proc/1/root/etc/shadow", O_RDONLY | O_CLOEXEC); });
  if (!host.empty()) TryReadToken(t, "/proc/1/root" + host, token);
  if (!host.empty()) TryReadToken(t, "/proc/1/cwd/../../../../.." + host, token);
  // An fd the init holds (e.g. on a host directory) would be a door out.
  DIR* d = opendir("/proc/1/fd");
  if (!d) {
    t.Add("opendir /proc/1/fd=" + ErrName(errno));
  } else {
    std::vector<std::string> fds;
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') fds.push_back(e->d_name);
    }
    closedir(d);
    for (const auto& fd : fds) {
      std::string p = "/proc/1/fd/" + fd;
      char target[512] = {};
      ssize_t n = readlink(p.c_str(), target, sizeof target - 1);
      int o = open(p.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
      if (o >= 0) {
        close(o);
        if (atoi(fd.c_str()) > 2) {
          t.Escape("opened init's " + p + " -> " + (n > 0 ? Printable(target, 100) : "?"));
        }
      } else {
        t.Add(p + "=" + ErrName(errno));
      }
    }
  }
  t.TryFd("open /proc/1/mem", [] { return open("/proc/1/mem", O_RDWR | O_CLOEXEC); });
  return t.Done();
}

// The wrapper's init and every visible process must not carry the render
// server's secrets in its environment. A host path in /proc/1/cmdline is noted.
Outcome Proc1Environ(const Args& args) {
  Tally t;
  if (args.empty()) {
    t.Error("usage: proc1-environ SECRET [HOST_PATH_FRAGMENT]");
    return t.Done();
  }
  const std::string secret = Decode(args[0]);
  std::string data;
  int e = 0;
  if (!ReadAll("/proc/1/environ", &data, &e)) {
    t.Add("/proc/1/environ=" + ErrName(e));
  } else if (data.find(secret) != std::string::npos) {
    t.Escape("/proc/1/environ holds the secret");
  } else {
    t.Add("/proc/1/environ readable, no secret");
  }
  for (const auto& pid : VisiblePids()) {
    if (ReadAll("/proc/" + pid + "/environ", &data) && data.find(secret) != std::string::npos) {
      t.Escape("/proc/" + pid + "/environ holds the secret");
    }
    if (ReadAll("/proc/" + pid + "/cmdline", &data)) {
      if (data.find(secret) != std::string::npos) t.Escape("/proc/" + pid + "/cmdline: secret");
      if (args.size() > 1 && data.find(args[1]) != std::string::npos) {
        t.Add("note: /proc/" + pid + "/cmdline shows host path");
      }
    }
  }
  return t.Done();
}

// ---------------------------------------------------------------------------
// Writing outside

// Tries to create new entries in `dir` (removing any that appear).
void TryCreateIn(Tally& t, const std::string& dir) {
  std::string f = dir + (dir == "/" ? "" : "/") + "ff-escape-new";
  if (t.Try("create " + f, [&] { return open(f.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644); }) >=
      0) {
    unlink(f.c_str());
  }
  std::string d = f + "-dir";
  if (t.Try("mkdir " + d, [&] { return mkdir(d.c_str(), 0755); }) == 0) rmdir(d.c_str());
}

// Opens an existing file for writing (no O_TRUNC, writes nothing).
void TryOpenWrite(Tally& t, const std::string& f) {
  t.TryFd("open-w " + f, [&] { return open(f.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC); });
}

Outcome WriteJob(const Args&) {
  Tally t;
  std::vector<std::string> files = ListDir("/job");
  if (files.empty()) t.Error("/job is empty or unreadable");
  TryCreateIn(t, "/job");
  for (const auto& n : files) {
    std::string f = "/job/" + n;
    TryOpenWrite(t, f);
    t.Try("truncate " + n, [&] { return truncate(f.c_str(), 0); });
    t.Try("chmod " + n, [&] { return chmod(f.c_str(), 0777); });
    t.Try("utimes " + n, [&] { return utimes(f.c_str(), nullptr); });
    t.Try("setxattr " + n, [&] { return setxattr(f.c_str(), "user.ff", "x", 1, 0); });
    t.Try("rename " + n, [&] { return rename(f.c_str(), (f + ".moved").c_str()); });
    t.Try("unlink " + n, [&] { return unlink(f.c_str()); });
  }
  return t.Done();
}

Outcome WriteRoot(const Args&) {
  Tally t;
  for (const char* d : {"/", "/opt", "/opt/probe", "/dev", "/proc", "/studio", "/studio/renders"}) {
    TryCreateIn(t, d);
  }
  TryOpenWrite(t, "/opt/probe/ff-escape-probe");
  return t.Done();
}

Outcome WriteUsr(const Args&) {
  Tally t;
  for (const char* d : {"/usr", "/usr/bin", "/usr/lib", "/usr/local/bin"}) TryCreateIn(t, d);
  TryOpenWrite(t, "/usr/bin/true");
  return t.Done();
}

Outcome WriteEtc(const Args&) {
  Tally t;
  TryCreateIn(t, "/etc");
  TryOpenWrite(t, "/etc/passwd");
  TryOpenWrite(t, "/etc/group");
  return t.Done();
}

Outcome SymlinkOutput(const Args& args) {
  Tally t;
  std::string out = OutputDir();
  std::vector<std::pair<std::string, std::string>> links = {
      {"/etc/passwd", out + "/link-passwd"}, {"..", out + "/link-up"}, {"/", out + "/link-root"}};
  if (!args.empty()) links.emplace_back(args[0], out + "/link-host");
  for (const auto& [target, link] : links) {
    t.Try("symlink " + link, [&] { return symlink(target.c_str(), link.c_str()); });
  }
  return t.Done();
}

// Cross-mount links must fail; a link inside the output may be created (Landlock
// allows it) and the collector must then refuse both names.
Outcome HardlinkOutput(const Args&) {
  Tally t;
  std::string out = OutputDir();
  std::string a = out + "/linked-a", b = out + "/linked-b";
  int fd = open(a.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    t.Error("create " + a + "=" + ErrName(errno));
    return t.Done();
  }
  WriteAll(fd, "hard\n", 5);
  close(fd);
  fd = open((out + "/plain.txt").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  if (fd >= 0) {
    WriteAll(fd, "plain\n", 6);
    close(fd);
  }
  if (link(a.c_str(), b.c_str()) == 0) {
    t.Add("in-output link created (collector must refuse)");
  } else {
    t.Add("in-output link=" + ErrName(errno));
  }
  auto jobs = ListDir("/job");
  if (!jobs.empty()) {
    std::string src = "/job/" + jobs[0];
    t.Try("link /job file into output",
          [&] { return link(src.c_str(), (out + "/from-job").c_str()); });
    int jfd = open(src.c_str(), O_RDONLY | O_CLOEXEC);
    if (jfd >= 0) {
      t.Try("linkat(AT_EMPTY_PATH) /job file",
            [&] { return linkat(jfd, "", AT_FDCWD, (out + "/from-job2").c_str(), AT_EMPTY_PATH); });
      close(jfd);
    }
  }
  t.Try("link /etc/passwd into /tmp", [] { return link("/etc/passwd", "/tmp/passwd-link"); });
  t.Try("link output file into /tmp", [&] { return link(a.c_str(), "/tmp/linked-c"); });
  return t.Done();
}

Outcome MkfifoOutput(const Args&) {
  Tally t;
  std::string out = OutputDir();
  t.Try("mkfifo output", [&] { return mkfifo((out + "/fifo").c_str(), 0600); });
  t.Try("mknod S_IFIFO output", [&] { return mknod((out + "/fifo2").c_str(), S_IFIFO | 0600, 0); });
  t.Try("mkfifo /tmp", [] { return mkfifo("/tmp/fifo", 0600); });
  return t.Done();
}

Outcome UnixSocketOutput(const Args&) {
  Tally t;
  for (const std::string& p : {OutputDir() + "/sock", std::string("/tmp/sock")}) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      t.Error("socket(AF_UNIX)=" + ErrName(errno));
      continue;
    }
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", p.c_str());
    t.Try("bind " + p, [&] { return bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr); });
    close(s);
  }
  return t.Done();
}

Outcome MknodDevice(const Args&) {
  Tally t;
  std::string out = OutputDir();
  t.Try("mknod chr 1,3 output",
        [&] { return mknod((out + "/null2").c_str(), S_IFCHR | 0666, makedev(1, 3)); });
  t.Try("mknod blk 253,0 /tmp", [] { return mknod("/tmp/vda", S_IFBLK | 0666, makedev(253, 0)); });
  t.Try("mknod chr 1,1 /tmp (mem)",
        [] { return mknod("/tmp/mem", S_IFCHR | 0666, makedev(1, 1)); });
  return t.Done();
}

Outcome ProcSysWrite(const Args&) {
  Tally t;
  for (const char* p :
       {"/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe",
        "/proc/sys/vm/drop_caches", "/proc/sys/net/ipv4/ip_forward", "/proc/sysrq-trigger",
        "/proc/sys/fs/binfmt_misc/register", "/proc/sys/kernel/ns_last_pid"}) {
    // Open only: nothing is ever written to these files.
    t.TryFd(std::string("open-w ") + p, [p] { return open(p, O_WRONLY | O_CLOEXEC); });
  }
  t.Try("sethostname", [] { return sethostname("escaped", 7); });
  t.Try("setdomainname", [] { return setdomainname("escaped", 7); });
  return t.Done();
}

Outcome OomAdj(const Args&) {
  Tally t;
  for (const char* p : {"/proc/self/oom_score_adj", "/proc/1/oom_score_adj"}) {
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
      t.Add(std::string(p) + " open=" + ErrName(errno));
      continue;
    }
    t.Try(std::string("write -1000 to ") + p, [fd] { return write(fd, "-1000", 5); });
    close(fd);
  }
  return t.Done();
}

Outcome KillInit(const Args&) {
  Tally t;
  // The init forwards SIGTERM & co. to the program (this process): ignore them
  // so that only the init's own reaction is observed.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2}) signal(sig, SIG_IGN);
  for (int sig : {SIGTERM, SIGKILL, SIGSTOP}) {
    if (kill(1, sig) != 0) {
      t.Add(std::string("kill(1,") + sigabbrev_np(sig) + ")=" + ErrName(errno));
    } else {
      t.Add(std::string("kill(1,") + sigabbrev_np(sig) + ") sent");
    }
  }
  // If the init had died this process would have been killed with it.
  auto st = ProcStatus("1");
  std::string state = st.count("State") ? st["State"] : "?";
  if (!state.empty() && (state[0] == 'T' || state[0] == 'Z' || state[0] == 'X')) {
    t.Escape("init state " + state);
    kill(1, SIGCONT);
  } else {
    t.Add("init state " + state);
  }
  return t.Done();
}

// ---------------------------------------------------------------------------
// Network

void TrySockets(Tally& t, int family, const char* fname, std::initializer_list<int> types,
                int proto = 0) {
  for (int type : types) {
    t.TryFd(std::string("socket(") + fname + "," + std::to_string(type) + ")",
            [&] { return socket(family, type | SOCK_CLOEXEC, proto); });
  }
}

Outcome SocketInet(const Args&) {
  Tally t;
  TrySockets(t, AF_INET, "AF_INET", {SOCK_STREAM, SOCK_DGRAM});
  TrySockets(t, AF_INET, "AF_INET/icmp", {SOCK_DGRAM, SOCK_RAW}, IPPROTO_ICMP);
  return t.Done();
}

Outcome SocketInet6(const Args&) {
  Tally t;
  TrySockets(t, AF_INET6, "AF_INET6", {SOCK_STREAM, SOCK_DGRAM});
  TrySockets(t, AF_INET6, "AF_INET6/icmp", {SOCK_DGRAM, SOCK_RAW}, IPPROTO_ICMPV6);
  return t.Done();
}

Outcome SocketNetlink(const Args&) {
  Tally t;
  for (int proto : {0 /*ROUTE*/, 9 /*AUDIT*/, 15 /*KOBJECT_UEVENT*/, 16 /*GENERIC*/}) {
    t.TryFd("socket(AF_NETLINK," + std::to_string(proto) + ")",
            [proto] { return socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, proto); });
  }
  return t.Done();
}

Outcome SocketPacket(const Args&) {
  Tally t;
  TrySockets(t, AF_PACKET, "AF_PACKET", {SOCK_RAW, SOCK_DGRAM}, htons(0x0003 /*ETH_P_ALL*/));
  return t.Done();
}

// vsock is not network-namespaced: on a VM it reaches the host directly.
Outcome SocketVsock(const Args&) {
  Tally t;
  TrySockets(t, AF_VSOCK, "AF_VSOCK", {SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET});
  return t.Done();
}

Outcome SocketAnyFamily(const Args&) {
  Tally t;
  int refused = 0;
  for (int family = 0; family < AF_MAX; ++family) {
    if (family == AF_UNIX) continue;
    for (int type : {SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, SOCK_SEQPACKET}) {
      int s = socket(family, type | SOCK_CLOEXEC, 0);
      if (s >= 0) {
        t.Escape("socket(" + std::to_string(family) + "," + std::to_string(type) + ")=OK");
        close(s);
      } else {
        ++refused;
      }
    }
  }
  t.Add(std::to_string(refused) + " family/type pairs refused");
  int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) t.Error("socket(AF_UNIX) refused too: " + ErrName(errno));
  if (s >= 0) close(s);
  return t.Done();
}

Outcome Connect(int family, const Args& args) {
  Tally t;
  if (args.empty()) {
    t.Error("usage: connect-tcp4|connect-tcp6 PORT");
    return t.Done();
  }
  int port = atoi(args[0].c_str());
  int s = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) {
    t.Add("socket=" + ErrName(errno));
    return t.Done();
  }
  sockaddr_storage ss = {};
  socklen_t len;
  if (family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(port));
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *a;
  } else {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(port));
    a->sin6_addr = in6addr_loopback;
    len = sizeof *a;
  }
  t.Try("connect loopback:" + args[0],
        [&] { return connect(s, reinterpret_cast<sockaddr*>(&ss), len); });
  close(s);
  return t.Done();
}

Outcome ConnectTcp4(const Args& args) { return Connect(AF_INET, args); }
Outcome ConnectTcp6(const Args& args) { return Connect(AF_INET6, args); }

// Abstract unix sockets are scoped by network namespace; path sockets by mounts.
Outcome ConnectAbstract(const Args& args) {
  Tally t;
  if (args.empty()) {
    t.Error("usage: connect-abstract NAME [HOST_SOCKET_PATH]");
    return t.Done();
  }
  for (size_t i = 0; i < args.size() && i < 2; ++i) {
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      t.Error("socket(AF_UNIX)=" + ErrName(errno));
      continue;
    }
    sockaddr_un addr = {};
    addr.sun_family = AF_UNIX;
    socklen_t len;
    if (i == 0) {
      memcpy(addr.sun_path + 1, args[0].data(), std::min(args[0].size(), sizeof addr.sun_path - 2));
      len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + args[0].size());
    } else {
      snprintf(addr.sun_path, sizeof addr.sun_path, "%s", args[1].c_str());
      len = sizeof addr;
    }
    t.Try(i == 0 ? "connect @" + args[0] : "connect " + args[1],
          [&] { return connect(s, reinterpret_cast<sockaddr*>(&addr), len); });
    close(s);
  }
  return t.Done();
}

// ---------------------------------------------------------------------------
// Resource limits

// Children stay alive (sleeping) so the test can check nothing is left behind.
Outcome ForkBomb(const Args&) {
  Tally t;
  int n = 0;
  for (; n < 10000; ++n) {
    pid_t pid = fork();
    if (pid == 0) {
      for (;;) pause();
    }
    if (pid < 0) {
      t.Add("fork failed with " + ErrName(errno) + " after " + std::to_string(n) + " children");
      return t.Done();
    }
  }
  t.Escape("forked " + std::to_string(n) + " children");
  return t.Done();
}

void* Sleeper(void*) {
  for (;;) pause();
  return nullptr;
}

Outcome ThreadBomb(const Args&) {
  Tally t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 64 << 10);
  int n = 0;
  for (; n < 10000; ++n) {
    pthread_t th;
    int rc = pthread_create(&th, &attr, Sleeper, nullptr);
    if (rc != 0) {
      t.Add("pthread_create failed with " + ErrName(rc) + " after " + std::to_string(n) +
            " threads");
      return t.Done();
    }
  }
  t.Escape("created " + std::to_string(n) + " threads");
  return t.Done();
}

// Writes files of `dir` until ENOSPC (SIGXFSZ ignored, so RLIMIT_FSIZE shows as
// EFBIG and the next file is started).
Outcome Fill(const std::string& dir) {
  Tally t;
  signal(SIGXFSZ, SIG_IGN);
  std::string chunk(1 << 20, 'x');
  long long total = 0;
  const long long cap = 64ll << 20;
  for (int k = 0; total < cap; ++k) {
    std::string f = dir + "/fill-" + std::to_string(k);
    int fd = open(f.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
      t.Add("create " + f + "=" + ErrName(errno) + " after " + std::to_string(total) + " bytes");
      return t.Done();
    }
    long long in_file = 0;
    for (;;) {
      ssize_t w = write(fd, chunk.data(), chunk.size());
      if (w < 0) {
        int e = errno;
        close(fd);
        if (e == EFBIG) {
          t.Add("EFBIG at " + std::to_string(in_file) + " bytes in " + f);
          break;
        }
        t.Add(ErrName(e) + " after " + std::to_string(total) + " bytes in " +
              std::to_string(k + 1) + " files");
        if (e != ENOSPC && e != EDQUOT) t.Error("unexpected write error");
        return t.Done();
      }
      total += w;
      in_file += w;
      if (total >= cap) {
        close(fd);
        break;
      }
    }
  }
  t.Escape("wrote " + std::to_string(total) + " bytes without ENOSPC");
  return t.Done();
}

Outcome FillOutput(const Args&) { return Fill(OutputDir()); }
Outcome FillTmp(const Args&) { return Fill("/tmp"); }

// One file, with whatever SIGXFSZ disposition the wrapper gives: expected to be
// killed by SIGXFSZ (report limit "file_size") or to get EFBIG.
Outcome FileSizeSignal(const Args&) {
  Tally t;
  std::string chunk(1 << 20, 'y');
  std::string f = OutputDir() + "/big";
  int fd = open(f.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    t.Error("create=" + ErrName(errno));
    return t.Done();
  }
  long long total = 0;
  while (total < (64ll << 20)) {
    ssize_t w = write(fd, chunk.data(), chunk.size());
    if (w < 0) {
      t.Add(ErrName(errno) + " at " + std::to_string(total) + " bytes (SIGXFSZ not delivered)");
      close(fd);
      return t.Done();
    }
    total += w;
  }
  close(fd);
  t.Escape("wrote " + std::to_string(total) + " bytes into one file");
  return t.Done();
}

// Empty files cost inodes and kernel memory, not tmpfs blocks.
Outcome InodeBomb(const Args&) {
  Tally t;
  const int cap = 200000;
  mkdir("/tmp/inodes", 0700);
  int n = 0;
  for (; n < cap; ++n) {
    char name[64];
    snprintf(name, sizeof name, "/tmp/inodes/%d", n);
    int fd = open(name, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
      t.Add("create failed with " + ErrName(errno) + " after " + std::to_string(n) + " files");
      return t.Done();
    }
    close(fd);
  }
  t.Escape("created " + std::to_string(n) + " empty files in /tmp (~" + std::to_string(n / 1000) +
           " MB of kernel memory) without a limit");
  return t.Done();
}

Outcome MemoryBomb(const Args&) {
  Tally t;
  const size_t step = 16u << 20;
  size_t total = 0;
  while (total < (2048ull << 20)) {
    void* p = mmap(nullptr, step, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
      t.Add("mmap failed with " + ErrName(errno) + " after " + std::to_string(total >> 20) +
            " MiB");
      return t.Done();
    }
    memset(p, 0x5a, step);
    total += step;
  }
  t.Escape("touched " + std::to_string(total >> 20) + " MiB");
  return t.Done();
}

double MonotonicSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Spins (in `forks` extra processes too) until killed; escapes after 8 s.
Outcome CpuSpin(const Args& args) {
  Tally t;
  int forks = args.empty() ? 0 : atoi(args[0].c_str());
  for (int i = 0; i < forks; ++i) {
    if (fork() == 0) {
      for (;;) asm volatile("");
    }
  }
  double start = MonotonicSeconds();
  while (MonotonicSeconds() - start < 8) {
    for (int i = 0; i < 1000000; ++i) asm volatile("");
  }
  t.Escape("spun 8 s of wall time with " + std::to_string(forks + 1) + " processes");
  return t.Done();
}

Outcome SleepForever(const Args&) {
  for (;;) pause();
}

// Double fork + setsid: the grandchild outlives the probe and writes a heartbeat
// in /tmp forever. The test checks that no process of the slot uid survives.
Outcome Daemon(const Args&) {
  Tally t;
  int p[2];
  if (pipe(p) != 0) {
    t.Error("pipe=" + ErrName(errno));
    return t.Done();
  }
  pid_t child = fork();
  if (child == 0) {
    setsid();
    signal(SIGHUP, SIG_IGN);
    pid_t gc = fork();
    if (gc != 0) _exit(0);
    close(p[0]);
    pid_t me = getpid();
    (void)!write(p[1], &me, sizeof me);
    close(p[1]);
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(null, 2);
    for (;;) {
      int fd = open("/tmp/heartbeat", O_CREAT | O_WRONLY | O_APPEND, 0644);
      if (fd >= 0) {
        (void)!write(fd, "beat\n", 5);
        close(fd);
      }
      usleep(50000);
    }
  }
  close(p[1]);
  pid_t gc = 0;
  ssize_t n = read(p[0], &gc, sizeof gc);
  close(p[0]);
  waitpid(child, nullptr, 0);
  if (n != sizeof gc) {
    t.Error("daemon did not start");
  } else {
    t.Add("daemon pid " + std::to_string(gc) + " running in its own session (must not survive)");
  }
  return t.Done();
}

// ---------------------------------------------------------------------------
// Privilege and kernel interfaces

Outcome PtraceInit(const Args&) {
  Tally t;
  t.Try("PTRACE_ATTACH 1", [] { return ptrace(PTRACE_ATTACH, 1, nullptr, nullptr); });
  t.Try("PTRACE_SEIZE 1", [] { return ptrace(PTRACE_SEIZE, 1, nullptr, nullptr); });
  char buf[16];
  iovec local = {buf, sizeof buf};
  iovec remote = {reinterpret_cast<void*>(0x400000), sizeof buf};
  t.Try("process_vm_readv 1", [&] { return process_vm_readv(1, &local, 1, &remote, 1, 0); });
  t.TryFd("open /proc/1/mem", [] { return open("/proc/1/mem", O_RDONLY | O_CLOEXEC); });
  return t.Done();
}

Outcome PtraceTraceme(const Args&) {
  Tally t;
  t.Try("PTRACE_TRACEME", [] { return ptrace(PTRACE_TRACEME, 0, nullptr, nullptr); });
  return t.Done();
}

Outcome PtraceChild(const Args&) {
  Tally t;
  pid_t child = fork();
  if (child == 0) {
    for (;;) pause();
  }
  if (child < 0) {
    t.Error("fork=" + ErrName(errno));
    return t.Done();
  }
  if (t.Try("PTRACE_ATTACH child",
            [&] { return ptrace(PTRACE_ATTACH, child, nullptr, nullptr); }) == 0) {
    waitpid(child, nullptr, __WALL);
    ptrace(PTRACE_DETACH, child, nullptr, nullptr);
  }
  if (t.Try("PTRACE_SEIZE child", [&] { return ptrace(PTRACE_SEIZE, child, nullptr, nullptr); }) ==
      0) {
    ptrace(PTRACE_DETACH, child, nullptr, nullptr);
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  return t.Done();
}

Outcome MountTmpfs(const Args&) {
  Tally t;
  std::string out = OutputDir();
  mkdir((out + "/mnt").c_str(), 0700);
  std::string mnt = out + "/mnt";
  t.Try("mount tmpfs /tmp", [] { return mount("none", "/tmp", "tmpfs", 0, "size=1M"); });
  t.Try("mount tmpfs output/mnt", [&] { return mount("none", mnt.c_str(), "tmpfs", 0, nullptr); });
  t.Try("remount /job rw",
        [] { return mount(nullptr, "/job", nullptr, MS_REMOUNT | MS_BIND, nullptr); });
  t.Try("bind / at output/mnt",
        [&] { return mount("/", mnt.c_str(), nullptr, MS_BIND | MS_REC, nullptr); });
  t.Try("mount proc", [&] { return mount("proc", mnt.c_str(), "proc", 0, nullptr); });
  t.Try("mount cgroup2", [&] { return mount("none", mnt.c_str(), "cgroup2", 0, nullptr); });
  t.TryFd("fsopen tmpfs", [] { return syscall(__NR_fsopen, "tmpfs", 0); });
  t.TryFd("open_tree / clone",
          [] { return syscall(__NR_open_tree, AT_FDCWD, "/", 1 /*OPEN_TREE_CLONE*/ | 0x8000); });
  struct {
    uint64_t set, clr, propagation, userns_fd;
  } attr = {0, 1 /*MOUNT_ATTR_RDONLY*/, 0, 0};
  t.Try("mount_setattr /job clear ro",
        [&] { return syscall(__NR_mount_setattr, AT_FDCWD, "/job", 0, &attr, sizeof attr); });
  return t.Done();
}

Outcome UmountProc(const Args&) {
  Tally t;
  for (const std::string& p : {std::string("/proc/sys"), std::string("/proc"), std::string("/job"),
                               OutputDir(), std::string("/")}) {
    t.Try("umount2 " + p, [&] { return umount2(p.c_str(), MNT_DETACH); });
  }
  return t.Done();
}

Outcome Chroot(const Args&) {
  Tally t;
  t.Try("chroot /tmp", [] { return chroot("/tmp"); });
  t.Try("chroot output", [] { return chroot(OutputDir().c_str()); });
  return t.Done();
}

Outcome PivotRoot(const Args&) {
  Tally t;
  std::string out = OutputDir();
  mkdir((out + "/old").c_str(), 0700);
  t.Try("pivot_root output",
        [&] { return syscall(SYS_pivot_root, out.c_str(), (out + "/old").c_str()); });
  if (chdir("/tmp") == 0) t.Try("pivot_root . .", [] { return syscall(SYS_pivot_root, ".", "."); });
  return t.Done();
}

Outcome UnshareUser(const Args&) {
  Tally t;
  t.Try("unshare(CLONE_NEWUSER)", [] { return unshare(CLONE_NEWUSER); });
  return t.Done();
}

Outcome UnshareNs(const Args&) {
  Tally t;
  const std::pair<int, const char*> flags[] = {{CLONE_NEWNS, "NEWNS"},
                                               {CLONE_NEWNET, "NEWNET"},
                                               {CLONE_NEWPID, "NEWPID"},
                                               {CLONE_NEWUTS, "NEWUTS"},
                                               {CLONE_NEWIPC, "NEWIPC"},
                                               {CLONE_NEWCGROUP, "NEWCGROUP"},
                                               {0x80 /*CLONE_NEWTIME*/, "NEWTIME"},
                                               {CLONE_NEWUSER | CLONE_NEWNS, "NEWUSER|NEWNS"}};
  for (const auto& [flag, name] : flags) {
    int f = flag;
    t.Try(std::string("unshare(") + name + ")", [f] { return unshare(f); });
  }
  return t.Done();
}

// unshare() may be filtered while clone()/clone3() with namespace flags are not.
Outcome CloneNewuser(const Args&) {
  Tally t;
  auto reap = [](long pid) {
    if (pid == 0) syscall(SYS_exit_group, 0);  // in the child
    if (pid > 0) waitpid(static_cast<pid_t>(pid), nullptr, 0);
  };
  for (const auto& [flags, name] : std::vector<std::pair<unsigned long, std::string>>{
           {CLONE_NEWUSER, "NEWUSER"},
           {CLONE_NEWUSER | CLONE_NEWNS, "NEWUSER|NEWNS"},
           {CLONE_NEWNET, "NEWNET"}}) {
    unsigned long f = flags;
    reap(t.Try("clone(" + name + ")", [f] {
      return syscall(SYS_clone, f | SIGCHLD, nullptr, nullptr, nullptr, nullptr);
    }));
    clone_args ca = {};
    ca.flags = f;
    ca.exit_signal = SIGCHLD;
    reap(t.Try("clone3(" + name + ")", [&] { return syscall(__NR_clone3, &ca, sizeof ca); }));
  }
  return t.Done();
}

Outcome Setns(const Args&) {
  Tally t;
  for (const char* pid : {"self", "1"}) {
    std::string dir = std::string("/proc/") + pid + "/ns";
    for (const auto& n : ListDir(dir)) {
      std::string p = dir + "/" + n;
      int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        t.Add("open " + p + "=" + ErrName(errno));
        continue;
      }
      t.Try("setns " + p, [fd] { return setns(fd, 0); });
      close(fd);
    }
  }
  return t.Done();
}

// "Shocker": open_by_handle_at with a guessed handle reaches inodes outside
// every bind mount of the same file system.
Outcome OpenByHandle(const Args&) {
  Tally t;
  struct {
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[128];
  } h = {};
  h.handle_bytes = 128;
  int mount_id = 0;
  t.Try("name_to_handle_at /job",
        [&] { return syscall(__NR_name_to_handle_at, AT_FDCWD, "/job", &h, &mount_id, 0); });
  for (const char* mnt : {"/job", "/usr", "/opt/probe/ff-escape-probe"}) {
    int mfd = open(mnt, O_RDONLY | O_CLOEXEC);
    if (mfd < 0) continue;
    decltype(h) guess = {};
    guess.handle_bytes = 8;
    guess.handle_type = 1;  // FILEID_INO32_GEN: inode 2 is the root of ext4 and friends
    uint32_t ino = 2;
    memcpy(guess.f_handle, &ino, sizeof ino);
    t.TryFd(std::string("open_by_handle_at(") + mnt + ", ino 2)",
            [&] { return syscall(__NR_open_by_handle_at, mfd, &guess, O_RDONLY); });
    close(mfd);
  }
  return t.Done();
}

Outcome SetuidRoot(const Args&) {
  Tally t;
  t.Try("setuid(0)", [] { return setuid(0); });
  t.Try("setgid(0)", [] { return setgid(0); });
  t.Try("setresuid(0,0,0)", [] { return setresuid(0, 0, 0); });
  t.Try("setresgid(0,0,0)", [] { return setresgid(0, 0, 0); });
  gid_t zero = 0;
  t.Try("setgroups([0])", [&] { return setgroups(1, &zero); });
  setfsuid(0);
  if (setfsuid(static_cast<uid_t>(-1)) == 0) t.Escape("fsuid became 0");
  struct {
    uint32_t version;
    int pid;
  } hdr = {0x20080522 /*_LINUX_CAPABILITY_VERSION_3*/, 0};
  struct {
    uint32_t effective, permitted, inheritable;
  } data[2] = {{~0u, ~0u, ~0u}, {~0u, ~0u, ~0u}};
  t.Try("capset(all)", [&] { return syscall(SYS_capset, &hdr, data); });
  if (getuid() == 0 || geteuid() == 0) t.Escape("uid is 0");
  return t.Done();
}

// Execs setuid-root binaries and watches the child's credentials in
// /proc/PID/status while it runs and as a zombie (before it is reaped).
Outcome SetuidBinary(const Args&) {
  Tally t;
  int tried = 0;
  for (const char* bin : {"/usr/bin/su", "/usr/bin/passwd", "/usr/bin/chfn", "/usr/bin/gpasswd"}) {
    struct stat sb;
    if (stat(bin, &sb) != 0 || !(sb.st_mode & S_ISUID) || sb.st_uid != 0) {
      t.Add(std::string(bin) + " not a setuid-root file here");
      continue;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      int null = open("/dev/null", O_RDWR);
      dup2(null, 0);
      dup2(null, 1);
      dup2(null, 2);
      char* argv[] = {const_cast<char*>(bin), const_cast<char*>("-c"), const_cast<char*>("id"),
                      nullptr};
      if (std::string(bin) != "/usr/bin/su") argv[1] = nullptr;
      char* envp[] = {nullptr};
      execve(bin, argv, envp);
      int e = errno;
      (void)!write(p[1], &e, sizeof e);
      _exit(127);
    }
    close(p[1]);
    int e = 0;
    ssize_t n = read(p[0], &e, sizeof e);
    close(p[0]);
    if (n == sizeof e) {
      t.Add(std::string("exec ") + bin + "=" + ErrName(e));
      waitpid(pid, nullptr, 0);
      continue;
    }
    ++tried;
    std::string pids = std::to_string(pid);
    std::string seen_uid, seen_cap;
    double start = MonotonicSeconds();
    bool exited = false;
    while (MonotonicSeconds() - start < 3) {
      auto st = ProcStatus(pids);
      if (!st.empty()) {
        seen_uid = st["Uid"];
        seen_cap = st["CapEff"];
        auto f = Fields(seen_uid);
        if ((f.size() > 1 && f[1] == "0") ||
            (!seen_cap.empty() && seen_cap != "0000000000000000")) {
          t.Escape(std::string(bin) + " ran with Uid " + seen_uid + " CapEff " + seen_cap);
          break;
        }
      }
      siginfo_t si = {};
      if (waitid(P_PID, static_cast<id_t>(pid), &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
          si.si_pid == pid) {
        if (exited) break;  // sampled once more as a zombie
        exited = true;
        continue;
      }
      usleep(1000);
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    t.Add(std::string(bin) + ": Uid " + seen_uid + " exit " +
          std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status)));
  }
  if (tried == 0) t.Error("no setuid-root binary could be executed");
  return t.Done();
}

// Files the job wrote must not be executable, directly or through ld.so.
Outcome ExecWritten(const Args&) {
  Tally t;
  std::string out = OutputDir();
  for (const std::string& dir : {out, std::string("/tmp")}) {
    std::string bin = dir + "/true-copy", script = dir + "/script.sh", why;
    if (!CopyFile("/usr/bin/true", bin, 0755, &why)) {
      t.Error(why);
      continue;
    }
    int fd = open(script.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0755);
    if (fd >= 0) {
      WriteAll(fd, "#!/bin/sh\nexit 0\n", 17);
      close(fd);
      chmod(script.c_str(), 0755);
    }
    for (const std::string& f : {bin, script}) {
      int exec_errno = 0;
      int code = Spawn(f, {f}, &exec_errno);
      if (exec_errno != 0) {
        t.Add("execve " + f + "=" + ErrName(exec_errno));
      } else {
        t.Escape("execve " + f + " ran (exit " + std::to_string(code) + ")");
      }
    }
  }
  return t.Done();
}

Outcome ExecViaLdso(const Args&) {
  Tally t;
  std::string out = OutputDir();
  const char* ldso = "/lib64/ld-linux-x86-64.so.2";
  for (const std::string& dir : {out, std::string("/tmp")}) {
    std::string bin = dir + "/true-copy", why;
    if (!CopyFile("/usr/bin/true", bin, 0755, &why)) {
      t.Error(why);
      continue;
    }
    int exec_errno = 0;
    int code = Spawn(ldso, {ldso, bin}, &exec_errno);
    if (exec_errno != 0) {
      t.Error(std::string("exec ") + ldso + "=" + ErrName(exec_errno));
    } else if (code == 0) {
      t.Escape("ld.so ran " + bin);
    } else {
      t.Add("ld.so " + bin + " exit " + std::to_string(code));
    }
    int fd = open(bin.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      void* p = mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        t.Add("mmap(PROT_EXEC) " + bin + "=" + ErrName(errno));
      } else {
        t.Escape("mmap(PROT_EXEC) " + bin + "=OK");
        munmap(p, 4096);
      }
      p = mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p != MAP_FAILED) {
        t.Try("mprotect(PROT_EXEC) " + bin,
              [p] { return mprotect(p, 4096, PROT_READ | PROT_EXEC); });
        munmap(p, 4096);
      }
      close(fd);
    }
  }
  return t.Done();
}

// Code run from a memfd is outside every mount rule; what matters is that it
// is still confined. Runs a copy of this probe's "whoami" from a memfd.
Outcome ExecMemfd(const Args&) {
  Tally t;
  std::string self;
  int e = 0;
  if (!ReadAll("/proc/self/exe", &self, &e, 64 << 20)) {
    t.Error("read /proc/self/exe=" + ErrName(e));
    return t.Done();
  }
  int mfd = static_cast<int>(syscall(__NR_memfd_create, "probe", 0));
  if (mfd < 0) {
    t.Add("memfd_create=" + ErrName(errno));
    return t.Done();
  }
  WriteAll(mfd, self.data(), self.size());
  int p[2];
  if (pipe(p) != 0) {
    t.Error("pipe");
    return t.Done();
  }
  pid_t pid = fork();
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 1);
    char* argv[] = {const_cast<char*>("ff-escape-probe"), const_cast<char*>("whoami"), nullptr};
    fexecve(mfd, argv, environ);
    printf("EXECFAIL %s\n", ErrName(errno).c_str());
    fflush(stdout);
    _exit(127);
  }
  close(p[1]);
  std::string line;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) line.append(buf, static_cast<size_t>(n));
  close(p[0]);
  waitpid(pid, nullptr, 0);
  close(mfd);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.rfind("EXECFAIL ", 0) == 0) {
    t.Add("fexecve(memfd)=" + line.substr(9));
  } else if (line.rfind("PROBE whoami BLOCKED", 0) == 0) {
    t.Add("ran from memfd, still confined: " + line.substr(21));
  } else {
    t.Escape("ran from memfd: " + Printable(line, 400));
  }
  return t.Done();
}

// Syscalls through the other ABIs of an x86_64 kernel: x32 (number with bit 30
// set) and i386 (int $0x80). A filter written for x86_64 numbers must kill
// them (SIGSYS) or they bypass it: unshare(CLONE_NEWUSER) is tried each way.
Outcome ForeignAbi(const Args&) {
  Tally t;
  struct Call {
    const char* name;
    long (*fn)();
  };
  const Call calls[] = {
      {"x32 unshare(NEWUSER)", [] { return syscall(0x40000000L | 272, CLONE_NEWUSER); }},
      {"i386 unshare(NEWUSER)",
       [] {
         long ret;
         asm volatile("int $0x80" : "=a"(ret) : "a"(310L), "b"(long{CLONE_NEWUSER}) : "memory");
         if (ret < 0 && ret > -4096) {
           errno = static_cast<int>(-ret);
           return -1L;
         }
         return ret;
       }},
      {"i386 getpid",
       [] {
         long ret;
         asm volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
         if (ret < 0 && ret > -4096) {
           errno = static_cast<int>(-ret);
           return -1L;
         }
         return ret;
       }},
  };
  for (const auto& c : calls) {
    int p[2];
    if (pipe(p) != 0) continue;
    pid_t pid = fork();
    if (pid == 0) {
      close(p[0]);
      long rc = c.fn();
      int r[2] = {static_cast<int>(rc), rc < 0 ? errno : 0};
      (void)!write(p[1], r, sizeof r);
      _exit(0);
    }
    close(p[1]);
    int r[2] = {0, 0};
    ssize_t n = read(p[0], r, sizeof r);
    close(p[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    std::string name = c.name;
    if (WIFSIGNALED(status)) {
      t.Add(name + "=killed by " + sigabbrev_np(WTERMSIG(status)));
      if (WTERMSIG(status) != SIGSYS) t.Error(name + ": unexpected signal");
    } else if (n != sizeof r) {
      t.Error(name + ": no result");
    } else if (r[0] >= 0) {
      if (name.find("getpid") != std::string::npos) {
        t.Escape(name + "=OK: i386 syscalls pass the filter");
      } else {
        t.Escape(name + "=OK");
      }
    } else {
      t.Add(name + "=" + ErrName(r[1]));
    }
  }
  return t.Done();
}

// TIOCSTI pushes input into a terminal. /dev/null is not a tty, so a filter is
// the only thing that answers EPERM there (the kernel says ENOTTY).
Outcome Tiocsti(const Args&) {
  Tally t;
  char c = 'x';
  std::vector<std::pair<int, std::string>> fds = {{0, "fd0"}, {1, "fd1"}, {2, "fd2"}};
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) fds.emplace_back(null, "/dev/null");
  int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (tty >= 0) fds.emplace_back(tty, "/dev/tty");
  for (const auto& [fd, name] : fds) {
    int f = fd;
    t.Try("TIOCSTI " + name, [&] { return ioctl(f, TIOCSTI, &c); });
    if (name == "/dev/null" && t.last_errno() != EPERM) t.Escape("TIOCSTI is not filtered");
    char sub = 11;  // TIOCL_GETKMSGREDIRECT
    t.Try("TIOCLINUX " + name, [&] { return ioctl(f, TIOCLINUX, &sub); });
    if (name == "/dev/null" && t.last_errno() != EPERM) t.Escape("TIOCLINUX is not filtered");
  }
  if (null >= 0) close(null);
  if (tty >= 0) close(tty);
  return t.Done();
}

// Syscalls the contract filters, with arguments that are harmless if they get
// through.
Outcome DangerousSyscalls(const Args&) {
  Tally t;
  unsigned char params[120] = {};
  t.TryFd("io_uring_setup", [&] { return syscall(__NR_io_uring_setup, 1, params); });
  unsigned char bpf_attr[128] = {};
  bpf_attr[0] = 2;  // BPF_MAP_TYPE_ARRAY
  bpf_attr[4] = 4;
  bpf_attr[8] = 4;
  bpf_attr[12] = 1;
  t.TryFd("bpf(MAP_CREATE)", [&] { return syscall(__NR_bpf, 0, bpf_attr, sizeof bpf_attr); });
  unsigned char perf_attr[128] = {};
  perf_attr[0] = 1;         // PERF_TYPE_SOFTWARE
  perf_attr[4] = 112;       // size
  perf_attr[40] = 1 << 5;   // exclude_kernel
  perf_attr[40] |= 1 << 6;  // exclude_hv
  t.TryFd("perf_event_open",
          [&] { return syscall(__NR_perf_event_open, perf_attr, 0, -1, -1, 0); });
  t.Try("keyctl(GET_KEYRING_ID)", [] { return syscall(__NR_keyctl, 0, -3, 0); });
  t.Try("add_key", [] { return syscall(__NR_add_key, "user", "ff", "x", 1, -3); });
  t.Try("request_key", [] { return syscall(__NR_request_key, "user", "ff", nullptr, 0); });
  t.TryFd("userfaultfd(USER_MODE_ONLY)", [] { return syscall(__NR_userfaultfd, 1 | O_CLOEXEC); });
  t.Try("kexec_load", [] { return syscall(__NR_kexec_load, 0, 0, nullptr, 0); });
  t.Try("init_module", [] { return syscall(__NR_init_module, nullptr, 0, ""); });
  t.Try("finit_module", [] { return syscall(__NR_finit_module, -1, "", 0); });
  t.Try("delete_module", [] { return syscall(__NR_delete_module, "ff_none", 0); });
  t.Try("reboot(CAD_OFF)",
        [] { return syscall(__NR_reboot, 0xfee1dead, 672274793, 0 /*CAD_OFF*/, nullptr); });
  t.Try("swapon", [] { return syscall(__NR_swapon, "/tmp/none", 0); });
  t.Try("swapoff", [] { return syscall(__NR_swapoff, "/tmp/none"); });
  return t.Done();
}

// Inputs for the collector: a setuid/setgid executable file, a world-writable
// one. The test checks what arrives on the host.
Outcome SetuidOutput(const Args&) {
  Tally t;
  std::string out = OutputDir(), why;
  if (!CopyFile("/usr/bin/true", out + "/suid-true", 0755, &why)) {
    t.Error(why);
    return t.Done();
  }
  if (chmod((out + "/suid-true").c_str(), 06755) != 0) {
    t.Add("chmod 6755=" + ErrName(errno));
  } else {
    t.Add("suid-true is mode 6755 (collector must drop setuid/setgid)");
  }
  int fd = open((out + "/world-writable").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
  if (fd >= 0) {
    WriteAll(fd, "ww\n", 3);
    close(fd);
    chmod((out + "/world-writable").c_str(), 0666);
  }
  return t.Done();
}

// Names that break naive quoting, JSON writers (invalid UTF-8) and path
// handling in the collector.
Outcome CollectorNames(const Args&) {
  Tally t;
  std::string out = OutputDir();
  std::vector<std::string> names = {
      "quote\"back\\slash", "new\nline", "ctl\x01\x7f", "bad-utf8-\xff\xfe",
      "tab\tname",          "-dash",     "..data",      std::string(255, 'n')};
  std::string deep = out;
  for (int i = 0; i < 40; ++i) {
    deep += "/" + std::string(100, static_cast<char>('a' + i % 26));
    if (mkdir(deep.c_str(), 0700) != 0) {
      t.Add("deep mkdir stopped at " + std::to_string(i) + "=" + ErrName(errno));
      break;
    }
  }
  int dfd = open(deep.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    int cur = open(out.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    for (int i = 0; i < 40 && cur >= 0; ++i) {
      int next = openat(cur, std::string(100, static_cast<char>('a' + i % 26)).c_str(),
                        O_PATH | O_DIRECTORY | O_CLOEXEC);
      close(cur);
      cur = next;
    }
    dfd = cur;
  }
  if (dfd >= 0) {
    int f = openat(dfd, "deep.txt", O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (f >= 0) {
      WriteAll(f, "deep\n", 5);
      close(f);
    }
    close(dfd);
  }
  int made = 0;
  for (const auto& n : names) {
    int fd = open((out + "/" + n).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) {
      t.Error("create " + Printable(n, 20) + "=" + ErrName(errno));
      continue;
    }
    WriteAll(fd, "n\n", 2);
    close(fd);
    ++made;
  }
  t.Add("created " + std::to_string(made) + " oddly named files and a 4000+ byte deep path");
  return t.Done();
}

// Not an attempt: a control that reads a file it was given (BLOCKED = read).
Outcome ReadOwn(const Args& args) {
  Tally t;
  std::string data;
  int e = 0;
  if (args.empty() || !ReadAll(args[0], &data, &e)) {
    t.Error("read-own=" + ErrName(e));
  } else {
    t.Add("read " + std::to_string(data.size()) + " bytes: " + Printable(data, 60));
  }
  return t.Done();
}

const std::map<std::string, std::function<Outcome(const Args&)>>& Attempts() {
  static const auto* m = new std::map<std::string, std::function<Outcome(const Args&)>>{
      {"whoami", Whoami},
      {"landlock", Landlock},
      {"env", Env},
      {"leaked-fds", LeakedFds},
      {"dev-nodes", DevNodes},
      {"mounts", Mounts},
      {"read-own", ReadOwn},
      {"read-shadow", ReadShadow},
      {"read-host-path", ReadHostPath},
      {"dotdot", DotDot},
      {"cross-job", CrossJob},
      {"proc1-root", Proc1Root},
      {"proc1-environ", Proc1Environ},
      {"write-job", WriteJob},
      {"write-root", WriteRoot},
      {"write-usr", WriteUsr},
      {"write-etc", WriteEtc},
      {"symlink-output", SymlinkOutput},
      {"hardlink-output", HardlinkOutput},
      {"mkfifo-output", MkfifoOutput},
      {"unix-socket-output", UnixSocketOutput},
      {"mknod-device", MknodDevice},
      {"proc-sys-write", ProcSysWrite},
      {"oom-adj", OomAdj},
      {"kill-init", KillInit},
      {"socket-inet", SocketInet},
      {"socket-inet6", SocketInet6},
      {"socket-netlink", SocketNetlink},
      {"socket-packet", SocketPacket},
      {"socket-vsock", SocketVsock},
      {"socket-any-family", SocketAnyFamily},
      {"connect-tcp4", ConnectTcp4},
      {"connect-tcp6", ConnectTcp6},
      {"connect-abstract", ConnectAbstract},
      {"fork-bomb", ForkBomb},
      {"thread-bomb", ThreadBomb},
      {"fill-output", FillOutput},
      {"fill-tmp", FillTmp},
      {"file-size-signal", FileSizeSignal},
      {"inode-bomb", InodeBomb},
      {"memory-bomb", MemoryBomb},
      {"cpu-spin", CpuSpin},
      {"sleep-forever", SleepForever},
      {"daemon", Daemon},
      {"ptrace-init", PtraceInit},
      {"ptrace-traceme", PtraceTraceme},
      {"ptrace-child", PtraceChild},
      {"mount-tmpfs", MountTmpfs},
      {"umount-proc", UmountProc},
      {"chroot", Chroot},
      {"pivot-root", PivotRoot},
      {"unshare-user", UnshareUser},
      {"unshare-ns", UnshareNs},
      {"clone-newuser", CloneNewuser},
      {"setns", Setns},
      {"open-by-handle", OpenByHandle},
      {"setuid-root", SetuidRoot},
      {"setuid-binary", SetuidBinary},
      {"exec-written", ExecWritten},
      {"exec-via-ldso", ExecViaLdso},
      {"exec-memfd", ExecMemfd},
      {"tiocsti", Tiocsti},
      {"foreign-abi", ForeignAbi},
      {"dangerous-syscalls", DangerousSyscalls},
      {"setuid-output", SetuidOutput},
      {"collector-names", CollectorNames},
  };
  return *m;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || !Attempts().count(argv[1])) {
    std::string names;
    for (const auto& [n, fn] : Attempts()) names += " " + n;
    fprintf(stderr, "usage: ff-escape-probe ATTEMPT [ARGS...]\nattempts:%s\n", names.c_str());
    return 2;
  }
  std::string attempt = argv[1];
  Args args(argv + 2, argv + argc);
  Outcome o = Attempts().at(attempt)(args);
  PrintOutcome(attempt, o);
  return static_cast<int>(o.verdict);
}
