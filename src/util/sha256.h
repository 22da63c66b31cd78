// SHA-256 over bytes and files (OpenSSL EVP). Digests are lower-case hex.
// Thread-safety: Sha256 objects are not shared; free functions are reentrant.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ff {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t len);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  // Returns the hex digest; the object must not be used afterwards.
  std::string Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

std::string Sha256Hex(std::string_view data);
// Hashes a whole file; size receives its length when not null.
Result<std::string> Sha256File(const std::string& path, int64_t* size = nullptr);
// True for 64 lower-case hex characters.
bool IsSha256Hex(std::string_view s);

}  // namespace ff
