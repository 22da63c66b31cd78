// Collects a run's output after the sandbox is gone: every regular file
// beneath the output area is copied to the secure location, keeping its
// relative path. Nothing is followed: each name is opened beneath its
// directory with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV). Symlinks, FIFOs, sockets,
// devices and files with more than one link are refused and listed, never
// copied; so is anything on another filesystem.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff::sandbox {

struct CollectedFile {
  std::string path;  // relative to the output area
  int64_t size = 0;
};

struct RefusedFile {
  std::string path;
  std::string why;  // "symlink", "fifo", "socket", "device", "hard link", ...
};

struct Collection {
  std::vector<CollectedFile> collected;
  std::vector<RefusedFile> refused;
};

// A file name as it may be shown in a log line: bytes below 0x20, 0x7f and
// backslash escaped as \xNN, so a name cannot forge lines.
std::string PrintableName(const std::string& name);

// Copies from the directory `source_fd` (the output tmpfs) into `dest_dir`
// (created when missing, mode 0700; existing files are replaced).
Result<Collection> CollectOutputs(int source_fd, const std::string& dest_dir);

}  // namespace ff::sandbox
