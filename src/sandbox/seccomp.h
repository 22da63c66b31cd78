// Seccomp: the system calls a renderer has no business making. Debugging
// (ptrace, process_vm_*), changing the view of the system (mount, umount,
// pivot_root, chroot, unshare, setns, namespaces through clone), kernel
// attack surface (bpf, perf_event_open, keyctl, io_uring, userfaultfd,
// open_by_handle_at, module loading, kexec, reboot, swap), sockets of any
// family but AF_UNIX, and terminal input injection (TIOCSTI, TIOCLINUX)
// fail with EPERM; clone3 fails with ENOSYS so libc falls back to clone,
// whose flags the filter can check. System calls of a foreign
// architecture (i386, x32) kill the process.
#pragma once

#include "base/status.h"

namespace ff::sandbox {

// Installs the filter on the calling thread. REQUIRES: no_new_privs.
Status InstallSeccompFilter();

// How many rules the filter has (for the chunk log).
int SeccompRuleCount();

}  // namespace ff::sandbox
