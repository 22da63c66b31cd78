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

#include "core/status.h"
#include "util/sha256.h"

namespace ff {

class BlobStore {
 public:
  // Creates <root> and <root>/tmp if missing.
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

  const std::string& root() const { return root_; }

 private:
  explicit BlobStore(std::string root) : root_(std::move(root)) {}
  std::string root_;
};

}  // namespace ff
