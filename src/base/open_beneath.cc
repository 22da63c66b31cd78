#include "base/open_beneath.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <string_view>

#include "base/unique_fd.h"

#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define FF_HAVE_OPENAT2_HEADER 1
#endif

namespace ff {

namespace {

#if defined(FF_HAVE_OPENAT2_HEADER) && defined(SYS_openat2)
int OpenAt2(int dirfd, const char* path, int flags, bool same_fs) {
  struct open_how how;
  std::memset(&how, 0, sizeof how);
  how.flags = static_cast<uint64_t>(flags);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  if (same_fs) how.resolve |= RESOLVE_NO_XDEV;
  for (;;) {
    long fd = ::syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd >= 0) return static_cast<int>(fd);
    if (errno != EINTR && errno != EAGAIN) return -1;
  }
}
#else
int OpenAt2(int, const char*, int, bool) {
  errno = ENOSYS;
  return -1;
}
#endif

// The component walk: each name opened relative to its parent with
// O_NOFOLLOW (a symlink fails with ELOOP), ".." refused.
int WalkBeneath(int dirfd, std::string_view rel, int flags, bool same_fs) {
  struct stat root_st {};
  if (same_fs && ::fstat(dirfd, &root_st) != 0) return -1;
  UniqueFd cur(::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!cur.valid()) return -1;
  size_t pos = 0;
  while (pos < rel.size()) {
    size_t slash = rel.find('/', pos);
    if (slash == std::string_view::npos) slash = rel.size();
    const std::string name(rel.substr(pos, slash - pos));
    pos = slash + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") {
      errno = EXDEV;
      return -1;
    }
    const bool last = pos >= rel.size();
    const int f = last ? flags : (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    UniqueFd next(::openat(cur.get(), name.c_str(), f, 0600));
    if (!next.valid()) return -1;
    if (same_fs) {
      struct stat st {};
      if (::fstat(next.get(), &st) != 0) return -1;
      if (st.st_dev != root_st.st_dev) {
        errno = EXDEV;
        return -1;
      }
    }
    cur = std::move(next);
  }
  return cur.Release();
}

}  // namespace

int OpenBeneath(int dirfd, const std::string& rel, int flags, BeneathOptions options) {
  flags |= O_CLOEXEC | O_NOFOLLOW;
  // A new open file description of the directory itself (not a dup, which
  // would share its reading position).
  if (rel.empty() || rel == ".") return ::openat(dirfd, ".", flags);
  static std::atomic<bool> openat2_works{true};
  if (openat2_works.load(std::memory_order_relaxed)) {
    int fd = OpenAt2(dirfd, rel.c_str(), flags, options.same_filesystem);
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return fd;
    openat2_works.store(false, std::memory_order_relaxed);
  }
  return WalkBeneath(dirfd, rel, flags, options.same_filesystem);
}

}  // namespace ff
