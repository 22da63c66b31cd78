#include "transfer/hot_folder.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/fs.h"

namespace ff {

namespace {

// Kick() adds 1 to the eventfd counter, Stop() adds kStopBit: one read
// tells the consumer both whether it was kicked and whether it must stop,
// so stopped_ is only ever touched by the consumer thread.
constexpr uint64_t kStopBit = uint64_t{1} << 40;

void AddToEventFd(int fd, uint64_t v) {
  for (;;) {
    ssize_t n = ::write(fd, &v, sizeof v);
    // EAGAIN: the counter is saturated, which already wakes the consumer.
    if (n >= 0 || errno != EINTR) return;
  }
}

}  // namespace

Result<std::unique_ptr<HotFolderWatcher>> HotFolderWatcher::Open(const std::string& dir,
                                                                 int64_t rescan_ms) {
  FF_RETURN_IF_ERROR(MakeDirs(dir));
  int in = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (in < 0) return ErrnoError("cannot create an inotify instance for", dir, errno);
  if (::inotify_add_watch(in, dir.c_str(), IN_MOVED_TO | IN_CREATE | IN_CLOSE_WRITE | IN_ONLYDIR) <
      0) {
    int err = errno;
    ::close(in);
    return ErrnoError("cannot watch", dir, err);
  }
  int ev = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (ev < 0) {
    int err = errno;
    ::close(in);
    return ErrnoError("cannot create an eventfd for", dir, err);
  }
  return std::unique_ptr<HotFolderWatcher>(
      new HotFolderWatcher(dir, in, ev, std::max<int64_t>(rescan_ms, 1)));
}

HotFolderWatcher::HotFolderWatcher(std::string dir, int inotify_fd, int event_fd, int64_t rescan_ms)
    : dir_(std::move(dir)), inotify_fd_(inotify_fd), event_fd_(event_fd), rescan_ms_(rescan_ms) {}

HotFolderWatcher::~HotFolderWatcher() {
  ::close(inotify_fd_);
  ::close(event_fd_);
}

bool HotFolderWatcher::Wait(int64_t timeout_ms) {
  if (stopped_) return false;
  int64_t wait = std::clamp<int64_t>(std::min(timeout_ms, rescan_ms_), 0, 1 << 30);
  struct pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {event_fd_, POLLIN, 0}};
  int n = ::poll(fds, 2, static_cast<int>(wait));
  if (n <= 0) return true;  // timeout (rescan) or EINTR: the caller looks anyway
  if (fds[0].revents & POLLIN) {
    // Drain: the events only say "look", the caller lists the folder. An
    // IN_Q_OVERFLOW is covered the same way.
    alignas(struct inotify_event) char buf[16384];
    while (::read(inotify_fd_, buf, sizeof buf) > 0) {
    }
  }
  if (fds[1].revents & POLLIN) {
    uint64_t v = 0;
    if (::read(event_fd_, &v, sizeof v) == sizeof v && v >= kStopBit) stopped_ = true;
  }
  return !stopped_;
}

void HotFolderWatcher::Kick() { AddToEventFd(event_fd_, 1); }

void HotFolderWatcher::Stop() { AddToEventFd(event_fd_, kStopBit); }

}  // namespace ff
