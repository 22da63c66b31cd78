#include "transfer/blob_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "util/fs.h"

namespace ff {

namespace {
std::atomic<uint64_t> g_tmp_counter{0};
}

Result<std::unique_ptr<BlobStore>> BlobStore::Open(const std::string& root) {
  FF_RETURN_IF_ERROR(MakeDirs(JoinPath(root, "tmp")));
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

}  // namespace ff
