// ShutdownSignals: the one way a frameflow daemon learns it should stop.
// SIGINT and SIGTERM are blocked in every thread and read from a signalfd,
// so no handler runs at an arbitrary point, no thread polls a flag on a
// timer, and each daemon decides what each signal means (the render server
// drains on the first SIGTERM; the schedule server stops on either).
//
// Install() must run in main() before any thread starts: threads inherit
// the blocked mask. Processes the daemon launches get an empty mask and
// default handlers (util/process.cc), so renderers still die of SIGTERM.
#pragma once

#include <cstdint>
#include <memory>

#include "base/status.h"
#include "base/unique_fd.h"

namespace ff {

class ShutdownSignals {
 public:
  // Blocks SIGINT and SIGTERM in the calling thread and opens the signalfd;
  // SIGPIPE is ignored (a closed socket is an error value, not a death).
  static Result<std::unique_ptr<ShutdownSignals>> Install();
  // Restores the signal mask of the calling thread.
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;

  // Waits for the next SIGINT or SIGTERM and returns its number; 0 when
  // `timeout_ms` (>= 0) passed first. Thread-safe: one waiter at a time.
  int Wait(int64_t timeout_ms = -1);
  // Makes the current (or next) Wait() return 0: for the thread that waits
  // on behalf of a daemon that ended for another reason. Thread-safe.
  void Interrupt();

 private:
  ShutdownSignals() = default;
  UniqueFd fd_;    // the signalfd
  UniqueFd wake_;  // an eventfd, for Interrupt()
  bool restore_ = false;
  unsigned char old_mask_[128] = {};  // sigset_t, kept opaque here
};

}  // namespace ff
