// Time behind an interface so tests can drive it (see FakeClock).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace ff {

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic milliseconds; only differences are meaningful.
  virtual int64_t MonotonicMillis() const = 0;
  // Wall-clock milliseconds since the Unix epoch (for records shown to users).
  virtual int64_t UnixMillis() const = 0;
};

class SystemClock final : public Clock {
 public:
  int64_t MonotonicMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t UnixMillis() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  static SystemClock* Default() {
    static SystemClock clock;
    return &clock;
  }
};

// Thread-safe manual clock for tests.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t start_ms = 1'000'000) : now_(start_ms) {}
  int64_t MonotonicMillis() const override { return now_.load(); }
  int64_t UnixMillis() const override { return 1'700'000'000'000 + now_.load(); }
  void Advance(int64_t ms) { now_ += ms; }

 private:
  std::atomic<int64_t> now_;
};

}  // namespace ff
