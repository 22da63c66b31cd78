// How a render server paces its attempts to reach its schedule server.
//
// A killed schedule server is usually restarted at once and resumes from its
// database within a fraction of a second, so the first retry comes almost at
// once and later ones back off only to a short cap: a schedule server that
// comes back on the same address is found within one cap of listening. One
// that listens on port 0 comes back on a new address and writes it to its
// address file; a render server that reads its address from that file watches
// it while it waits, and retries the moment the file is rewritten.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace ff {

constexpr int64_t kReconnectFirstDelayMs = 50;
constexpr int64_t kReconnectMaxDelayMs = 1000;

// The wait before the next attempt after `failures` (>= 1) consecutive failed
// attempts: kReconnectFirstDelayMs, doubling, at most kReconnectMaxDelayMs.
int64_t ReconnectDelayMs(int failures);

// An identity of the current version of the file at `path` (inode, size,
// modification time); "" when there is none. A file replaced by rename, as
// WriteFileAtomic does, gets a new version on every write.
std::string FileVersion(const std::string& path);

// Sleeps up to `ms`, returning early when `*stop` becomes true or when the
// version of `watched_file` differs from `version` (checked every 20 ms).
// Returns true only in the last case. An empty `watched_file` is not watched.
bool WaitForRetry(int64_t ms, const std::atomic<bool>* stop, const std::string& watched_file,
                  const std::string& version);

}  // namespace ff
