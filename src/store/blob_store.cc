#include "store/blob_store.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <string>

#include "util/fs.h"

namespace ff {

namespace {
std::atomic<uint64_t> g_tmp_counter{0};
}

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& root) {
  const std::string tmp = JoinPath(root, "tmp");
  FF_RETURN_IF_ERROR(MakeDirs(tmp));
  // Half-written blobs of writers that died (their temp name carries their
  // pid): a process that is gone will never finish them.
  auto names = ListDir(tmp);
  if (names.ok()) {
    for (const auto& name : *names) {
      const size_t last = name.rfind('.');
      const size_t pid_at =
          last == std::string::npos || last == 0 ? std::string::npos : name.rfind('.', last - 1);
      if (pid_at == std::string::npos) continue;
      const std::string pid_text = name.substr(pid_at + 1, last - pid_at - 1);
      if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos ||
          pid_text.size() > 9) {
        continue;
      }
      const pid_t pid = static_cast<pid_t>(std::stol(pid_text));
      if (pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH) {
        (void)::unlink(JoinPath(tmp, name).c_str());
      }
    }
  }
  return std::unique_ptr<BlobStore>(new BlobStore(root));
}

std::string BlobStore::PathOf(const std::string& sha256) const {
  return root_ + "/" + sha256.substr(0, 2) + "/" + sha256;
}

bool BlobStore::Has(const std::string& sha256) const {
  if (!IsSha256Hex(sha256)) return false;
  struct stat st;
  return ::stat(PathOf(sha256).c_str(), &st) == 0;
}

Result<std::unique_ptr<BlobStore::Writer>> BlobStore::BeginWrite(const std::string& sha256,
                                                                 int64_t size) const {
  if (!IsSha256Hex(sha256)) {
    return InvalidArgument("sha256: '" + sha256 + "' is not a lower-case hex SHA-256 digest");
  }
  if (size < 0) return InvalidArgument("size: must not be negative");
  std::string tmp = root_ + "/tmp/" + sha256 + "." + std::to_string(::getpid()) + "." +
                    std::to_string(g_tmp_counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp, errno);
  return std::unique_ptr<Writer>(new Writer(this, sha256, size, tmp, fd));
}

BlobStore::Writer::Writer(const BlobStore* store, std::string sha256, int64_t size, std::string tmp,
                          int fd)
    : store_(store), sha256_(std::move(sha256)), size_(size), tmp_(std::move(tmp)), fd_(fd) {}

BlobStore::Writer::~Writer() {
  if (fd_ >= 0) ::close(fd_);
  if (!done_) ::unlink(tmp_.c_str());
}

Status BlobStore::Writer::Append(std::string_view data) {
  if (written_ + static_cast<int64_t>(data.size()) > size_) {
    return InvalidArgument("blob " + sha256_ + " is longer than its declared size " +
                           std::to_string(size_));
  }
  hash_.Update(data.data(), data.size());
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot write", tmp_, errno);
    }
    off += static_cast<size_t>(n);
  }
  written_ += static_cast<int64_t>(data.size());
  return Status::Ok();
}

Status BlobStore::Writer::Commit() {
  if (written_ != size_) {
    return InvalidArgument("blob " + sha256_ + " is truncated: got " + std::to_string(written_) +
                           " of " + std::to_string(size_) + " bytes");
  }
  std::string got = hash_.Finish();
  if (got != sha256_) {
    return InvalidArgument("blob content does not match its sha256 " + sha256_ + " (got " + got +
                           ")");
  }
  if (::fsync(fd_) != 0) return ErrnoError("cannot sync", tmp_, errno);
  ::close(fd_);
  fd_ = -1;
  std::string dest = store_->PathOf(sha256_);
  FF_RETURN_IF_ERROR(MakeDirs(DirName(dest)));
  FF_RETURN_IF_ERROR(RenameDurable(tmp_, dest));
  done_ = true;
  return Status::Ok();
}

Result<std::string> BlobStore::Import(const std::string& path, int64_t* size) const {
  int64_t len = 0;
  FF_ASSIGN_OR_RETURN(std::string sha, Sha256File(path, &len));
  if (size) *size = len;
  if (Has(sha)) return sha;
  std::string dest = PathOf(sha);
  FF_RETURN_IF_ERROR(MakeDirs(DirName(dest)));
  FF_RETURN_IF_ERROR(LinkOrCopy(path, dest));
  return sha;
}

std::string BlobStore::PartialPathOf(const std::string& sha256) const {
  return root_ + "/partial/" + sha256;
}

namespace {

Status CheckDigest(const std::string& sha256) {
  if (!IsSha256Hex(sha256)) {
    return InvalidArgument("sha256: '" + sha256 + "' is not a lower-case hex SHA-256 digest");
  }
  return Status::Ok();
}

class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

Result<int64_t> BlobStore::PartialSize(const std::string& sha256) const {
  FF_RETURN_IF_ERROR(CheckDigest(sha256));
  struct stat st;
  const std::string path = PartialPathOf(sha256);
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return int64_t{0};
    return ErrnoError("cannot stat", path, errno);
  }
  if (!S_ISREG(st.st_mode)) return IoError(path + ": not a regular file");
  return static_cast<int64_t>(st.st_size);
}

Status BlobStore::AppendPartial(const std::string& sha256, int64_t size, int64_t offset,
                                std::string_view data) const {
  FF_RETURN_IF_ERROR(CheckDigest(sha256));
  if (size < 0) return InvalidArgument("size: must not be negative");
  const std::string path = PartialPathOf(sha256);
  FF_RETURN_IF_ERROR(MakeDirs(DirName(path)));
  FdGuard fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644));
  if (fd.get() < 0) return ErrnoError("cannot open", path, errno);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("cannot stat", path, errno);
  if (offset != st.st_size) {
    return FailedPrecondition("blob " + sha256 + ": write at offset " + std::to_string(offset) +
                              " but the receiver holds " + std::to_string(st.st_size) +
                              " bytes of it");
  }
  if (offset + static_cast<int64_t>(data.size()) > size) {
    return InvalidArgument("blob " + sha256 + ": " + std::to_string(offset + data.size()) +
                           " bytes is longer than its declared size " + std::to_string(size));
  }
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      // Cut back to what was held, so the next offset check stays exact.
      (void)::ftruncate(fd.get(), static_cast<off_t>(offset));
      return ErrnoError("cannot write", path, err);
    }
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status BlobStore::SyncPartial(const std::string& sha256) const {
  FF_RETURN_IF_ERROR(CheckDigest(sha256));
  const std::string path = PartialPathOf(sha256);
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return Status::Ok();
    return ErrnoError("cannot open", path, errno);
  }
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot sync", path, errno);
  // The first append created the file: make its name durable too.
  return SyncDir(DirName(path));
}

Status BlobStore::CompletePartial(const std::string& sha256, int64_t size) const {
  FF_RETURN_IF_ERROR(CheckDigest(sha256));
  const std::string path = PartialPathOf(sha256);
  if (Has(sha256)) return DiscardPartial(sha256);
  FdGuard fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (fd.get() < 0) {
    if (errno == ENOENT) return NotFound("blob " + sha256 + ": no partial file to complete");
    return ErrnoError("cannot open", path, errno);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return ErrnoError("cannot stat", path, errno);
  if (st.st_size < size) {
    return FailedPrecondition("blob " + sha256 + " is incomplete: " + std::to_string(st.st_size) +
                              " of " + std::to_string(size) + " bytes received");
  }
  if (st.st_size > size) {
    (void)DiscardPartial(sha256);
    return InvalidArgument("blob " + sha256 + ": received " + std::to_string(st.st_size) +
                           " bytes but its size is " + std::to_string(size) + "; discarded");
  }
  Sha256 hash;
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("cannot read", path, errno);
    }
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
  }
  std::string got = hash.Finish();
  if (got != sha256) {
    (void)DiscardPartial(sha256);
    return InvalidArgument("blob content does not match its sha256 " + sha256 + " (got " + got +
                           "); the received bytes were discarded");
  }
  if (::fsync(fd.get()) != 0) return ErrnoError("cannot sync", path, errno);
  std::string dest = PathOf(sha256);
  FF_RETURN_IF_ERROR(MakeDirs(DirName(dest)));
  return RenameDurable(path, dest);
}

Status BlobStore::DiscardPartial(const std::string& sha256) const {
  FF_RETURN_IF_ERROR(CheckDigest(sha256));
  const std::string path = PartialPathOf(sha256);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return ErrnoError("cannot remove", path, errno);
  }
  return Status::Ok();
}

}  // namespace ff
