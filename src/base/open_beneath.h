// Opening a path beneath a directory without ever leaving it: no component
// may be a symlink, "..", or (optionally) a mount point. The hot-folder
// package reader and the I/O wrapper's output collector read directories a
// stranger wrote; this is how they open what is inside.
#pragma once

#include <string>

namespace ff {

struct BeneathOptions {
  bool same_filesystem = false;  // refuse to cross a mount point (EXDEV)
};

// Opens `rel` (a relative path; "" or "." opens `dirfd`'s directory anew)
// beneath `dirfd` with `flags` (O_CLOEXEC and O_NOFOLLOW are added). Uses
// openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS);
// where the kernel or a seccomp filter refuses openat2 (ENOSYS, EPERM) it
// walks the components with O_NOFOLLOW instead, with the same outcome.
// Returns the descriptor, or -1 with errno (ELOOP: a symlink; EXDEV: a
// mount point or an escape; ENOTDIR; ENOENT...).
int OpenBeneath(int dirfd, const std::string& rel, int flags, BeneathOptions options = {});

}  // namespace ff
