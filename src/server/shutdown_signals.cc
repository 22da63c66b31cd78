#include "server/shutdown_signals.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ff {

static_assert(sizeof(sigset_t) <= 128, "old_mask_ must hold a sigset_t");

Result<std::unique_ptr<ShutdownSignals>> ShutdownSignals::Install() {
  std::unique_ptr<ShutdownSignals> s(new ShutdownSignals());
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigset_t old;
  if (int err = ::pthread_sigmask(SIG_BLOCK, &set, &old); err != 0) {
    return ErrnoError("cannot block", "SIGINT and SIGTERM", err);
  }
  std::memcpy(s->old_mask_, &old, sizeof old);
  s->restore_ = true;
  s->fd_.Reset(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!s->fd_.valid()) return ErrnoError("cannot create", "signalfd", errno);
  s->wake_.Reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!s->wake_.valid()) return ErrnoError("cannot create", "eventfd", errno);
  ::signal(SIGPIPE, SIG_IGN);
  return s;
}

ShutdownSignals::~ShutdownSignals() {
  if (!restore_) return;
  sigset_t old;
  std::memcpy(&old, old_mask_, sizeof old);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

int ShutdownSignals::Wait(int64_t timeout_ms) {
  struct pollfd p[2] = {{fd_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
  for (;;) {
    const int timeout =
        timeout_ms < 0 ? -1 : static_cast<int>(std::min<int64_t>(timeout_ms, 1 << 30));
    int n = ::poll(p, 2, timeout);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || (p[1].revents & POLLIN)) return 0;
    struct signalfd_siginfo info {};
    ssize_t r = ::read(fd_.get(), &info, sizeof info);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r != static_cast<ssize_t>(sizeof info)) return 0;
    return static_cast<int>(info.ssi_signo);
  }
}

void ShutdownSignals::Interrupt() {
  const uint64_t one = 1;
  ssize_t n = ::write(wake_.get(), &one, sizeof one);
  (void)n;  // the counter is already non-zero when this fails (EAGAIN)
}

}  // namespace ff
