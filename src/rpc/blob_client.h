// Client side of the content-addressed file service (HaveBlobs, UploadBlob,
// DownloadBlob). Every transfer is verified against its SHA-256.
// Thread-safety: free functions; the stub may be shared between threads.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "rpc/services.h"

namespace ff {

inline constexpr size_t kBlobChunkBytes = 256 * 1024;
// A chunk log up to this size travels inside ChunkResult.log_text instead of
// as an uploaded blob (one RPC less per chunk).
inline constexpr size_t kInlineLogBytes = 64 * 1024;

// Returns the subset of `sha256s` the server lacks.
Result<std::vector<std::string>> MissingBlobs(frameflow::v1::ScheduleServer::Stub* stub,
                                              const std::vector<std::string>& sha256s);

// Uploads the file at `path` whose digest is `sha256` and length `size`.
Status UploadFileBlob(frameflow::v1::ScheduleServer::Stub* stub, const std::string& path,
                      const std::string& sha256, int64_t size);

// Downloads blob `sha256` into `dest` atomically (temp file + rename) and
// verifies its digest; a mismatch leaves nothing at `dest`.
Status DownloadBlobToFile(frameflow::v1::ScheduleServer::Stub* stub, const std::string& sha256,
                          const std::string& dest);

}  // namespace ff
