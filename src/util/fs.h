// Small filesystem helpers with errors as values. Every error names the path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ff {

// mkdir -p with the given mode for directories it creates.
Status MakeDirs(const std::string& path, int mode = 0755);
Result<std::string> ReadFile(const std::string& path);
// Writes `data` to path atomically: a temp file in the same directory,
// fsync, rename over `path`, fsync of the directory. Readers see the old
// content or the new, never a mix.
Status WriteFileAtomic(const std::string& path, std::string_view data, int mode = 0644);
// Moves `from` into place at `to` atomically (rename), syncing the
// destination directory. Both must be on one filesystem.
Status RenameDurable(const std::string& from, const std::string& to);
// fsync of a directory: makes renames and links inside it durable.
Status SyncDir(const std::string& dir);
// Whether a call that renames into a directory also fsyncs the directory
// (kNow), or leaves that to the caller, who batches one SyncDir per
// directory for many renames (kByCaller) before relying on durability.
enum class DirSync { kNow, kByCaller };
// Hard-links `from` to `to` (replacing `to` atomically via a temp name);
// falls back to a copy when linking is not possible (EXDEV, EPERM), which
// is always fully synced.
Status LinkOrCopy(const std::string& from, const std::string& to, DirSync dir_sync = DirSync::kNow);
Status RemoveAll(const std::string& path);
// Removes everything inside the directory `dir`, keeping `dir` itself
// (cheaper than removing and recreating it: on ext4 with `discard` an rmdir
// frees a block synchronously).
Status RemoveContents(const std::string& dir);
bool PathExists(const std::string& path);
// Whether `name` is one of the temporary names the helpers above write
// before their rename (".<name>.tmp-…", ".<name>.copy-…", ".<name>.link-…"):
// left behind only by a process killed mid-write.
bool IsTempName(std::string_view name);
// Removes every temporary file (IsTempName) under `dir`, recursively;
// returns how many. For a process that takes over a directory after a crash:
// REQUIRES: nothing else writes under `dir` meanwhile.
Result<int> RemoveTempFiles(const std::string& dir);
// Bytes an unprivileged writer may still write to the filesystem holding
// `path` (statvfs f_bavail * f_frsize).
Result<int64_t> FreeBytes(const std::string& path);
// Entries of a directory (names only, no "." / ".."), sorted.
Result<std::vector<std::string>> ListDir(const std::string& path);
std::string JoinPath(std::string_view a, std::string_view b);
std::string DirName(const std::string& path);
std::string BaseName(const std::string& path);
// Claims the daemon root `dir` for this process: an exclusive flock(2) on
// `dir`/frameflow.lock, which records the owner ("<what> pid N"). Held until
// the returned descriptor is closed (or the process dies: the kernel drops
// it, so a kill -9 leaves no stale lock). A second claim — by another process
// or another open in this one — fails with kFailedPrecondition naming the
// root and the owner. Take it before anything else touches the root.
Result<UniqueFd> LockRoot(const std::string& dir, const std::string& what);
// A fresh directory under $TMPDIR (or /tmp) named prefix-XXXXXX.
Result<std::string> MakeTempDir(const std::string& prefix);

}  // namespace ff
