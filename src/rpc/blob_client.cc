#include "rpc/blob_client.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "rpc/grpc_status.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

Result<std::vector<std::string>> MissingBlobs(pb::ScheduleServer::Stub* stub,
                                              const std::vector<std::string>& sha256s) {
  pb::HaveBlobsRequest req;
  for (const auto& s : sha256s) req.add_sha256(s);
  pb::HaveBlobsResponse resp;
  grpc::ClientContext ctx;
  FF_RETURN_IF_ERROR(FromGrpc(stub->HaveBlobs(&ctx, req, &resp), "HaveBlobs"));
  return std::vector<std::string>(resp.missing().begin(), resp.missing().end());
}

Status UploadFileBlob(pb::ScheduleServer::Stub* stub, const std::string& path,
                      const std::string& sha256, int64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  grpc::ClientContext ctx;
  pb::BlobRef ref;
  auto writer = stub->UploadBlob(&ctx, &ref);
  std::string buf(kBlobChunkBytes, '\0');
  bool first = true;
  int64_t sent = 0;
  Status st;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      st = ErrnoError("cannot read", path, errno);
      break;
    }
    pb::BlobChunk chunk;
    if (first) {
      chunk.set_sha256(sha256);
      chunk.set_size(size);
    }
    chunk.set_data(buf.data(), static_cast<size_t>(n));
    if ((n > 0 || first) && !writer->Write(chunk)) break;  // server ended early
    first = false;
    sent += n;
    if (n == 0) break;
  }
  ::close(fd);
  writer->WritesDone();
  grpc::Status gs = writer->Finish();
  FF_RETURN_IF_ERROR(st);
  FF_RETURN_IF_ERROR(FromGrpc(gs, "UploadBlob").WithContext("uploading '" + path + "'"));
  if (sent != size) {
    return IoError("file '" + path + "' changed while it was uploaded");
  }
  return Status::Ok();
}

Status DownloadBlobToFile(pb::ScheduleServer::Stub* stub, const std::string& sha256,
                          const std::string& dest) {
  FF_RETURN_IF_ERROR(MakeDirs(DirName(dest)));
  // Unique per download: several slots may fetch the same blob at once.
  static std::atomic<uint64_t> counter{0};
  std::string tmp =
      dest + ".part." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp, errno);
  grpc::ClientContext ctx;
  pb::DownloadBlobRequest req;
  req.set_sha256(sha256);
  auto reader = stub->DownloadBlob(&ctx, req);
  pb::BlobChunk chunk;
  Sha256 hash;
  Status st;
  while (reader->Read(&chunk)) {
    const std::string& d = chunk.data();
    hash.Update(d.data(), d.size());
    size_t off = 0;
    while (off < d.size()) {
      ssize_t n = ::write(fd, d.data() + off, d.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        st = ErrnoError("cannot write", tmp, errno);
        break;
      }
      off += static_cast<size_t>(n);
    }
    if (!st.ok()) {
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status gs = reader->Finish();
  if (st.ok() && ::fsync(fd) != 0) st = ErrnoError("cannot sync", tmp, errno);
  ::close(fd);
  if (st.ok()) st = FromGrpc(gs, "DownloadBlob").WithContext("blob " + sha256);
  if (st.ok()) {
    std::string got = hash.Finish();
    if (got != sha256) {
      st = IoError("blob " + sha256 + " arrived corrupted (sha256 " + got + ")");
    }
  }
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  return RenameDurable(tmp, dest);
}

}  // namespace ff
