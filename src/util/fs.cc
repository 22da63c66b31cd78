#include "util/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <random>

#include "base/unique_fd.h"

namespace ff {

namespace {

// ENOENT becomes NotFound so callers can tell "missing" from "broken";
// everything else is an IoError. Both carry the same "<what> '<path>': ..."
// message.
Status PathError(const std::string& what, const std::string& path, int err) {
  Status s = ErrnoError(what, path, err);
  if (err == ENOENT) return NotFound(s.message());
  return s;
}

// Unlinks a temp path on scope exit unless Disarm()ed.
class TempUnlinker {
 public:
  explicit TempUnlinker(std::string path) : path_(std::move(path)) {}
  ~TempUnlinker() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempUnlinker(const TempUnlinker&) = delete;
  TempUnlinker& operator=(const TempUnlinker&) = delete;
  void Disarm() { path_.clear(); }

 private:
  std::string path_;
};

Status WriteAll(int fd, const char* data, size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", path, errno);
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

// A name for a temp file beside `path` that no other writer picks. mkstemp
// cannot be used where the temp is created by link(); callers retry on EEXIST.
std::string SiblingTempName(const std::string& path, const char* tag) {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::string name = "." + BaseName(path) + "." + tag + "-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter.fetch_add(1)) + "-" + std::to_string(rng() % 1000000);
  return JoinPath(DirName(path), name);
}

// Copies the regular file `from` to a fresh temp beside `to`, syncs it and
// renames it over `to`. The copy keeps the permission bits of `from`.
Status CopyFileAtomic(const std::string& from, const std::string& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return PathError("cannot open", from, errno);
  UniqueFd in_closer(in);
  struct stat st;
  if (::fstat(in, &st) != 0) return ErrnoError("cannot stat", from, errno);

  std::string tmp = JoinPath(DirName(to), "." + BaseName(to) + ".copy-XXXXXX");
  int out = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (out < 0) return ErrnoError("cannot create temp file in", DirName(to), errno);
  TempUnlinker unlinker(tmp);
  UniqueFd out_closer(out);
  if (::fchmod(out, st.st_mode & 07777) != 0) return ErrnoError("cannot chmod", tmp, errno);

  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", from, errno);
    }
    if (n == 0) break;
    FF_RETURN_IF_ERROR(WriteAll(out, buf.data(), static_cast<size_t>(n), tmp));
  }
  if (::fsync(out) != 0) return ErrnoError("cannot sync", tmp, errno);
  if (int err = out_closer.Close(); err != 0) return ErrnoError("cannot close", tmp, err);
  if (::rename(tmp.c_str(), to.c_str()) != 0) return ErrnoError("cannot rename to", to, errno);
  unlinker.Disarm();
  return SyncDir(DirName(to));
}

}  // namespace

// fsync of a directory makes renames and links inside it durable. Some
// filesystems do not support it on directories (EINVAL); that is not an error.
Status SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return PathError("cannot open directory", dir, errno);
  UniqueFd closer(fd);
  if (::fsync(fd) != 0 && errno != EINVAL) return ErrnoError("cannot sync directory", dir, errno);
  return Status::Ok();
}

Status MakeDirs(const std::string& path, int mode) {
  if (path.empty()) return InvalidArgument("cannot create a directory with an empty path");
  struct stat existing;
  if (::stat(path.c_str(), &existing) == 0 && S_ISDIR(existing.st_mode)) return Status::Ok();
  // Usually the directory or its parent exists: create from the end, one
  // call per missing component instead of one per path component.
  auto made = [&](const std::string& dir) {
    if (::mkdir(dir.c_str(), static_cast<mode_t>(mode)) == 0) return true;
    struct stat st;
    return errno == EEXIST && ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  };
  if (made(path)) return Status::Ok();
  if (errno == ENOENT) {
    const std::string parent = DirName(path);
    if (parent.size() < path.size() && MakeDirs(parent, mode).ok() && made(path)) {
      return Status::Ok();
    }
  }
  // Find the component that fails, for the error message.
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    std::string prefix = path.substr(0, pos);
    if (prefix.empty() || prefix.back() == '/') continue;  // "//" runs
    if (::mkdir(prefix.c_str(), static_cast<mode_t>(mode)) == 0) continue;
    int err = errno;
    if (err != EEXIST) return ErrnoError("cannot create directory", prefix, err);
    struct stat st;
    if (::stat(prefix.c_str(), &st) != 0) return ErrnoError("cannot stat", prefix, errno);
    if (!S_ISDIR(st.st_mode)) return ErrnoError("cannot create directory", prefix, ENOTDIR);
  }
  return Status::Ok();
}

Result<std::string> ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PathError("cannot open", path, errno);
  UniqueFd closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return ErrnoError("cannot stat", path, errno);
  if (S_ISDIR(st.st_mode)) return ErrnoError("cannot read", path, EISDIR);
  // st_size is only a hint: files under /proc report 0.
  std::string data;
  data.reserve(st.st_size > 0 ? static_cast<size_t>(st.st_size) : 0);
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path, errno);
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
  }
  return data;
}

Status WriteFileAtomic(const std::string& path, std::string_view data, int mode) {
  std::string dir = DirName(path);
  std::string tmp = JoinPath(dir, "." + BaseName(path) + ".tmp-XXXXXX");
  int fd = ::mkostemp(tmp.data(), O_CLOEXEC);
  if (fd < 0) return PathError("cannot create temp file for", path, errno);
  TempUnlinker unlinker(tmp);
  UniqueFd closer(fd);
  // mkstemp creates 0600; the caller's mode applies exactly (no umask).
  if (::fchmod(fd, static_cast<mode_t>(mode)) != 0) return ErrnoError("cannot chmod", tmp, errno);
  FF_RETURN_IF_ERROR(WriteAll(fd, data.data(), data.size(), tmp));
  if (::fsync(fd) != 0) return ErrnoError("cannot sync", tmp, errno);
  if (int err = closer.Close(); err != 0) return ErrnoError("cannot close", tmp, err);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoError("cannot rename to", path, errno);
  unlinker.Disarm();
  return SyncDir(dir);
}

Status RenameDurable(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) {
    int err = errno;
    return PathError("cannot rename '" + from + "' to", to, err);
  }
  std::string to_dir = DirName(to);
  FF_RETURN_IF_ERROR(SyncDir(to_dir));
  // The source directory lost an entry; sync it too so the old name does not
  // reappear after a crash.
  std::string from_dir = DirName(from);
  if (from_dir != to_dir) FF_RETURN_IF_ERROR(SyncDir(from_dir));
  return Status::Ok();
}

Status LinkOrCopy(const std::string& from, const std::string& to, DirSync dir_sync) {
  auto sync = [&]() { return dir_sync == DirSync::kNow ? SyncDir(DirName(to)) : Status::Ok(); };
  auto fallback = [&](int err) {
    // Cross-device, or a filesystem/policy that refuses hard links
    // (protected_hardlinks, FAT, some network filesystems), or the source has
    // as many links as the filesystem allows (EMLINK): copy instead.
    return err == EXDEV || err == EPERM || err == EMLINK || err == ENOTSUP || err == EOPNOTSUPP;
  };
  struct stat from_st;
  if (::stat(from.c_str(), &from_st) != 0) return PathError("cannot stat", from, errno);
  if (!S_ISREG(from_st.st_mode)) {
    return InvalidArgument("cannot link '" + from + "': not a regular file");
  }
  // Common case, one system call: `to` does not exist yet, and a new hard
  // link appears whole.
  if (::link(from.c_str(), to.c_str()) == 0) return sync();
  if (errno != EEXIST) {
    int err = errno;
    if (fallback(err)) return CopyFileAtomic(from, to);
    return PathError("cannot link '" + from + "' to", to, err);
  }
  // Replacing an existing file. rename() of one hard link over another of
  // the same inode is a no-op that would leave the temp name behind; linking
  // a file to itself is done.
  struct stat to_st;
  if (::stat(to.c_str(), &to_st) == 0 && to_st.st_dev == from_st.st_dev &&
      to_st.st_ino == from_st.st_ino) {
    return Status::Ok();
  }
  for (int attempt = 0; attempt < 100; ++attempt) {
    std::string tmp = SiblingTempName(to, "link");
    if (::link(from.c_str(), tmp.c_str()) != 0) {
      int err = errno;
      if (err == EEXIST) continue;
      if (fallback(err)) return CopyFileAtomic(from, to);
      return PathError("cannot link '" + from + "' to", to, err);
    }
    TempUnlinker unlinker(tmp);
    if (::rename(tmp.c_str(), to.c_str()) != 0) return ErrnoError("cannot rename to", to, errno);
    unlinker.Disarm();
    return sync();
  }
  return ErrnoError("cannot find a free temp name for", to, EEXIST);
}

Status RemoveAll(const std::string& path) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoError("cannot stat", path, errno);
  }
  if (S_ISDIR(st.st_mode)) {
    FF_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(path));
    for (const std::string& name : names) FF_RETURN_IF_ERROR(RemoveAll(JoinPath(path, name)));
    if (::rmdir(path.c_str()) != 0 && errno != ENOENT) {
      return ErrnoError("cannot remove directory", path, errno);
    }
    return Status::Ok();
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT)
    return ErrnoError("cannot remove", path, errno);
  return Status::Ok();
}

Status RemoveContents(const std::string& dir) {
  FF_ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
  for (const std::string& name : names) FF_RETURN_IF_ERROR(RemoveAll(JoinPath(dir, name)));
  return Status::Ok();
}

// True when the path names a directory entry, including a dangling symlink.
Result<int64_t> FreeBytes(const std::string& path) {
  struct statvfs vfs {};
  if (::statvfs(path.c_str(), &vfs) != 0) return PathError("cannot statvfs", path, errno);
  return static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
}

bool PathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

Result<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return PathError("cannot open directory", path, errno);
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    struct dirent* entry = ::readdir(dir);
    if (entry == nullptr) {
      int err = errno;
      ::closedir(dir);
      if (err != 0) return ErrnoError("cannot read directory", path, err);
      break;
    }
    std::string_view name = entry->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Joins with exactly one '/' between the parts. An absolute `b` is still
// placed under `a` ("a" + "/b" -> "a/b"), never substituted for it, so a
// hostile relative path cannot leave the directory it is joined to by
// starting with '/'.
std::string JoinPath(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  while (a.size() > 1 && a.back() == '/') a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  std::string out(a);
  if (out.back() != '/') out.push_back('/');
  out.append(b);
  return out;
}

// POSIX dirname(3) semantics: "a" -> ".", "/a" -> "/", "a/b/" -> "a", "" -> ".".
std::string DirName(const std::string& path) {
  std::string_view p = path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  size_t slash = p.rfind('/');
  if (slash == std::string_view::npos) return ".";
  p = p.substr(0, slash);
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  if (p.empty()) return "/";
  return std::string(p);
}

// POSIX basename(3) semantics, except "" -> "": "a/b/" -> "b", "/" -> "/".
std::string BaseName(const std::string& path) {
  std::string_view p = path;
  while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);
  if (p == "/") return "/";
  size_t slash = p.rfind('/');
  if (slash == std::string_view::npos) return std::string(p);
  return std::string(p.substr(slash + 1));
}

Result<UniqueFd> LockRoot(const std::string& dir, const std::string& what) {
  const std::string path = JoinPath(dir, "frameflow.lock");
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!fd.valid()) return PathError("cannot open the root lock", path, errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err != EWOULDBLOCK) return PathError("cannot lock", path, err);
    char owner[128] = {0};
    const ssize_t n = ::pread(fd.get(), owner, sizeof owner - 1, 0);
    std::string who = n > 0 ? std::string(owner, static_cast<size_t>(n)) : "another process";
    while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
    return FailedPrecondition("root '" + dir + "' is in use by " + who + " (it holds " + path +
                              "): one root belongs to one " + what +
                              "; give this one its own root, or stop the other first");
  }
  const std::string owner = what + " pid " + std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 ||
      ::pwrite(fd.get(), owner.data(), owner.size(), 0) != static_cast<ssize_t>(owner.size())) {
    return PathError("cannot write the root lock", path, errno);
  }
  return fd;
}

Result<std::string> MakeTempDir(const std::string& prefix) {
  if (prefix.find('/') != std::string::npos) {
    return InvalidArgument("temp directory prefix '" + prefix + "' must not contain '/'");
  }
  const char* env = std::getenv("TMPDIR");
  std::string base = (env != nullptr && env[0] != '\0') ? env : "/tmp";
  std::string templ = JoinPath(base, prefix + "-XXXXXX");
  if (::mkdtemp(templ.data()) == nullptr) {
    return ErrnoError("cannot create temp directory in", base, errno);
  }
  return templ;
}

bool IsTempName(std::string_view name) {
  if (name.size() < 2 || name[0] != '.') return false;
  for (std::string_view tag : {".tmp-", ".copy-", ".link-"}) {
    const size_t at = name.rfind(tag);
    if (at != std::string_view::npos && at > 1 && at + tag.size() < name.size()) return true;
  }
  return false;
}

Result<int> RemoveTempFiles(const std::string& dir) {
  int removed = 0;
  std::vector<std::string> stack = {dir};
  while (!stack.empty()) {
    const std::string d = std::move(stack.back());
    stack.pop_back();
    auto names = ListDir(d);
    if (!names.ok()) {
      if (d == dir && !PathExists(dir)) return 0;
      return names.status();
    }
    for (const auto& n : *names) {
      const std::string p = JoinPath(d, n);
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        stack.push_back(p);
      } else if (IsTempName(n)) {
        if (::unlink(p.c_str()) != 0 && errno != ENOENT) {
          return ErrnoError("cannot remove", p, errno);
        }
        ++removed;
      }
    }
  }
  return removed;
}

}  // namespace ff
