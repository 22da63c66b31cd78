// BlobStore: a content-addressed file store on local disk (the site's file
// service and a render server's host cache). A blob lives at
// <root>/<first two hex digits>/<sha256>; it appears there only after its
// bytes were verified against the digest, so a reader never sees a partial
// or corrupted blob.
// Thread-safety: all methods may be called concurrently; concurrent writers
// of the same blob race benignly (identical content, atomic rename).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "util/sha256.h"

namespace ff {

class BlobStore {
 public:
  // Creates <root> and <root>/tmp if missing, and removes from tmp/ the
  // half-written blobs of writers that are no longer alive.
  static Result<std::unique_ptr<BlobStore>> Open(const std::string& root);

  bool Has(const std::string& sha256) const;
  // Path of a blob (exists only if Has()).
  std::string PathOf(const std::string& sha256) const;

  // Streams one blob in. Commit() verifies size and digest, then publishes.
  class Writer {
   public:
    ~Writer();  // discards an uncommitted temp file
    Status Append(std::string_view data);
    Status Commit();

   private:
    friend class BlobStore;
    Writer(const BlobStore* store, std::string sha256, int64_t size, std::string tmp, int fd);
    const BlobStore* store_;
    std::string sha256_;
    int64_t size_;
    int64_t written_ = 0;
    std::string tmp_;
    int fd_;
    Sha256 hash_;
    bool done_ = false;
  };
  // `size` is the expected length; `sha256` must be a valid digest.
  Result<std::unique_ptr<Writer>> BeginWrite(const std::string& sha256, int64_t size) const;

  // Hashes the file at `path` and adds it (hard link or copy). Returns the digest.
  Result<std::string> Import(const std::string& path, int64_t* size = nullptr) const;

  // ---- Resumable partial blobs (the receiving end of a site link) ----
  //
  // A blob arriving in pieces over an unreliable link accumulates in
  // <root>/partial/<sha256>, which survives a broken transfer (and a
  // restart), so the sender resumes where the receiver stopped instead of
  // resending. The partial file is never visible as a blob: it is published
  // by CompletePartial only after its full size and SHA-256 check out.
  // REQUIRES: callers serialise the partial calls for one digest (the site
  // link service does, per digest); calls for different digests may run
  // concurrently.

  // Bytes held in the partial file of `sha256`; 0 if there is none.
  Result<int64_t> PartialSize(const std::string& sha256) const;
  // Appends `data` to the partial file of a blob of `size` bytes. `offset`
  // must equal PartialSize() (else FailedPrecondition naming both), and
  // offset + data.size() must not exceed `size`. The data is not synced:
  // call SyncPartial at the end of a stream.
  Status AppendPartial(const std::string& sha256, int64_t size, int64_t offset,
                       std::string_view data) const;
  // fsyncs the partial file (no-op when there is none).
  Status SyncPartial(const std::string& sha256) const;
  // Verifies the partial file holds exactly `size` bytes hashing to
  // `sha256`, syncs it and publishes it atomically as the blob. A short
  // file is FailedPrecondition and kept (the transfer can resume); a long
  // file or a digest mismatch deletes the partial file and is
  // InvalidArgument. A blob already present just drops the partial file.
  Status CompletePartial(const std::string& sha256, int64_t size) const;
  // Deletes the partial file of `sha256` if any.
  Status DiscardPartial(const std::string& sha256) const;
  std::string PartialPathOf(const std::string& sha256) const;

  const std::string& root() const { return root_; }

 private:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace ff
