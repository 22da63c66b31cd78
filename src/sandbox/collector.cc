#include "sandbox/collector.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <memory>

#include "base/open_beneath.h"
#include "base/unique_fd.h"

namespace ff::sandbox {

namespace {

constexpr int kMaxDepth = 64;
constexpr size_t kMaxEntries = 100000;
// The output area is one tmpfs: nothing in it may lead to another mount.
constexpr BeneathOptions kSameFs{.same_filesystem = true};

const char* KindOf(mode_t mode) {
  if (S_ISLNK(mode)) return "symlink";
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "device";
  return "not a regular file";
}

Status CopyFile(int src, int dest_dir, const char* name, int64_t size, const std::string& shown) {
  ::unlinkat(dest_dir, name, 0);
  UniqueFd out(
      ::openat(dest_dir, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (out.get() < 0) return ErrnoError("cannot create", shown, errno);
  off_t off = 0;
  while (off < size) {
    ssize_t n = ::sendfile(out.get(), src, &off,
                           static_cast<size_t>(std::min<int64_t>(size - off, 1 << 30)));
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
      UniqueFd sub(OpenBeneath(src_dir, name, O_RDONLY | O_DIRECTORY, kSameFs));
      if (sub.get() < 0) {
        out->refused.push_back({path, "cannot open directory"});
        continue;
      }
      if (::mkdirat(dest_dir, name.c_str(), 0700) != 0 && errno != EEXIST) {
        return ErrnoError("cannot create", dest_path + "/" + name, errno);
      }
      UniqueFd dsub(
          ::openat(dest_dir, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (dsub.get() < 0) return ErrnoError("cannot open", dest_path + "/" + name, errno);
      FF_RETURN_IF_ERROR(Walk(sub.get(), dsub.get(), path, dest_path + "/" + name, depth + 1, out));
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
    UniqueFd f(OpenBeneath(src_dir, name, O_RDONLY, kSameFs));
    struct stat fst {};
    if (f.get() < 0 || ::fstat(f.get(), &fst) != 0 || !S_ISREG(fst.st_mode) ||
        fst.st_ino != st.st_ino) {
      out->refused.push_back({path, "changed while collecting"});
      continue;
    }
    FF_RETURN_IF_ERROR(
        CopyFile(f.get(), dest_dir, name.c_str(), fst.st_size, dest_path + "/" + name));
    out->collected.push_back({path, static_cast<int64_t>(fst.st_size)});
  }
  return Status::Ok();
}

}  // namespace

std::string PrintableName(const std::string& name) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f || c == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

Result<Collection> CollectOutputs(int source_fd, const std::string& dest_dir) {
  if (::mkdir(dest_dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return ErrnoError("cannot create", dest_dir, errno);
  }
  UniqueFd dest(::open(dest_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (dest.get() < 0) return ErrnoError("cannot open", dest_dir, errno);
  UniqueFd src(OpenBeneath(source_fd, ".", O_RDONLY | O_DIRECTORY, kSameFs));
  if (src.get() < 0) return ErrnoError("cannot open the output area", dest_dir, errno);
  Collection out;
  FF_RETURN_IF_ERROR(Walk(src.get(), dest.get(), "", dest_dir, 0, &out));
  return out;
}

}  // namespace ff::sandbox
