// A mutex, a scoped lock and a condition variable that carry clang's
// thread-safety attributes (base/thread_annotations.h), so that
// `FF_GUARDED_BY(mu_)` and `FF_REQUIRES(mu_)` are checked at compile time.
// They are thin wrappers over std::mutex / std::condition_variable: no cost
// beyond the standard types.
//
// Condition waits are written as loops (`while (!ready_) cv_.Wait(lock);`):
// the analysis sees the guarded reads inside the locked scope, which it
// cannot do for a predicate lambda.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>

#include "base/thread_annotations.h"

namespace ff {

class FF_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() FF_ACQUIRE() { mu_.lock(); }
  void Unlock() FF_RELEASE() { mu_.unlock(); }
  // Tells the analysis the caller holds the mutex (where it cannot see it,
  // e.g. in a callback run under the lock). Checks nothing at run time.
  void AssertHeld() const FF_ASSERT_CAPABILITY(this) {}

 private:
  friend class MutexLock;
  std::mutex mu_;
};

// Holds `mu` for its scope; Unlock()/Lock() release and retake it inside.
class FF_SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) FF_ACQUIRE(mu) : lock_(mu->mu_) {}
  ~MutexLock() FF_RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void Unlock() FF_RELEASE() { lock_.unlock(); }
  void Lock() FF_ACQUIRE() { lock_.lock(); }

 private:
  friend class CondVar;
  std::unique_lock<std::mutex> lock_;
};

class CondVar {
 public:
  // Atomically releases the lock, waits for a signal (or a spurious wake-up)
  // and retakes it. REQUIRES: `lock` holds its mutex.
  void Wait(MutexLock& lock) { cv_.wait(lock.lock_); }
  // As Wait(), for at most `ms` milliseconds; false when the time ran out.
  bool WaitForMillis(MutexLock& lock, int64_t ms) {
    return cv_.wait_for(lock.lock_, std::chrono::milliseconds(ms)) == std::cv_status::no_timeout;
  }
  template <class TimePoint>
  bool WaitUntil(MutexLock& lock, const TimePoint& deadline) {
    return cv_.wait_until(lock.lock_, deadline) == std::cv_status::no_timeout;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace ff
