// HotFolderWatcher: wakes a consumer when packages may have arrived in a
// hot folder. It uses inotify (IN_MOVED_TO, IN_CREATE, IN_CLOSE_WRITE) and,
// as a safety net for events inotify cannot see (network filesystems, an
// overflowing event queue), a periodic rescan.
//
// Thread-safety: Wait() is called by one consumer thread; Kick() and Stop()
// from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/status.h"

namespace ff {

class HotFolderWatcher {
 public:
  // Creates `dir` if missing and starts watching it.
  static Result<std::unique_ptr<HotFolderWatcher>> Open(const std::string& dir,
                                                        int64_t rescan_ms = 2000);
  ~HotFolderWatcher();

  // Blocks until something changed in the folder, Kick() was called,
  // `timeout_ms` (or the rescan period, whichever is shorter) passed, or
  // Stop() was called. Returns false once stopped.
  bool Wait(int64_t timeout_ms);
  void Kick();
  void Stop();
  const std::string& dir() const { return dir_; }

 private:
  HotFolderWatcher(std::string dir, int inotify_fd, int event_fd, int64_t rescan_ms);
  std::string dir_;
  int inotify_fd_;
  int event_fd_;  // eventfd for Kick/Stop
  int64_t rescan_ms_;
  bool stopped_ = false;  // only read/written with the eventfd protocol
};

}  // namespace ff
