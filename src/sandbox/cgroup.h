// Control groups for one sandboxed run: memory, process-count and CPU
// accounting, and a way to find every process of the run.
//
// Works with the unified hierarchy (cgroup v2: memory and pids controllers
// enabled) and with the legacy one (cgroup v1: memory and pids hierarchies,
// cpuacct when mounted), whichever the host offers, as nsjail does. The
// run's cgroup is <hierarchy root>/<parent>/<name> in every hierarchy used.
//
// Not thread-safe; owned by the wrapper process.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff::sandbox {

class RunCgroup {
 public:
  // Creates the run's cgroup(s) and sets the limits (0 = unlimited). Fails
  // with a message naming the missing controller when the host has no
  // memory or pids controller to use. A leftover cgroup of the same name
  // (an earlier run killed hard) is emptied and replaced.
  static Result<std::unique_ptr<RunCgroup>> Create(const std::string& parent,
                                                   const std::string& name, int64_t memory_bytes,
                                                   int64_t processes);
  // Kills whatever is left and removes the cgroup(s).
  ~RunCgroup();

  // Writable `cgroup.procs` descriptors: a process that writes "0" to each
  // joins the run's cgroup (the sandbox's init does, before it unshares its
  // cgroup namespace).
  const std::vector<int>& procs_fds() const { return procs_fds_; }

  // Times the kernel's OOM killer killed a process of the run.
  int64_t OomKills() const;
  // Times a fork failed because the process limit was reached.
  int64_t PidsLimitHits() const;
  // CPU time used by the run so far, in microseconds; -1 when unknown.
  int64_t CpuMicros() const;
  // Most memory the run used; 0 when unknown.
  int64_t PeakMemory() const;
  // "v2 /sys/fs/cgroup/frameflow/x" or "v1 memory,pids,cpuacct".
  std::string Describe() const;

  // Kills every process in the cgroup and waits until it is empty.
  void KillAll();

 private:
  RunCgroup() = default;
  bool v2_ = false;
  std::string unified_;  // v2: the run's directory
  std::string memory_;   // v1: the run's directory in each hierarchy
  std::string pids_;
  std::string cpuacct_;
  std::vector<int> procs_fds_;
  std::vector<std::string> dirs_;  // every directory created for the run
};

// Which hierarchies RunCgroup would use on this host: "v2 /sys/fs/cgroup",
// "v1 memory /sys/fs/cgroup/memory, pids ..., cpuacct ...", or "none".
std::string DescribeHierarchies();

// Kills whatever is left in the run cgroup <parent>/<name> and removes it in
// every hierarchy (after a wrapper that was killed before its cleanup).
void RemoveRunCgroup(const std::string& parent, const std::string& name);

// Kills whatever is left in every run cgroup directly under `parent` and
// removes them, in every hierarchy: for a render server starting after its
// previous life was killed hard (kill -9), whose renderers may still run.
// REQUIRES: `parent` is the caller's alone (the render server holds its
// root lock and uid block). Returns how many run cgroups it removed.
int RemoveRunCgroups(const std::string& parent);

}  // namespace ff::sandbox
