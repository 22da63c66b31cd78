// The sandbox's filesystem view, built in a new, private mount namespace:
//
//   /            a read-only tmpfs holding only what follows
//   /usr ...     read-only binds of the system paths the renderer needs
//                (WrapSpec::system, in order: a later one may sit inside an
//                earlier one), executable; merged-/usr symlinks
//                (/bin -> usr/bin, ...) as on the host
//   /etc         generated passwd and group, plus read-only binds of
//                chosen host files (ld.so.cache, povray, fonts, ...)
//   /job         the job's input, read-only, noexec
//   central      read-only, noexec binds of input directories at the
//                absolute central storage paths the scene names
//   output       a size-limited tmpfs owned by the slot's uid, noexec
//   /tmp         a size-limited tmpfs, mode 1777, noexec
//   /proc        a new procfs (the sandbox's PID namespace); /proc/sys,
//                /proc/sysrq-trigger, /proc/irq, /proc/bus read-only
//   /dev         a read-only tmpfs with null, zero, urandom and the fd,
//                stdin, stdout, stderr symlinks
//
// Every mount is nosuid; read-only applies recursively (mount_setattr with
// AT_RECURSIVE); the namespace's mounts are private, so nothing propagates
// to the host. The output and /tmp tmpfs are made by the wrapper outside
// the sandbox (fsmount) and only moved into it, so the wrapper keeps a
// handle on them after the sandbox is gone: to collect the output and to
// see whether either filled up.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "base/status.h"
#include "sandbox/landlock.h"
#include "sandbox/spec.h"

namespace ff::sandbox {

// Ok when this process's "/" is the root of a mount, as on a host or in a
// container. Inside a chroot whose directory is not a mount point the I/O
// wrapper cannot work — it could neither keep its mounts from propagating
// to the host nor pivot_root — so the render server refuses to start there
// (and the wrapper to run), with this error, instead of failing every
// chunk.
Status CheckRootIsMountPoint();

// A detached tmpfs of `bytes` (mode, owner as given; nosuid, nodev,
// noexec), returned as a mount fd.
Result<int> MakeDetachedTmpfs(int64_t bytes, int mode, uid_t uid, gid_t gid);

// In the sandbox's init, in its new mount namespace, still root: builds the
// view above and pivots into it; the old root is detached. Returns the
// Landlock rules matching the view.
Result<std::vector<LandlockRule>> BuildSandboxRoot(const WrapSpec& spec, int output_fd, int tmp_fd);

// The directory the new root is assembled on, in the sandbox's own mount
// namespace (created once on the host, never mounted on there).
inline constexpr const char* kStagingDir = "/run/frameflow-wrap/root";

}  // namespace ff::sandbox
