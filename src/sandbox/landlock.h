// Landlock: the sandbox's second wall. Even if a bind mount exposed more
// than intended, the renderer can only read and execute where a rule says,
// write only to its output area and /tmp, create no device, FIFO, socket
// or symlink anywhere, and (ABI 4+) bind or connect no TCP socket.
//
// Rules are attached to inodes, so they are added inside the sandbox after
// its root is built, and applied with Restrict() once no_new_privs is set.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"

namespace ff::sandbox {

// The kernel's Landlock ABI version; 0 when Landlock is unsupported or
// disabled.
int LandlockAbi();

enum class Access {
  kReadExec,   // read files and directories, execute files
  kRead,       // read files and directories
  kReadWrite,  // kRead plus create/remove/rename/truncate regular files and directories
  kDevice,     // read and write an existing device file (/dev/null)
};

struct LandlockRule {
  std::string path;  // inside the sandbox
  Access access;
};

// Fails, naming the setting, when the kernel's ABI is below `min_abi`.
Status CheckLandlockAbi(int min_abi);

// Creates a ruleset handling every access right the kernel's ABI knows,
// allowing only `rules`. Returns the ruleset fd. Fails when the ABI is
// below `min_abi` or a rule's path cannot be opened.
Result<int> BuildLandlockRuleset(const std::vector<LandlockRule>& rules, int min_abi);

// landlock_restrict_self(ruleset) then closes it. REQUIRES: no_new_privs.
Status RestrictSelf(int ruleset_fd);

}  // namespace ff::sandbox
