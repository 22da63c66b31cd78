// The I/O wrapper: runs one program with only its own files in view, as
// `frameflow-wrap` does for every chunk's renderer. See mounts.h for the
// filesystem view, credentials.h, landlock.h and seccomp.h for the walls,
// cgroup.h for the limits, collector.h for the output.
//
// Process structure: the wrapper (root, outside) creates the cgroup and the
// output and /tmp tmpfs, then clones the sandbox's init into new mount, PID,
// network, IPC, UTS (and, once it joined its cgroup, cgroup) namespaces.
// Init builds the view, drops to the slot's uid, applies the walls, and
// forks the program, forwarding SIGTERM/SIGINT/SIGHUP to it. When the
// program exits, init reports its status and exits, and the kernel kills
// whatever else was left in the PID namespace. The wrapper enforces the
// wall-time and CPU-time limits, works out which limit (if any) ended the
// run, collects the output, removes the cgroup and writes the report.
#pragma once

#include <cstdint>
#include <string>

#include "base/status.h"
#include "sandbox/collector.h"
#include "sandbox/spec.h"

namespace ff::sandbox {

// Exit codes of the wrapper besides the program's own.
inline constexpr int kSetupFailed = 125;
inline constexpr int kCannotExecute = 126;
inline constexpr int kNotFound = 127;

// What ended a run.
struct WrapReport {
  int exit_code = 0;  // the program's, 128 + signal when killed; or kSetupFailed/...
  int signal = 0;
  std::string limit;        // "", "memory", "processes", "cpu_time", "wall_time", "output_size",
                            // "file_size", "tmp_size"
  std::string reason;       // the limit in words, for the chunk's error
  std::string setup_error;  // why the sandbox could not be set up or the program not run
  Collection collection;
  int64_t cpu_ms = 0;
  int64_t wall_ms = 0;
  int64_t peak_memory = 0;
  int64_t launch_us = 0;  // from the wrapper's start to the program's exec
};

// The memory holding this process's command line (argv[0] .. the last
// argument's NUL). The sandbox's init, a fork of the wrapper, overwrites it
// and its environment strings: /proc/1/cmdline is readable inside the
// sandbox and would show the host paths of the wrapper's arguments.
void SetCommandLineArea(char* begin, size_t size);

// Runs spec.argv in the sandbox; returns when everything in it is gone.
// Output of the program goes to this process's stdout/stderr.
WrapReport RunWrapped(const WrapSpec& spec);

std::string ReportToJson(const WrapReport& report);
Result<WrapReport> ReportFromJson(const std::string& json);

}  // namespace ff::sandbox
