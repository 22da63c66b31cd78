// The escape suite: runs ff-escape-probe inside the real frameflow-wrap, one
// escape attempt per test, and checks that every attempt fails the expected
// way and that nothing of the job is left on the host afterwards (processes of
// the slot uid, its cgroup, mounts, files in host /tmp, changes to the input).
//
// Must run as root (the wrapper does). Not being root, or a sandbox that cannot
// be set up on this kernel, is a failure, never a skip. Label: root.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "test_support.h"
#include "util/fs.h"
#include "util/process.h"

namespace ff::testing {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

constexpr char kWrapper[] = FRAMEFLOW_WRAP_BINARY;
constexpr char kProbe[] = FF_ESCAPE_PROBE;
constexpr char kProbeInside[] = "/opt/probe/ff-escape-probe";
constexpr char kOutput[] = "/studio/renders/shot";
constexpr int kRunTimeoutMs = 30000;

// How tokens and secrets are passed to the probe (see Decode in the probe).
std::string Rev(const std::string& s) { return "rev:" + std::string(s.rbegin(), s.rend()); }

std::string RandomToken() {
  static std::mt19937_64 rng(std::random_device{}());
  std::ostringstream s;
  s << std::hex << rng() << rng();
  return s.str();
}

// A uid/gid per test (two for the two-job test), from the test's name, so that
// runs of different tests never share an RLIMIT_NPROC account or a /proc scan.
uint32_t SlotUid() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = std::string(info->test_suite_name()) + "." + info->name();
  uint32_t h = 2166136261u;
  for (unsigned char c : name) h = (h ^ c) * 16777619u;
  return 2000000100u + (h % 100000u) * 2;
}

void Write(const std::string& path, const std::string& text, mode_t mode) {
  WriteText(path, text);
  chmod(path.c_str(), mode);
}

std::string Slurp(const std::string& path) {
  auto r = ReadFile(path);
  return r.ok() ? *r : "";
}

// Host pids whose real, effective, saved or fs uid is `uid`, with their names.
std::vector<std::string> ProcessesOfUid(uint32_t uid) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator("/proc", ec)) {
    std::string pid = e.path().filename();
    if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string status = Slurp("/proc/" + pid + "/status");
    std::istringstream in(status);
    std::string line, name;
    while (std::getline(in, line)) {
      if (line.rfind("Name:", 0) == 0) name = line.substr(6);
      if (line.rfind("Uid:", 0) != 0) continue;
      std::istringstream f(line.substr(4));
      uint32_t u;
      while (f >> u) {
        if (u == uid) {
          found.push_back(pid + ":" + name);
          break;
        }
      }
    }
  }
  return found;
}

// Host pids of probes (by uid and command line) that are still running.
std::vector<pid_t> ProbePids(uint32_t uid, const std::string& attempt) {
  std::vector<pid_t> pids;
  for (const auto& p : ProcessesOfUid(uid)) {
    std::string pid = p.substr(0, p.find(':'));
    std::string cmd = Slurp("/proc/" + pid + "/cmdline");
    // The init shares the uid and (a fork of the wrapper) mentions the probe in
    // its command line: the probe is the process whose argv[0] is the probe.
    if (cmd.rfind(std::string(kProbeInside) + '\0' + attempt + '\0', 0) == 0) {
      pids.push_back(std::stoi(pid));
    }
  }
  return pids;
}

// Directories under /sys/fs/cgroup whose name contains `name`.
std::vector<std::string> CgroupsNamed(const std::string& name) {
  std::vector<std::string> found;
  std::error_code ec;
  stdfs::recursive_directory_iterator it("/sys/fs/cgroup",
                                         stdfs::directory_options::skip_permission_denied, ec);
  for (; !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    if (it.depth() > 10) it.disable_recursion_pending();
    if (it->is_directory(ec) && !it->is_symlink(ec) &&
        it->path().filename().string().find(name) != std::string::npos) {
      found.push_back(it->path());
    }
  }
  return found;
}

// Files under host /tmp owned by `uid` (outside `except`).
std::vector<std::string> HostTmpFilesOf(uint32_t uid, const std::string& except) {
  std::vector<std::string> found;
  std::error_code ec;
  stdfs::recursive_directory_iterator it("/tmp", stdfs::directory_options::skip_permission_denied,
                                         ec);
  for (; !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    std::string p = it->path();
    if (p.rfind(except, 0) == 0) {
      it.disable_recursion_pending();
      continue;
    }
    struct stat sb;
    if (lstat(p.c_str(), &sb) == 0 && sb.st_uid == uid) found.push_back(p);
  }
  return found;
}

// Everything about a directory tree that a job could change.
std::map<std::string, std::string> Snapshot(const std::string& dir) {
  std::map<std::string, std::string> snap;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(dir, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat sb;
    std::string p = it->path();
    if (lstat(p.c_str(), &sb) != 0) continue;
    std::ostringstream s;
    s << std::oct << sb.st_mode << std::dec << " " << sb.st_uid << ":" << sb.st_gid << " "
      << sb.st_size << " " << sb.st_mtim.tv_sec << "." << sb.st_mtim.tv_nsec << " " << sb.st_nlink;
    if (S_ISREG(sb.st_mode)) s << " " << Slurp(p);
    snap[p.substr(dir.size())] = s.str();
  }
  return snap;
}

std::vector<std::string> HostMountsMentioning(const std::string& what) {
  std::vector<std::string> found;
  std::istringstream in(Slurp("/proc/self/mountinfo"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(what) != std::string::npos) found.push_back(line);
  }
  return found;
}

struct ProbeLine {
  std::string attempt, verdict, detail;
};

struct WrapResult {
  int exit_code = -1;
  bool timed_out = false;
  std::vector<std::string> lines;  // stdout and stderr of the wrapper, merged
  std::vector<ProbeLine> probe;    // the "PROBE ..." lines
  json report;
  std::string report_error;

  std::string Dump() const {
    std::string s = "wrapper exit " + std::to_string(exit_code) + (timed_out ? " (TIMED OUT)" : "");
    s += "\n--- output ---\n";
    for (const auto& l : lines) s += l.substr(0, 2000) + "\n";
    s += "--- report ---\n" + (report_error.empty() ? report.dump(1) : report_error) + "\n";
    return s;
  }
  std::string limit() const { return report.is_object() ? report.value("limit", "?") : "?"; }
};

// One sandboxed job: its host directories, slot uid, limits and probe run.
//
// Host layout (world-readable on purpose, so that only the sandbox keeps the
// probe away from it): <root>/in (the job input: scene.pov, marker.txt),
// <root>/host-marker.txt, <root>/server-secret.txt (0600, opened as fd 7 of the
// wrapper), <root>/collected, <root>/report.json.
class Job {
 public:
  explicit Job(uint32_t uid) : uid_(uid), token_(RandomToken()), secret_(RandomToken()) {
    chmod(root(), 0755);
    input_ = dir_.path() + "/in";
    (void)MakeDirs(input_, 0755);
    chmod(input_.c_str(), 0755);
    Write(input_ + "/scene.pov", "// scene " + token_ + "\n", 0644);
    Write(input_ + "/marker.txt", "MARKER " + token_ + "\n", 0644);
    Write(host_marker(), "HOSTMARKER " + token_ + "\n", 0644);
    Write(dir_.path() + "/server-secret.txt", "SECRET " + secret_ + "\n", 0600);
    name_ = "ff-escape-" + std::to_string(uid_) + "-" + std::to_string(getpid());
    options_ = {{"--memory", "64M"},  {"--processes", "64"}, {"--output-size", "8M"},
                {"--tmp-size", "8M"}, {"--file-size", "4M"}, {"--wall-time", "10000"}};
  }

  uint32_t uid() const { return uid_; }
  const std::string& name() const { return name_; }
  const char* root() const { return dir_.path().c_str(); }
  const std::string& token() const { return token_; }
  const std::string& secret() const { return secret_; }
  const std::string& input() const { return input_; }
  std::string host_marker() const { return dir_.path() + "/host-marker.txt"; }
  std::string collected() const { return dir_.path() + "/collected"; }
  std::string report_path() const { return dir_.path() + "/report.json"; }

  // Sets (or replaces) a wrapper option with a value.
  void Set(const std::string& option, const std::string& value) {
    for (auto& [k, v] : options_) {
      if (k == option) {
        v = value;
        return;
      }
    }
    options_.emplace_back(option, value);
  }

  // The wrapper's command line. A shell opens fd 7 (a render-server secret)
  // and fd 9 (a host file, for appending) without close-on-exec before it
  // execs the wrapper: the wrapper must not pass them on.
  std::vector<std::string> Command(const std::vector<std::string>& probe_args) const {
    std::vector<std::string> argv = {"/bin/sh",
                                     "-c",
                                     "exec 7<\"$0\" 9>>\"$1\" && shift && exec \"$@\"",
                                     dir_.path() + "/server-secret.txt",
                                     dir_.path() + "/fd9-append.log",
                                     kWrapper,
                                     "--name",
                                     name_,
                                     "--uid",
                                     std::to_string(uid_),
                                     "--gid",
                                     std::to_string(uid_),
                                     "--ro",
                                     "/usr",
                                     "--ro",
                                     "/usr/lib:/lib",
                                     "--ro",
                                     "/usr/lib64:/lib64",
                                     "--ro",
                                     "/usr/bin:/bin",
                                     "--ro",
                                     std::string(kProbe) + ":" + kProbeInside,
                                     "--input",
                                     input_,
                                     "--output",
                                     kOutput,
                                     "--collect-to",
                                     collected(),
                                     "--report",
                                     report_path(),
                                     "--env",
                                     std::string("FF_PROBE_OUTPUT=") + kOutput};
    for (const auto& [k, v] : options_) {
      argv.push_back(k);
      argv.push_back(v);
    }
    argv.push_back("--");
    argv.push_back(kProbeInside);
    argv.insert(argv.end(), probe_args.begin(), probe_args.end());
    return argv;
  }

  // Starts the wrapper; lines of its output arrive in `lines()`.
  void Start(const std::vector<std::string>& probe_args) {
    before_ = Snapshot(input_);
    ProcessSpec spec;
    spec.argv = Command(probe_args);
    // The render server's own secrets: the sandboxed program must not see them.
    spec.env = {"FF_RENDER_SERVER_SECRET=" + secret_, "FF_DB_PASSWORD=" + secret_};
    auto proc = DefaultProcessLauncher()->Start(spec, [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(line);
    });
    ASSERT_TRUE(proc.ok()) << proc.status().message();
    proc_ = std::move(*proc);
  }

  std::vector<std::string> lines() {
    std::lock_guard<std::mutex> lock(mu_);
    return lines_;
  }
  bool HasLine(const std::string& prefix) {
    for (const auto& l : lines()) {
      if (l.rfind(prefix, 0) == 0) return true;
    }
    return false;
  }

  WrapResult Finish() {
    WrapResult r;
    auto code = proc_->WaitFor(kRunTimeoutMs);
    if (!code) {
      r.timed_out = true;
      proc_->KillTree(0);
      code = proc_->Wait();
    }
    r.exit_code = *code;
    r.lines = lines();
    for (const auto& l : r.lines) {
      if (l.rfind("PROBE ", 0) != 0) continue;
      ProbeLine p;
      std::istringstream in(l.substr(6));
      in >> p.attempt >> p.verdict;
      std::getline(in, p.detail);
      if (!p.detail.empty() && p.detail[0] == ' ') p.detail.erase(0, 1);
      r.probe.push_back(p);
    }
    // FF_ESCAPE_VERBOSE=1: show what each attempt saw, also when it passes.
    if (std::getenv("FF_ESCAPE_VERBOSE")) {
      for (const auto& l : r.lines) std::cout << "  | " << l.substr(0, 3000) << "\n";
    }
    std::string text = Slurp(report_path());
    r.report = json::parse(text, nullptr, false);
    if (text.empty()) {
      r.report_error = "no report at " + report_path();
    } else if (r.report.is_discarded() || !r.report.is_object()) {
      r.report_error = "report is not a JSON object: " + text.substr(0, 500);
    }
    return r;
  }

  WrapResult Run(const std::vector<std::string>& probe_args) {
    Start(probe_args);
    if (!proc_) return {};
    return Finish();
  }

  // After the wrapper returned: nothing of the job may be left on the host.
  void ExpectNothingLeft() {
    EXPECT_EQ(ProcessesOfUid(uid_), std::vector<std::string>{})
        << "processes of slot uid " << uid_ << " outlived the wrapper";
    EXPECT_EQ(CgroupsNamed(name_), std::vector<std::string>{}) << "cgroup of the run left behind";
    EXPECT_EQ(HostMountsMentioning(dir_.path()), std::vector<std::string>{});
    EXPECT_EQ(HostMountsMentioning(kOutput), std::vector<std::string>{});
    EXPECT_EQ(Snapshot(input_), before_) << "the job's input directory changed on the host";
    EXPECT_EQ(HostTmpFilesOf(uid_, collected()), std::vector<std::string>{})
        << "files of slot uid " << uid_ << " in host /tmp";
    EXPECT_EQ(Slurp(dir_.path() + "/fd9-append.log"), "") << "written through an inherited fd";
  }

 private:
  TempDir dir_;
  uint32_t uid_;
  std::string token_, secret_, input_, name_;
  std::vector<std::pair<std::string, std::string>> options_;
  std::map<std::string, std::string> before_;
  std::unique_ptr<RunningProcess> proc_;
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Collected files on the host: relative path -> lstat.
std::map<std::string, struct stat> CollectedFiles(const std::string& dir) {
  std::map<std::string, struct stat> files;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(dir, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    struct stat sb;
    std::string p = it->path();
    if (lstat(p.c_str(), &sb) == 0) files[p.substr(dir.size() + 1)] = sb;
  }
  return files;
}

std::vector<std::string> RefusedPaths(const WrapResult& r, const std::string& why = "") {
  std::vector<std::string> paths;
  if (!r.report.is_object() || !r.report.contains("refused")) return paths;
  for (const auto& e : r.report["refused"]) {
    if (why.empty() || e.value("why", "") == why) paths.push_back(e.value("path", ""));
  }
  return paths;
}

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

class EscapeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(geteuid(), 0u) << "the escape suite must run as root: frameflow-wrap needs it";
    ASSERT_EQ(access(kWrapper, X_OK), 0) << kWrapper << " missing";
    ASSERT_EQ(access(kProbe, X_OK), 0) << kProbe << " missing";
    job_ = std::make_unique<Job>(SlotUid());
  }

  // Runs the probe and checks that the host is clean afterwards.
  WrapResult Run(const std::vector<std::string>& probe_args) {
    WrapResult r = job_->Run(probe_args);
    job_->ExpectNothingLeft();
    return r;
  }

  // The sandbox came up (a missing kernel feature is a failure, not a skip).
  static void ExpectSetUp(const WrapResult& r) {
    EXPECT_FALSE(r.timed_out) << r.Dump();
    EXPECT_NE(r.exit_code, 125) << "sandbox setup failed\n" << r.Dump();
    EXPECT_EQ(r.report_error, "") << r.Dump();
    if (r.report.is_object()) {
      EXPECT_EQ(r.report.value("setup_error", "?"), "") << r.Dump();
    }
  }

  // The attempt ran and failed the expected way.
  static void ExpectBlocked(const WrapResult& r, const std::string& attempt) {
    ExpectSetUp(r);
    ASSERT_EQ(r.probe.size(), 1u) << "expected exactly one PROBE line\n" << r.Dump();
    EXPECT_EQ(r.probe[0].attempt, attempt);
    EXPECT_EQ(r.probe[0].verdict, "BLOCKED") << r.probe[0].detail << "\n" << r.Dump();
    EXPECT_EQ(r.exit_code, 0) << r.Dump();
    if (r.report.is_object()) {
      EXPECT_EQ(r.report.value("exit_code", -1), 0) << r.Dump();
      EXPECT_EQ(r.report.value("limit", "?"), "") << r.Dump();
    }
  }

  // The attempt was ended by `limit` (and did not print ESCAPED first).
  static void ExpectLimit(const WrapResult& r, const std::string& limit) {
    ExpectSetUp(r);
    for (const auto& p : r.probe) EXPECT_NE(p.verdict, "ESCAPED") << p.detail << "\n" << r.Dump();
    EXPECT_EQ(r.limit(), limit) << r.Dump();
    if (r.report.is_object()) {
      EXPECT_NE(r.report.value("reason", ""), "") << r.Dump();
    }
    EXPECT_NE(r.exit_code, 0) << r.Dump();
  }

  // Everything collected is a regular file with one link.
  void ExpectOnlyRegularFilesCollected() {
    for (const auto& [path, sb] : CollectedFiles(job_->collected())) {
      EXPECT_TRUE(S_ISREG(sb.st_mode) || S_ISDIR(sb.st_mode))
          << path << " collected with mode " << std::oct << sb.st_mode;
      if (S_ISREG(sb.st_mode)) {
        EXPECT_EQ(sb.st_nlink, 1u) << path;
      }
    }
  }

  std::unique_ptr<Job> job_;
};

// ---------------------------------------------------------------------------
// Identity and configuration

TEST_F(EscapeTest, RunsUnprivilegedWithSeccompAndNoNewPrivs) {
  ExpectBlocked(Run({"whoami"}), "whoami");
}

TEST_F(EscapeTest, LandlockIsEnforced) { ExpectBlocked(Run({"landlock"}), "landlock"); }

TEST_F(EscapeTest, EnvironmentHoldsOnlyTheContractVariables) {
  job_->Set("--env", "JOB_VAR=1");
  ExpectBlocked(Run({"env", "FF_PROBE_OUTPUT", "JOB_VAR"}), "env");
}

TEST_F(EscapeTest, NoFileDescriptorLeaksIn) { ExpectBlocked(Run({"leaked-fds"}), "leaked-fds"); }

TEST_F(EscapeTest, DevHoldsOnlyNullZeroUrandom) { ExpectBlocked(Run({"dev-nodes"}), "dev-nodes"); }

TEST_F(EscapeTest, MountsMatchTheContract) { ExpectBlocked(Run({"mounts"}), "mounts"); }

// ---------------------------------------------------------------------------
// Reading outside

TEST_F(EscapeTest, CannotReadShadow) { ExpectBlocked(Run({"read-shadow"}), "read-shadow"); }

TEST_F(EscapeTest, CannotReadHostPaths) {
  Job other(job_->uid() + 1);  // another job's secure location
  ExpectBlocked(Run({"read-host-path", other.input() + "/marker.txt", other.host_marker(),
                     job_->input() + "/marker.txt", job_->host_marker(),
                     SourceDir() + "/CMakeLists.txt", "/work"}),
                "read-host-path");
}

TEST_F(EscapeTest, DotDotStaysInTheSandbox) {
  ExpectBlocked(Run({"dotdot", job_->host_marker(), Rev(job_->token())}), "dotdot");
}

TEST_F(EscapeTest, ProcOneRootDoesNotLeadOut) {
  ExpectBlocked(Run({"proc1-root", job_->host_marker(), Rev(job_->token())}), "proc1-root");
}

TEST_F(EscapeTest, NoSecretsInVisibleEnvironments) {
  WrapResult r = Run({"proc1-environ", Rev(job_->secret()), job_->input()});
  ExpectBlocked(r, "proc1-environ");
  if (!r.probe.empty() && r.probe[0].detail.find("note:") != std::string::npos) {
    std::cout << "note: host paths visible inside: " << r.probe[0].detail << "\n";
  }
}

// ---------------------------------------------------------------------------
// Writing outside

TEST_F(EscapeTest, CannotWriteInput) { ExpectBlocked(Run({"write-job"}), "write-job"); }
TEST_F(EscapeTest, CannotWriteRoot) { ExpectBlocked(Run({"write-root"}), "write-root"); }
TEST_F(EscapeTest, CannotWriteUsr) { ExpectBlocked(Run({"write-usr"}), "write-usr"); }
TEST_F(EscapeTest, CannotWriteEtc) { ExpectBlocked(Run({"write-etc"}), "write-etc"); }

TEST_F(EscapeTest, NoSymlinksInOutput) {
  WrapResult r = Run({"symlink-output", job_->host_marker()});
  ExpectBlocked(r, "symlink-output");
  ExpectOnlyRegularFilesCollected();
  for (const auto& [path, sb] : CollectedFiles(job_->collected())) {
    EXPECT_EQ(path.find("link-"), std::string::npos) << path << " collected";
  }
}

TEST_F(EscapeTest, HardLinksInOutputAreRefused) {
  WrapResult r = Run({"hardlink-output"});
  ExpectBlocked(r, "hardlink-output");
  ExpectOnlyRegularFilesCollected();
  EXPECT_EQ(Slurp(job_->collected() + "/plain.txt"), "plain\n") << r.Dump();
  if (!r.probe.empty() && r.probe[0].detail.find("in-output link created") != std::string::npos) {
    auto refused = RefusedPaths(r, "hard link");
    EXPECT_TRUE(Contains(refused, "linked-a") && Contains(refused, "linked-b")) << r.Dump();
    EXPECT_FALSE(PathExists(job_->collected() + "/linked-a"));
    EXPECT_FALSE(PathExists(job_->collected() + "/linked-b"));
  }
}

TEST_F(EscapeTest, NoFifosInOutput) {
  ExpectBlocked(Run({"mkfifo-output"}), "mkfifo-output");
  ExpectOnlyRegularFilesCollected();
}

TEST_F(EscapeTest, NoSocketFilesInOutput) {
  ExpectBlocked(Run({"unix-socket-output"}), "unix-socket-output");
  ExpectOnlyRegularFilesCollected();
}

TEST_F(EscapeTest, NoDeviceNodes) {
  ExpectBlocked(Run({"mknod-device"}), "mknod-device");
  ExpectOnlyRegularFilesCollected();
}

TEST_F(EscapeTest, ProcSysIsReadOnly) { ExpectBlocked(Run({"proc-sys-write"}), "proc-sys-write"); }
TEST_F(EscapeTest, CannotLowerOomScore) { ExpectBlocked(Run({"oom-adj"}), "oom-adj"); }
TEST_F(EscapeTest, CannotKillTheInit) { ExpectBlocked(Run({"kill-init"}), "kill-init"); }

// The collector must not bring a setuid/setgid file onto the host.
TEST_F(EscapeTest, CollectorDropsSetuidBits) {
  WrapResult r = Run({"setuid-output"});
  ExpectBlocked(r, "setuid-output");
  auto files = CollectedFiles(job_->collected());
  ASSERT_TRUE(files.count("suid-true")) << r.Dump();
  for (const auto& [path, sb] : files) {
    EXPECT_EQ(sb.st_mode & (S_ISUID | S_ISGID), 0u)
        << path << " collected with mode " << std::oct << sb.st_mode << " owner " << std::dec
        << sb.st_uid;
  }
}

// Names that break quoting and JSON writers, and a path longer than PATH_MAX.
TEST_F(EscapeTest, CollectorSurvivesOddNames) {
  WrapResult r = Run({"collector-names"});
  ExpectBlocked(r, "collector-names");
  for (const std::string& n :
       {std::string("quote\"back\\slash"), std::string("new\nline"), std::string("ctl\x01\x7f"),
        std::string("tab\tname"), std::string("-dash"), std::string("..data"),
        std::string(255, 'n'), std::string("bad-utf8-\xff\xfe")}) {
    EXPECT_EQ(Slurp(job_->collected() + "/" + n), "n\n") << "not collected: " << n;
  }
  bool deep_collected = false, deep_refused = false;
  for (const auto& [path, sb] : CollectedFiles(job_->collected())) {
    if (path.size() >= 8 && path.substr(path.size() - 8) == "deep.txt") deep_collected = true;
  }
  for (const auto& p : RefusedPaths(r)) {
    if (p.find("deep.txt") != std::string::npos) deep_refused = true;
  }
  EXPECT_TRUE(deep_collected || deep_refused) << "deep.txt neither collected nor refused";
}

// ---------------------------------------------------------------------------
// Network

TEST_F(EscapeTest, NoInetSockets) { ExpectBlocked(Run({"socket-inet"}), "socket-inet"); }
TEST_F(EscapeTest, NoInet6Sockets) { ExpectBlocked(Run({"socket-inet6"}), "socket-inet6"); }
TEST_F(EscapeTest, NoNetlinkSockets) { ExpectBlocked(Run({"socket-netlink"}), "socket-netlink"); }
TEST_F(EscapeTest, NoPacketSockets) { ExpectBlocked(Run({"socket-packet"}), "socket-packet"); }
TEST_F(EscapeTest, NoVsockSockets) { ExpectBlocked(Run({"socket-vsock"}), "socket-vsock"); }
TEST_F(EscapeTest, NoSocketOfAnyFamilyButUnix) {
  ExpectBlocked(Run({"socket-any-family"}), "socket-any-family");
}

// A listening socket on the host's loopback; `Accepted()` says whether anything
// connected.
class Listener {
 public:
  Listener(int family, int type) {
    fd_ = socket(family, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return;
    sockaddr_storage ss = {};
    socklen_t len;
    if (family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    }
    if (bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd_, 8) != 0 ||
        getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
      close(fd_);
      fd_ = -1;
      return;
    }
    port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                    : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  }
  explicit Listener(const sockaddr_un& addr, socklen_t len) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (bind(fd_, reinterpret_cast<const sockaddr*>(&addr), len) != 0 || listen(fd_, 8) != 0) {
      close(fd_);
      fd_ = -1;
    }
  }
  ~Listener() {
    if (fd_ >= 0) close(fd_);
  }
  bool ok() const { return fd_ >= 0; }
  int port() const { return port_; }
  bool Accepted() const {
    int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c >= 0) close(c);
    return c >= 0;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST_F(EscapeTest, CannotConnectToHostLoopbackV4) {
  Listener l(AF_INET, SOCK_STREAM);
  ASSERT_TRUE(l.ok());
  ExpectBlocked(Run({"connect-tcp4", std::to_string(l.port())}), "connect-tcp4");
  EXPECT_FALSE(l.Accepted()) << "the sandbox reached the host's 127.0.0.1";
}

TEST_F(EscapeTest, CannotConnectToHostLoopbackV6) {
  Listener l(AF_INET6, SOCK_STREAM);
  // No IPv6 on the host: the probe still tries port 1 of [::1].
  ExpectBlocked(Run({"connect-tcp6", std::to_string(l.ok() ? l.port() : 1)}), "connect-tcp6");
  if (l.ok()) {
    EXPECT_FALSE(l.Accepted()) << "the sandbox reached the host's [::1]";
  }
}

TEST_F(EscapeTest, CannotConnectToHostUnixSockets) {
  std::string name = "frameflow-escape-" + job_->token();
  sockaddr_un abstract = {};
  abstract.sun_family = AF_UNIX;
  memcpy(abstract.sun_path + 1, name.data(), name.size());
  Listener la(abstract, static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size()));
  std::string path = std::string(job_->root()) + "/host.sock";
  sockaddr_un byname = {};
  byname.sun_family = AF_UNIX;
  snprintf(byname.sun_path, sizeof byname.sun_path, "%s", path.c_str());
  Listener lp(byname, sizeof byname);
  ASSERT_TRUE(la.ok() && lp.ok());
  chmod(path.c_str(), 0777);
  ExpectBlocked(Run({"connect-abstract", name, path}), "connect-abstract");
  EXPECT_FALSE(la.Accepted()) << "the sandbox reached a host abstract socket";
  EXPECT_FALSE(lp.Accepted()) << "the sandbox reached a host socket file";
}

// ---------------------------------------------------------------------------
// Resource limits

TEST_F(EscapeTest, ForkBombIsStopped) {
  WrapResult r = Run({"fork-bomb"});
  ExpectBlocked(r, "fork-bomb");
  if (!r.probe.empty()) {
    EXPECT_NE(r.probe[0].detail.find("EAGAIN"), std::string::npos);
  }
}

TEST_F(EscapeTest, ThreadBombIsStopped) {
  WrapResult r = Run({"thread-bomb"});
  ExpectBlocked(r, "thread-bomb");
  if (!r.probe.empty()) {
    EXPECT_NE(r.probe[0].detail.find("EAGAIN"), std::string::npos);
  }
}

TEST_F(EscapeTest, OutputAreaFillsUp) {
  WrapResult r = Run({"fill-output"});
  ExpectSetUp(r);
  ASSERT_EQ(r.probe.size(), 1u) << r.Dump();
  EXPECT_EQ(r.probe[0].verdict, "BLOCKED") << r.Dump();
  EXPECT_EQ(r.exit_code, 0) << r.Dump();
  EXPECT_TRUE(r.limit() == "" || r.limit() == "output_size") << r.Dump();
  off_t total = 0;
  for (const auto& [path, sb] : CollectedFiles(job_->collected())) {
    if (S_ISREG(sb.st_mode)) {
      total += sb.st_size;
      EXPECT_LE(sb.st_size, 4 << 20) << path << " is larger than --file-size";
    }
  }
  EXPECT_LE(total, 8 << 20) << "collected more than --output-size";
}

TEST_F(EscapeTest, TmpFillsUp) {
  WrapResult r = Run({"fill-tmp"});
  ExpectSetUp(r);
  ASSERT_EQ(r.probe.size(), 1u) << r.Dump();
  EXPECT_EQ(r.probe[0].verdict, "BLOCKED") << r.Dump();
  EXPECT_EQ(r.exit_code, 0) << r.Dump();
  EXPECT_TRUE(r.limit() == "" || r.limit() == "tmp_size") << r.Dump();
}

// RLIMIT_FSIZE: killed by SIGXFSZ (reported as "file_size") or EFBIG.
TEST_F(EscapeTest, FileSizeLimit) {
  job_->Set("--output-size", "16M");
  WrapResult r = Run({"file-size-signal"});
  ExpectSetUp(r);
  for (const auto& p : r.probe) EXPECT_NE(p.verdict, "ESCAPED") << r.Dump();
  if (r.probe.empty()) {
    EXPECT_EQ(r.exit_code, 128 + SIGXFSZ) << r.Dump();
    EXPECT_EQ(r.report.value("signal", 0), SIGXFSZ) << r.Dump();
    EXPECT_EQ(r.limit(), "file_size") << r.Dump();
  } else {
    EXPECT_NE(r.probe[0].detail.find("EFBIG"), std::string::npos) << r.Dump();
  }
  auto files = CollectedFiles(job_->collected());
  if (files.count("big")) {
    EXPECT_LE(files["big"].st_size, 4 << 20);
  }
}

// Empty files cost kernel memory, not tmpfs blocks: tmpfs needs an inode
// limit, or the memory cgroup must charge and stop it.
TEST_F(EscapeTest, InodeBombIsStopped) {
  WrapResult r = Run({"inode-bomb"});
  ExpectSetUp(r);
  for (const auto& p : r.probe) EXPECT_NE(p.verdict, "ESCAPED") << p.detail;
  if (r.probe.empty()) {
    EXPECT_EQ(r.limit(), "memory") << r.Dump();
  }
}

TEST_F(EscapeTest, MemoryBombIsKilled) {
  WrapResult r = Run({"memory-bomb"});
  ExpectLimit(r, "memory");
  if (r.report.is_object()) {
    EXPECT_EQ(r.report.value("signal", 0), SIGKILL) << r.Dump();
  }
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << r.Dump();
}

TEST_F(EscapeTest, CpuTimeLimit) {
  job_->Set("--cpu-time", "1");
  ExpectLimit(Run({"cpu-spin"}), "cpu_time");
}

// The CPU limit covers all processes, not each one (RLIMIT_CPU alone would let
// four processes use 4 s).
TEST_F(EscapeTest, CpuTimeLimitCoversAllProcesses) {
  job_->Set("--cpu-time", "1");
  WrapResult r = Run({"cpu-spin", "3"});
  ExpectLimit(r, "cpu_time");
  if (r.report.is_object()) {
    EXPECT_LT(r.report.value("cpu_ms", 0), 2500) << r.Dump();
  }
}

TEST_F(EscapeTest, WallTimeLimit) {
  job_->Set("--wall-time", "1000");
  WrapResult r = Run({"sleep-forever"});
  ExpectLimit(r, "wall_time");
  if (r.report.is_object()) {
    EXPECT_GE(r.report.value("wall_ms", 0), 1000) << r.Dump();
    EXPECT_LT(r.report.value("wall_ms", 0), 5000) << r.Dump();
  }
}

// A double-forked setsid daemon must die with the job, at once (not at the
// wall-time limit).
TEST_F(EscapeTest, DaemonDiesWithTheJob) {
  WrapResult r = Run({"daemon"});
  ExpectBlocked(r, "daemon");
  if (r.report.is_object()) {
    EXPECT_LT(r.report.value("wall_ms", 0), 5000) << r.Dump();
  }
}

// ---------------------------------------------------------------------------
// Privilege and kernel interfaces

TEST_F(EscapeTest, CannotPtraceInit) { ExpectBlocked(Run({"ptrace-init"}), "ptrace-init"); }
TEST_F(EscapeTest, CannotPtraceTraceme) {
  ExpectBlocked(Run({"ptrace-traceme"}), "ptrace-traceme");
}
TEST_F(EscapeTest, CannotPtraceOwnChild) { ExpectBlocked(Run({"ptrace-child"}), "ptrace-child"); }
TEST_F(EscapeTest, CannotMount) { ExpectBlocked(Run({"mount-tmpfs"}), "mount-tmpfs"); }
TEST_F(EscapeTest, CannotUnmount) { ExpectBlocked(Run({"umount-proc"}), "umount-proc"); }
TEST_F(EscapeTest, CannotChroot) { ExpectBlocked(Run({"chroot"}), "chroot"); }
TEST_F(EscapeTest, CannotPivotRoot) { ExpectBlocked(Run({"pivot-root"}), "pivot-root"); }
TEST_F(EscapeTest, CannotUnshareUserNamespace) {
  ExpectBlocked(Run({"unshare-user"}), "unshare-user");
}
TEST_F(EscapeTest, CannotUnshareNamespaces) { ExpectBlocked(Run({"unshare-ns"}), "unshare-ns"); }
TEST_F(EscapeTest, CannotCloneIntoNewUserNamespace) {
  ExpectBlocked(Run({"clone-newuser"}), "clone-newuser");
}
TEST_F(EscapeTest, CannotSetns) { ExpectBlocked(Run({"setns"}), "setns"); }
TEST_F(EscapeTest, CannotOpenByHandle) { ExpectBlocked(Run({"open-by-handle"}), "open-by-handle"); }
TEST_F(EscapeTest, CannotBecomeRoot) { ExpectBlocked(Run({"setuid-root"}), "setuid-root"); }

TEST_F(EscapeTest, SetuidBinariesDoNotGainRoot) {
  WrapResult r = Run({"setuid-binary"});
  ExpectBlocked(r, "setuid-binary");
  if (!r.probe.empty()) {
    EXPECT_NE(r.probe[0].detail.find(": Uid "), std::string::npos) << r.Dump();
  }
}

TEST_F(EscapeTest, CannotExecuteWrittenFiles) {
  ExpectBlocked(Run({"exec-written"}), "exec-written");
}

TEST_F(EscapeTest, CannotExecuteWrittenFilesThroughLdSo) {
  ExpectBlocked(Run({"exec-via-ldso"}), "exec-via-ldso");
}

TEST_F(EscapeTest, CodeRunFromMemfdIsStillConfined) {
  job_->Set("--file-size", "64M");  // the memfd holds a copy of the (static) probe
  ExpectBlocked(Run({"exec-memfd"}), "exec-memfd");
}

TEST_F(EscapeTest, ForeignSyscallAbisAreKilled) {
  ExpectBlocked(Run({"foreign-abi"}), "foreign-abi");
}

TEST_F(EscapeTest, NoTerminalInjection) { ExpectBlocked(Run({"tiocsti"}), "tiocsti"); }

TEST_F(EscapeTest, DangerousSyscallsAreFiltered) {
  ExpectBlocked(Run({"dangerous-syscalls"}), "dangerous-syscalls");
}

// ---------------------------------------------------------------------------
// Two jobs at once

// Two wrappers run concurrently with different inputs and uids. Each probe
// reads its own marker, then (while both sandboxes are up: the test releases
// them with SIGUSR1 only once both are ready) tries the other's marker by host
// path, by guessed paths, by a walk of everything it can see and via /proc.
TEST_F(EscapeTest, TwoJobsAtOnceCannotSeeEachOther) {
  Job& a = *job_;
  Job b(a.uid() + 1);
  a.Start({"cross-job", "/job/marker.txt", Rev(a.token()), b.input() + "/marker.txt",
           Rev(b.token()), std::to_string(b.uid())});
  b.Start({"cross-job", "/job/marker.txt", Rev(b.token()), a.input() + "/marker.txt",
           Rev(a.token()), std::to_string(a.uid())});
  auto signal_probes = [&](bool* ok) {
    for (Job* j : {&a, &b}) {
      auto pids = ProbePids(j->uid(), "cross-job");
      if (pids.size() != 1) *ok = false;
      for (pid_t p : pids) kill(p, SIGUSR1);
    }
  };
  bool both_ready = WaitUntil(
      [&] { return a.HasLine("ff-escape-probe: ready") && b.HasLine("ff-escape-probe: ready"); },
      kRunTimeoutMs);
  EXPECT_TRUE(both_ready) << "probes did not start";
  bool signalled = true;
  if (both_ready) {
    EXPECT_EQ(ProcessesOfUid(a.uid()).empty(), false);
    EXPECT_EQ(ProcessesOfUid(b.uid()).empty(), false);
    // The host-side checks can see a live run (else "nothing left" proves nothing).
    EXPECT_NE(CgroupsNamed(a.name()), std::vector<std::string>{});
    EXPECT_NE(CgroupsNamed(b.name()), std::vector<std::string>{});
    signal_probes(&signalled);  // go
    EXPECT_TRUE(signalled) << "probe processes not found on the host";
    EXPECT_TRUE(
        WaitUntil([&] { return a.HasLine("PROBE ") && b.HasLine("PROBE "); }, kRunTimeoutMs));
    signal_probes(&signalled);  // release
  }
  WrapResult ra = a.Finish();
  WrapResult rb = b.Finish();
  ExpectBlocked(ra, "cross-job");
  ExpectBlocked(rb, "cross-job");
  a.ExpectNothingLeft();
  b.ExpectNothingLeft();
  EXPECT_TRUE(PathExists(a.collected() + "/ff-secret-" + a.token()));
  EXPECT_FALSE(PathExists(a.collected() + "/ff-secret-" + b.token()));
  EXPECT_FALSE(PathExists(b.collected() + "/ff-secret-" + a.token()));
}

}  // namespace
}  // namespace ff::testing

namespace ff::testing {
namespace {

// A render server killed with kill -9 leaves its runs' cgroups behind, with
// whatever still runs in them; the next start (RemoveRunCgroups) kills those
// processes and removes the cgroups, in every hierarchy.
TEST(EscapeConfigTest, LeftoverRunCgroupsAreKilledAndRemoved) {
  ASSERT_EQ(geteuid(), 0u) << "the escape suite must run as root";
  const std::string parent = "frameflow-sweep-" + std::to_string(::getpid());
  std::vector<std::string> roots;
  if (PathExists("/sys/fs/cgroup/cgroup.controllers")) {
    roots = {"/sys/fs/cgroup"};
  } else {
    for (const char* h : {"/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"}) {
      if (PathExists(h)) roots.push_back(h);
    }
  }
  ASSERT_FALSE(roots.empty()) << "no cgroup hierarchy";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  for (const auto& r : roots) {
    const std::string run = r + "/" + parent + "/run-1";
    ASSERT_TRUE(MakeDirs(run).ok()) << run;
    std::ofstream(run + "/cgroup.procs") << child << std::endl;
  }
  EXPECT_EQ(ff::sandbox::RemoveRunCgroups(parent), 1);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  for (const auto& r : roots) {
    EXPECT_FALSE(PathExists(r + "/" + parent + "/run-1")) << r;
    ::rmdir((r + "/" + parent).c_str());
  }
}

// Inside a chroot whose directory is not a mount point the wrapper cannot
// work: the render server refuses to start there, saying why and what to
// do, instead of failing every chunk it would run.
TEST(EscapeConfigTest, RenderServerInAPlainChrootRefusesToStart) {
  ASSERT_EQ(geteuid(), 0u) << "the escape suite must run as root";
  TempDir dir;
  const std::string bin_dir = DirName(kWrapper);
  const std::string root = dir.path() + "/chroot";
  WriteText(dir.path() + "/host.toml",
            "name = \"rs-chroot\"\nroot = \"/tmp/rs\"\nschedule_server = \"127.0.0.1:1\"\n");
  // A private mount namespace (unshare) so nothing bound here reaches the host.
  WriteText(dir.path() + "/enter.sh",
            "set -e; r='" + root +
                "'; mkdir -p $r/usr $r/etc $r/proc $r/dev $r/tmp $r/ff\n"
                "for l in bin lib lib64 sbin; do [ -L /$l ] && ln -s \"$(readlink /$l)\" $r/$l || "
                "true; done\n"
                "mount --bind /usr $r/usr; mount --bind /etc $r/etc; mount -t proc proc $r/proc\n"
                "mount --rbind /dev $r/dev; mount --bind '" +
                bin_dir +
                "' $r/ff\n"
                "cp '" +
                dir.path() +
                "/host.toml' $r/tmp/host.toml\n"
                "exec chroot $r /ff/" +
                BaseName(FRAMEFLOW_BINARY) + " render-server --config /tmp/host.toml\n");
  const std::string cmd =
      "unshare --mount --propagation private /bin/sh '" + dir.path() + "/enter.sh' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  const int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_NE(WEXITSTATUS(status), 0) << out;
  EXPECT_NE(out.find("'/' is not a mount point"), std::string::npos) << out;
  EXPECT_NE(out.find("mount --bind DIR DIR"), std::string::npos) << out;
}

// A kernel whose Landlock ABI is below the configured minimum makes the
// wrapper refuse to run anything, naming the minimum.
TEST(EscapeConfigTest, RefusesToRunBelowTheConfiguredLandlockAbi) {
  ASSERT_EQ(geteuid(), 0u) << "the escape suite must run as root: frameflow-wrap needs it";
  const std::string cmd = std::string(kWrapper) +
                          " --name landlock-min --uid 2099999101 --gid 2099999101 --ro /usr "
                          "--landlock-min-abi 999 -- /bin/echo the-program-ran 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (fgets(buf, sizeof buf, p)) out += buf;
  int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status)) << out;
  EXPECT_EQ(WEXITSTATUS(status), 125) << out;
  EXPECT_NE(out.find("below the configured minimum 999"), std::string::npos) << out;
  EXPECT_EQ(out.find("the-program-ran"), std::string::npos) << out;
}

}  // namespace
}  // namespace ff::testing
