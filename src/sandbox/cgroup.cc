#include "sandbox/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <vector>

namespace ff::sandbox {

namespace {

struct Hierarchies {
  std::string unified;                // a cgroup2 mount with memory and pids available
  std::string memory, pids, cpuacct;  // cgroup v1 mounts
};

std::string ReadSmall(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool WriteSmall(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::write(fd, value.data(), value.size()) == static_cast<ssize_t>(value.size());
  ::close(fd);
  return ok;
}

Status MustWrite(const std::string& path, const std::string& value) {
  if (WriteSmall(path, value)) return Status::Ok();
  return ErrnoError("cannot write '" + value + "' to", path, errno);
}

// The value after `key` in a "key value" per line file, or -1.
int64_t KeyValue(const std::string& text, const std::string& key) {
  std::istringstream in(text);
  std::string k;
  int64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return -1;
}

bool HasWord(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

Hierarchies Detect() {
  Hierarchies h;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    // id parent maj:min root mountpoint options [optional...] - fstype source superoptions
    std::istringstream ls(line);
    std::string id, parent, dev, root, mountpoint, options, field;
    ls >> id >> parent >> dev >> root >> mountpoint >> options;
    while (ls >> field && field != "-") {
    }
    std::string fstype, source, super;
    ls >> fstype >> source >> super;
    if (fstype == "cgroup2") {
      std::string controllers = ReadSmall(mountpoint + "/cgroup.controllers");
      if (h.unified.empty() && HasWord(controllers, "memory") && HasWord(controllers, "pids")) {
        h.unified = mountpoint;
      }
    } else if (fstype == "cgroup") {
      std::string opts = "," + super + ",";
      if (opts.find(",memory,") != std::string::npos && h.memory.empty()) h.memory = mountpoint;
      if (opts.find(",pids,") != std::string::npos && h.pids.empty()) h.pids = mountpoint;
      if (opts.find(",cpuacct,") != std::string::npos && h.cpuacct.empty()) h.cpuacct = mountpoint;
    }
  }
  return h;
}

// mkdir -p below `root`, recording what was created.
Status MakeCgroupDirs(const std::string& root, const std::string& rel,
                      std::vector<std::string>* levels) {
  std::string path = root;
  size_t i = 0;
  while (i < rel.size()) {
    size_t j = rel.find('/', i);
    if (j == std::string::npos) j = rel.size();
    path += "/" + rel.substr(i, j - i);
    if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
      return ErrnoError("cannot create cgroup", path, errno);
    }
    if (levels) levels->push_back(path);
    i = j + 1;
  }
  return Status::Ok();
}

// SIGKILLs every process listed in dir/cgroup.procs (v2 first tries
// cgroup.kill; v1 has none) until it stays empty. Killed processes leave the
// cgroup once the kernel has torn them down: microseconds to a few ms.
void KillUntilEmpty(const std::string& dir, bool v2) {
  if (v2) WriteSmall(dir + "/cgroup.kill", "1");
  for (int round = 0; round < 2000; ++round) {
    std::istringstream procs(ReadSmall(dir + "/cgroup.procs"));
    bool any = false;
    pid_t pid;
    while (procs >> pid) {
      any = true;
      ::kill(pid, SIGKILL);
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

// Empties the cgroup, then removes it (rmdir may report EBUSY for a moment
// after the last process left).
void EmptyAndRemove(const std::string& dir, bool v2) {
  if (::access(dir.c_str(), F_OK) != 0) return;
  KillUntilEmpty(dir, v2);
  for (int round = 0; round < 2000; ++round) {
    if (::rmdir(dir.c_str()) == 0 || errno != EBUSY) return;
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

}  // namespace

Result<std::unique_ptr<RunCgroup>> RunCgroup::Create(const std::string& parent,
                                                     const std::string& name, int64_t memory_bytes,
                                                     int64_t processes) {
  Hierarchies h = Detect();
  std::unique_ptr<RunCgroup> cg(new RunCgroup());
  auto open_procs = [&](const std::string& dir) -> Status {
    int fd = ::open((dir + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("cannot open", dir + "/cgroup.procs", errno);
    cg->procs_fds_.push_back(fd);
    return Status::Ok();
  };
  if (!h.unified.empty()) {
    cg->v2_ = true;
    std::vector<std::string> levels;
    FF_RETURN_IF_ERROR(MakeCgroupDirs(h.unified, parent, &levels));
    // Controllers must be enabled on every level above the run's cgroup.
    std::string up = h.unified;
    for (size_t i = 0; i <= levels.size(); ++i) {
      const std::string& dir = i == 0 ? up : levels[i - 1];
      std::string enabled = ReadSmall(dir + "/cgroup.subtree_control");
      if (!HasWord(enabled, "memory") || !HasWord(enabled, "pids")) {
        FF_RETURN_IF_ERROR(MustWrite(dir + "/cgroup.subtree_control", "+memory +pids")
                               .WithContext("enabling the memory and pids controllers"));
      }
      if (!HasWord(enabled, "cpu")) WriteSmall(dir + "/cgroup.subtree_control", "+cpu");
    }
    cg->unified_ = h.unified + "/" + parent + "/" + name;
    EmptyAndRemove(cg->unified_, true);
    if (::mkdir(cg->unified_.c_str(), 0755) != 0) {
      return ErrnoError("cannot create cgroup", cg->unified_, errno);
    }
    cg->dirs_.push_back(cg->unified_);
    if (memory_bytes > 0) {
      FF_RETURN_IF_ERROR(MustWrite(cg->unified_ + "/memory.max", std::to_string(memory_bytes)));
      WriteSmall(cg->unified_ + "/memory.swap.max", "0");  // absent without swap accounting
      WriteSmall(cg->unified_ + "/memory.oom.group", "1");
    }
    if (processes > 0) {
      FF_RETURN_IF_ERROR(MustWrite(cg->unified_ + "/pids.max", std::to_string(processes)));
    }
    FF_RETURN_IF_ERROR(open_procs(cg->unified_));
    return cg;
  }
  if (h.memory.empty() || h.pids.empty()) {
    return FailedPrecondition(std::string("the I/O wrapper needs the cgroup ") +
                              (h.memory.empty() ? "memory" : "pids") +
                              " controller (cgroup v2 with memory and pids, or v1 memory and "
                              "pids hierarchies), and this host mounts none");
  }
  auto make = [&](const std::string& root, std::string* dir) -> Status {
    FF_RETURN_IF_ERROR(MakeCgroupDirs(root, parent, nullptr));
    *dir = root + "/" + parent + "/" + name;
    EmptyAndRemove(*dir, false);
    if (::mkdir(dir->c_str(), 0755) != 0) return ErrnoError("cannot create cgroup", *dir, errno);
    cg->dirs_.push_back(*dir);
    return open_procs(*dir);
  };
  FF_RETURN_IF_ERROR(make(h.memory, &cg->memory_));
  if (memory_bytes > 0) {
    FF_RETURN_IF_ERROR(
        MustWrite(cg->memory_ + "/memory.limit_in_bytes", std::to_string(memory_bytes)));
    // With swap accounting, swap counts too (no escape into swap).
    WriteSmall(cg->memory_ + "/memory.memsw.limit_in_bytes", std::to_string(memory_bytes));
  }
  if (h.pids != h.memory)
    FF_RETURN_IF_ERROR(make(h.pids, &cg->pids_));
  else
    cg->pids_ = cg->memory_;
  if (processes > 0)
    FF_RETURN_IF_ERROR(MustWrite(cg->pids_ + "/pids.max", std::to_string(processes)));
  if (!h.cpuacct.empty()) {
    if (h.cpuacct == h.memory)
      cg->cpuacct_ = cg->memory_;
    else if (h.cpuacct == h.pids)
      cg->cpuacct_ = cg->pids_;
    else
      FF_RETURN_IF_ERROR(make(h.cpuacct, &cg->cpuacct_));
  }
  return cg;
}

RunCgroup::~RunCgroup() {
  for (int fd : procs_fds_) ::close(fd);
  for (const auto& d : dirs_) EmptyAndRemove(d, v2_);
}

void RunCgroup::KillAll() {
  for (const auto& d : dirs_) KillUntilEmpty(d, v2_);
}

int64_t RunCgroup::OomKills() const {
  if (v2_)
    return std::max<int64_t>(0, KeyValue(ReadSmall(unified_ + "/memory.events"), "oom_kill"));
  return std::max<int64_t>(0, KeyValue(ReadSmall(memory_ + "/memory.oom_control"), "oom_kill"));
}

int64_t RunCgroup::PidsLimitHits() const {
  return std::max<int64_t>(0,
                           KeyValue(ReadSmall((v2_ ? unified_ : pids_) + "/pids.events"), "max"));
}

int64_t RunCgroup::CpuMicros() const {
  if (v2_) return KeyValue(ReadSmall(unified_ + "/cpu.stat"), "usage_usec");
  if (cpuacct_.empty()) return -1;
  std::string t = ReadSmall(cpuacct_ + "/cpuacct.usage");
  if (t.empty()) return -1;
  return std::strtoll(t.c_str(), nullptr, 10) / 1000;
}

int64_t RunCgroup::PeakMemory() const {
  std::string t =
      ReadSmall(v2_ ? unified_ + "/memory.peak" : memory_ + "/memory.max_usage_in_bytes");
  return t.empty() ? 0 : std::strtoll(t.c_str(), nullptr, 10);
}

std::string DescribeHierarchies() {
  Hierarchies h = Detect();
  if (!h.unified.empty()) return "v2 " + h.unified;
  if (h.memory.empty() && h.pids.empty()) return "none";
  return "v1 memory " + (h.memory.empty() ? "-" : h.memory) + ", pids " +
         (h.pids.empty() ? "-" : h.pids) + ", cpuacct " + (h.cpuacct.empty() ? "-" : h.cpuacct);
}

void RemoveRunCgroup(const std::string& parent, const std::string& name) {
  Hierarchies h = Detect();
  if (!h.unified.empty()) {
    EmptyAndRemove(h.unified + "/" + parent + "/" + name, true);
    return;
  }
  for (const std::string& root : {h.memory, h.pids, h.cpuacct}) {
    if (!root.empty()) EmptyAndRemove(root + "/" + parent + "/" + name, false);
  }
}

int RemoveRunCgroups(const std::string& parent) {
  Hierarchies h = Detect();
  std::set<std::string> removed;
  for (const std::string& root : {h.unified, h.memory, h.pids, h.cpuacct}) {
    if (root.empty()) continue;
    const std::string dir = root + "/" + parent;
    std::vector<std::string> runs;
    DIR* d = ::opendir(dir.c_str());
    if (!d) continue;
    while (struct dirent* e = ::readdir(d)) {
      if (e->d_type == DT_DIR && e->d_name[0] != '.') runs.emplace_back(e->d_name);
    }
    ::closedir(d);
    for (const auto& run : runs) {
      EmptyAndRemove(dir + "/" + run, root == h.unified);
      removed.insert(run);
    }
  }
  return static_cast<int>(removed.size());
}

std::string RunCgroup::Describe() const {
  if (v2_) return "v2 " + unified_;
  return "v1 " + memory_ + (pids_ != memory_ ? ", " + pids_ : "") +
         (!cpuacct_.empty() && cpuacct_ != memory_ && cpuacct_ != pids_ ? ", " + cpuacct_ : "");
}

}  // namespace ff::sandbox
