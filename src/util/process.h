// Launching renderer processes behind an interface (tests and the sandbox
// of a later issue provide other launchers).
//
// A launched process runs in its own session and process group, so
// KillTree() reaches every descendant that did not start a new session of
// its own. Its stdout and stderr are merged and delivered line by line
// ('\n' or '\r' ends a line) to the callback, on a reader thread owned by
// the RunningProcess. Its stdin is /dev/null; it inherits no other file
// descriptor of the launching process, and it is killed (SIGKILL) when the
// thread that launched it exits.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff {

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] is an absolute path or looked up in $PATH
  std::string cwd;                // empty: inherit
  std::vector<std::string> env;   // extra KEY=VALUE entries added to the inherited environment
  // Non-zero: the process runs as this uid/gid with no supplementary groups
  // (and so without capabilities). REQUIRES: the launcher runs as root.
  uint32_t uid = 0;
  uint32_t gid = 0;
};

class RunningProcess {
 public:
  virtual ~RunningProcess() = default;
  virtual int pid() const = 0;
  // Signals the whole process group: SIGTERM, then SIGKILL after `grace_ms`
  // if anything is still alive. Safe to call from any thread, repeatedly.
  virtual void KillTree(int grace_ms) = 0;
  // Blocks until the process exits and every output line was delivered.
  // Returns the exit code, or 128 + signal number when killed by a signal.
  virtual int Wait() = 0;
  // Waits at most `timeout_ms` for the process to exit: then finishes as
  // Wait() does and returns its exit code; otherwise returns nullopt. Lets
  // the caller do periodic work while a process runs without a thread of
  // its own.
  virtual std::optional<int> WaitFor(int timeout_ms) = 0;
};

using LineCallback = std::function<void(const std::string& line)>;

class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  virtual Result<std::unique_ptr<RunningProcess>> Start(const ProcessSpec& spec,
                                                        LineCallback on_line) = 0;
};

// Launcher for the host (no isolation). The child is created with
// clone(CLONE_VM | CLONE_VFORK) on a stack of its own, so launching costs
// the same in a large multithreaded render server as in a small process (no
// page tables are copied), and the launching thread resumes once the child
// has exec'd or failed to (that failure is reported by Start()).
ProcessLauncher* DefaultProcessLauncher();

}  // namespace ff
