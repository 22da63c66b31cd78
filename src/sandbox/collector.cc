#include "sandbox/collector.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

namespace ff::sandbox {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxEntries = 100000;

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

int OpenBeneath(int dirfd, const char* name, uint64_t flags) {
  struct open_how how {};
  how.flags = flags | O_NOFOLLOW | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;
  return static_cast<int>(::syscall(SYS_openat2, dirfd, name, &how, sizeof how));
}

const char* KindOf(mode_t mode) {
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "device";
  return "not a regular file";
}

Status CopyFile(int src, int dest_dir, const char* name, int64_t size, const std::string& shown) {
  ::unlinkat(dest_dir, name, 0);
  Fd out(::openat(dest_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (out.fd < 0) return ErrnoError("cannot create", shown, errno);
  off_t off = 0;
  while (off < size) {
    ssize_t n =
        ::sendfile(out.fd, src, &off, static_cast<size_t>(std::min<int64_t>(size - off, 1 << 30)));
    if (n < 0) return ErrnoError("cannot copy", shown, errno);
    if (n == 0) break;
  }
  return Status::Ok();
}

Status Walk(int src_dir, int dest_dir, const std::string& rel, const std::string& dest_path,
            int depth, Collection* out) {
  if (depth > kMaxDepth) {
    out->refused.push_back({rel, "nested too deep"});
    return Status::Ok();
  }
  int dup = ::dup(src_dir);
  if (dup < 0) return ErrnoError("cannot read", rel, errno);
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::fdopendir(dup), ::closedir);
  if (!dir) {
    ::close(dup);
    return ErrnoError("cannot list", rel, errno);
  }
  while (struct dirent* e = ::readdir(dir.get())) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    if (out->collected.size() + out->refused.size() >= kMaxEntries) {
      out->refused.push_back({rel, "too many files"});
      return Status::Ok();
    }
    const std::string path = rel.empty() ? name : rel + "/" + name;
    struct stat st {};
    if (::fstatat(src_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      out->refused.push_back({path, "cannot stat"});
      continue;
    }
    if (S_ISDIR(st.st_mode)) {
      Fd sub(OpenBeneath(src_dir, name.c_str(), O_RDONLY | O_DIRECTORY));
      if (sub.fd < 0) {
        out->refused.push_back({path, "cannot open directory"});
        continue;
      }
      if (::mkdirat(dest_dir, name.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoError("cannot create", dest_path + "/" + name, errno);
      }
      Fd dsub(::openat(dest_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (dsub.fd < 0) return ErrnoError("cannot open", dest_path + "/" + name, errno);
      FF_RETURN_IF_ERROR(Walk(sub.fd, dsub.fd, path, dest_path + "/" + name, depth + 1, out));
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      out->refused.push_back({path, KindOf(st.st_mode)});
      continue;
    }
    if (st.st_nlink != 1) {
      out->refused.push_back({path, "hard link"});
      continue;
    }
    Fd f(OpenBeneath(src_dir, name.c_str(), O_RDONLY));
    struct stat fst {};
    if (f.fd < 0 || ::fstat(f.fd, &fst) != 0 || !S_ISREG(fst.st_mode) || fst.st_ino != st.st_ino) {
      out->refused.push_back({path, "changed while collecting"});
      continue;
    }
    FF_RETURN_IF_ERROR(CopyFile(f.fd, dest_dir, name.c_str(), fst.st_size, dest_path + "/" + name));
    out->collected.push_back({path, static_cast<int64_t>(fst.st_size)});
  }
  return Status::Ok();
}

}  // namespace

Result<Collection> CollectOutputs(int source_fd, const std::string& dest_dir) {
  if (::mkdir(dest_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError("cannot create", dest_dir, errno);
  }
  Fd dest(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dest.fd < 0) return ErrnoError("cannot open", dest_dir, errno);
  Fd src(OpenBeneath(source_fd, ".", O_RDONLY | O_DIRECTORY));
  if (src.fd < 0) return ErrnoError("cannot open the output area", dest_dir, errno);
  Collection out;
  FF_RETURN_IF_ERROR(Walk(src.fd, dest.fd, "", dest_dir, 0, &out));
  return out;
}

}  // namespace ff::sandbox
