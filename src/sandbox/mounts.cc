#include "sandbox/mounts.h"

#include <fcntl.h>
#include <linux/mount.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace ff::sandbox {

namespace {

Status Errno(const std::string& what, const std::string& path) {
  return ErrnoError(what, path, errno);
}

// mkdir -p of an absolute `path`.
Status MakeDirsAt(const std::string& path, mode_t mode = 0755) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), mode) != 0 && errno != EEXIST) return Errno("cannot create", part);
  }
  return Status::Ok();
}

std::string Parent(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status WriteNewFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Errno("cannot create", path);
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  if (!ok) return Errno("cannot write", path);
  return Status::Ok();
}

Status SetAttr(const std::string& path, uint64_t set, bool recursive) {
  struct mount_attr attr {};
  attr.attr_set = set;
  if (::mount_setattr(AT_FDCWD, path.c_str(), recursive ? AT_RECURSIVE : 0, &attr, sizeof attr) !=
      0) {
    return Errno("mount_setattr failed on", path);
  }
  return Status::Ok();
}

// Binds host path `from` at `to` (created: a directory, or an empty file for
// a file), then applies `attrs` to it and everything mounted beneath.
Status BindInto(const std::string& from, const std::string& to, uint64_t attrs) {
  struct stat st {};
  if (::stat(from.c_str(), &st) != 0) return Errno("cannot bind-mount", from);
  if (S_ISDIR(st.st_mode)) {
    FF_RETURN_IF_ERROR(MakeDirsAt(to));
  } else if (::access(to.c_str(), F_OK) != 0) {  // may exist in an earlier read-only bind
    FF_RETURN_IF_ERROR(MakeDirsAt(Parent(to)));
    int fd = ::open(to.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot create mount point", to);
    ::close(fd);
  }
  if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
    return Errno("cannot bind-mount " + from + " at", to);
  }
  return SetAttr(to, attrs, true);
}

Status MoveInto(int mount_fd, const std::string& to) {
  FF_RETURN_IF_ERROR(MakeDirsAt(to));
  if (::move_mount(mount_fd, "", AT_FDCWD, to.c_str(), MOVE_MOUNT_F_EMPTY_PATH) != 0) {
    return Errno("cannot attach tmpfs at", to);
  }
  return Status::Ok();
}

}  // namespace

Status CheckRootIsMountPoint() {
  struct statx stx {};
  if (::statx(AT_FDCWD, "/", 0, STATX_BASIC_STATS, &stx) != 0) {
    return ErrnoError("cannot stat", "/", errno);
  }
  if ((stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) == 0) return Status::Ok();  // unknown
  if ((stx.stx_attributes & STATX_ATTR_MOUNT_ROOT) != 0) return Status::Ok();
  return FailedPrecondition(
      "the I/O wrapper cannot run here: '/' is not a mount point (this process runs in a chroot "
      "whose directory is a plain directory); run the render server on the host or in a "
      "container, or bind the chroot's directory onto itself before entering it "
      "(mount --bind DIR DIR)");
}

Result<int> MakeDetachedTmpfs(int64_t bytes, int mode, uid_t uid, gid_t gid) {
  int fs = ::fsopen("tmpfs", FSOPEN_CLOEXEC);
  if (fs < 0) return ErrnoError("fsopen failed for", "tmpfs", errno);
  char mode_text[16];
  std::snprintf(mode_text, sizeof mode_text, "%o", mode);
  const std::pair<const char*, std::string> options[] = {
      {"size", std::to_string(bytes)},
      {"mode", mode_text},
      {"uid", std::to_string(uid)},
      {"gid", std::to_string(gid)},
      {"nr_inodes", std::to_string(std::max<int64_t>(1024, bytes / 4096))},
  };
  for (const auto& [key, value] : options) {
    if (::fsconfig(fs, FSCONFIG_SET_STRING, key, value.c_str(), 0) != 0) {
      Status st = ErrnoError(std::string("tmpfs option ") + key + "=" + value, "tmpfs", errno);
      ::close(fs);
      return st;
    }
  }
  if (::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0) {
    Status st = ErrnoError("cannot create", "tmpfs", errno);
    ::close(fs);
    return st;
  }
  int mnt =
      ::fsmount(fs, FSMOUNT_CLOEXEC, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC);
  int err = errno;
  ::close(fs);
  if (mnt < 0) return ErrnoError("fsmount failed for", "tmpfs", err);
  return mnt;
}

Result<std::vector<LandlockRule>> BuildSandboxRoot(const WrapSpec& spec, int output_fd,
                                                   int tmp_fd) {
  std::vector<LandlockRule> rules;
  const std::string root = kStagingDir;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    if (errno == EINVAL) FF_RETURN_IF_ERROR(CheckRootIsMountPoint());
    return Errno("cannot make the mount namespace private", "/");
  }
  if (::mount("tmpfs", root.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=4m") != 0) {
    return Errno("cannot mount the sandbox root tmpfs at", root);
  }
  // Merged-/usr hosts: /bin, /lib, ... are symlinks into /usr.
  for (const char* d : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    std::string host = std::string("/") + d;
    struct stat st {};
    if (::lstat(host.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) continue;
    char target[256];
    ssize_t n = ::readlink(host.c_str(), target, sizeof target - 1);
    if (n <= 0) continue;
    target[n] = '\0';
    if (::symlink(target, (root + host).c_str()) != 0) return Errno("cannot create", root + host);
  }
  const uint64_t ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  for (const auto& b : spec.system) {
    FF_RETURN_IF_ERROR(BindInto(b.host, root + b.sandbox, ro));
    rules.push_back({b.sandbox, Access::kReadExec});
  }
  FF_RETURN_IF_ERROR(MakeDirsAt(root + "/etc"));
  const std::string uid = std::to_string(spec.uid), gid = std::to_string(spec.gid);
  FF_RETURN_IF_ERROR(WriteNewFile(root + "/etc/passwd",
                                  "root:x:0:0:root:/root:/usr/sbin/nologin\nrender:x:" + uid + ":" +
                                      gid + ":frameflow renderer:/tmp:/usr/sbin/nologin\n",
                                  0644));
  FF_RETURN_IF_ERROR(WriteNewFile(root + "/etc/group", "root:x:0:\nrender:x:" + gid + ":\n", 0644));
  FF_RETURN_IF_ERROR(WriteNewFile(root + "/etc/hostname", spec.hostname + "\n", 0644));
  FF_RETURN_IF_ERROR(WriteNewFile(
      root + "/etc/hosts", "127.0.0.1 localhost " + spec.hostname + "\n::1 localhost\n", 0644));
  rules.push_back({"/etc", Access::kRead});
  if (!spec.input.empty()) {
    FF_RETURN_IF_ERROR(BindInto(spec.input, root + kInputPath, ro | MOUNT_ATTR_NOEXEC));
    rules.push_back({kInputPath, Access::kRead});
  }
  for (const auto& b : spec.central) {
    FF_RETURN_IF_ERROR(BindInto(b.host, root + b.sandbox, ro | MOUNT_ATTR_NOEXEC));
    rules.push_back({b.sandbox, Access::kRead});
  }
  if (!spec.output.empty()) {
    FF_RETURN_IF_ERROR(MoveInto(output_fd, root + spec.output));
    rules.push_back({spec.output, Access::kReadWrite});
    // Directories the output pattern names, the renderer's own.
    for (const auto& rel : spec.output_dirs) {
      std::string path = root + spec.output;
      for (size_t i = 0; i <= rel.size(); ++i) {
        if (i != rel.size() && rel[i] != '/') continue;
        path = root + spec.output + "/" + rel.substr(0, i);
        if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
          return Errno("cannot create", path);
        if (::chown(path.c_str(), spec.uid, spec.gid) != 0)
          return Errno("cannot give to the uid", path);
      }
    }
  }
  FF_RETURN_IF_ERROR(MoveInto(tmp_fd, root + "/tmp"));
  rules.push_back({"/tmp", Access::kReadWrite});

  const std::string proc = root + "/proc";
  FF_RETURN_IF_ERROR(MakeDirsAt(proc));
  if (::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    return Errno("cannot mount a new /proc at", proc);
  }
  for (const char* p : {"sys", "sysrq-trigger", "irq", "bus", "fs"}) {
    std::string path = proc + "/" + p;
    if (::access(path.c_str(), F_OK) != 0) continue;
    if (::mount(path.c_str(), path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) {
      return Errno("cannot bind", path);
    }
    FF_RETURN_IF_ERROR(SetAttr(path, ro | MOUNT_ATTR_NOEXEC, true));
  }
  rules.push_back({"/proc", Access::kRead});

  const std::string dev = root + "/dev";
  FF_RETURN_IF_ERROR(MakeDirsAt(dev));
  if (::mount("tmpfs", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") != 0) {
    return Errno("cannot mount tmpfs at", dev);
  }
  for (const char* d : {"null", "zero", "urandom"}) {
    std::string host = std::string("/dev/") + d;
    FF_RETURN_IF_ERROR(BindInto(host, dev + "/" + d, MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC));
    rules.push_back({host, std::string(d) == "urandom" ? Access::kRead : Access::kDevice});
  }
  const std::pair<const char*, const char*> links[] = {{"fd", "/proc/self/fd"},
                                                       {"stdin", "/proc/self/fd/0"},
                                                       {"stdout", "/proc/self/fd/1"},
                                                       {"stderr", "/proc/self/fd/2"}};
  for (const auto& [name, target] : links) {
    if (::symlink(target, (dev + "/" + name).c_str()) != 0)
      return Errno("cannot create", dev + "/" + name);
  }
  FF_RETURN_IF_ERROR(SetAttr(dev, MOUNT_ATTR_RDONLY, false));
  FF_RETURN_IF_ERROR(SetAttr(root, MOUNT_ATTR_RDONLY, false));

  // Into the new root; the old one is detached from this namespace.
  if (::chdir(root.c_str()) != 0) return Errno("cannot enter", root);
  if (::syscall(SYS_pivot_root, ".", ".") != 0) return Errno("pivot_root failed into", root);
  if (::umount2(".", MNT_DETACH) != 0) return Errno("cannot detach the old root", "/");
  if (::chdir("/") != 0) return Errno("cannot enter", "/");
  return rules;
}

}  // namespace ff::sandbox
