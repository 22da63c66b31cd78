// WrapSpec: everything the I/O wrapper needs to run one renderer process
// (one chunk's command) with only its own files in view, and the command
// line that carries it from the render server to `frameflow-wrap`.
//
// The render server builds a WrapSpec per chunk and turns it into
// arguments with ToArgs(); `frameflow-wrap` parses them back with
// ParseWrapArgs(). Both ends share this file, so the two never disagree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "base/units.h"

namespace ff::sandbox {

// A read-only bind mount of a host path at a path inside the sandbox.
struct BindMount {
  std::string host;
  std::string sandbox;
};

// Resource limits of one run; 0 means "no limit" unless noted.
struct Limits {
  int64_t memory_bytes = 0;                 // cgroup memory (RAM; tmpfs pages written count too)
  int64_t processes = 0;                    // processes and threads (cgroup pids + RLIMIT_NPROC)
  int64_t cpu_seconds = 0;                  // CPU time of every process together
  int64_t wall_ms = 0;                      // wall-clock time; everything is killed
  int64_t output_bytes = int64_t{1} << 30;  // size of the output tmpfs (> 0)
  int64_t file_bytes = 0;                   // RLIMIT_FSIZE: size of any one file
  int64_t tmp_bytes = int64_t{256} << 20;   // size of the private /tmp (> 0)
  int64_t open_files = 1024;                // RLIMIT_NOFILE (> 0)
};

struct WrapSpec {
  std::string name;  // unique run name: the cgroup's name
  uid_t uid = 0;     // unprivileged (never 0)
  gid_t gid = 0;
  std::vector<BindMount> system;         // read-only, executable: binaries, libraries, data
  std::string input;                     // host dir shown read-only (noexec) at kInputPath
  std::vector<BindMount> central;        // read-only (noexec) host dirs at central storage paths
  std::string output;                    // sandbox path of the writable output tmpfs
  std::vector<std::string> output_dirs;  // relative directories made in it (owned by uid)
  std::string collect_to;                // host dir the output is copied to after the run
  std::string cwd;                       // default: kInputPath with an input, else "/"
  std::vector<std::string> env;          // KEY=VALUE added to the minimal environment
  std::string hostname = "frameflow";
  Limits limits;
  int landlock_min_abi = 1;
  std::string cgroup_parent = "frameflow";  // relative to the cgroup hierarchy root
  std::string report;                       // host path of the JSON report, optional
  bool summary = false;                     // print mounts and limits to stderr
  std::vector<std::string> argv;            // the program and its arguments
};

// Where the job's input appears inside the sandbox.
inline constexpr const char* kInputPath = "/job";

// Parses `frameflow-wrap` arguments (argv[0] excluded). Checks every path
// and value; the error names the option.
Result<WrapSpec> ParseWrapArgs(const std::vector<std::string>& args);

// The arguments that ParseWrapArgs() reads back to an equal spec.
std::vector<std::string> ToArgs(const WrapSpec& spec);

// Checks a spec as ParseWrapArgs() does (for specs built in code).
Status ValidateSpec(const WrapSpec& spec);

// One line per mount and one for the limits, for logs and `show`:
//   "mount /usr <- /usr (read-only)", ..., "limits memory 2 GiB, processes 256, ...".
std::vector<std::string> SummaryLines(const WrapSpec& spec);
// The limits line alone ("memory 2 GiB, processes 256, ...").
std::string LimitsText(const Limits& limits);

// 3000 -> "3 s", 1500 -> "1.500 s".
std::string FormatSeconds(int64_t ms);

}  // namespace ff::sandbox
