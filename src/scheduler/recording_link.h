// RecordingLink: a RenderServerLink that keeps what the scheduler sends, for
// tests and fuzz targets that drive a Scheduler without a network. Messages
// reach a link only once their state change is durable (group commit), so
// readers may set `flush` (usually Scheduler::Flush) to wait for that
// first. `max_messages` bounds what is kept (a fuzz input must not grow it
// without limit); later messages are dropped.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>
#include <vector>

#include "rpc/protocol.h"
#include "scheduler/render_server_link.h"

namespace ff {

class RecordingLink final : public RenderServerLink {
 public:
  explicit RecordingLink(size_t max_messages = SIZE_MAX) : max_messages_(max_messages) {}

  std::function<void()> flush;

  void Send(const frameflow::v1::ScheduleServerMessage& msg) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (messages_.size() < max_messages_) messages_.push_back(msg);
  }
  void Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }

  std::vector<frameflow::v1::ScheduleServerMessage> Messages() const {
    if (flush) flush();
    std::lock_guard<std::mutex> lock(mu_);
    return messages_;
  }
  // Every assignment sent so far.
  std::vector<frameflow::v1::Assignment> Assignments() const {
    std::vector<frameflow::v1::Assignment> out;
    for (const auto& m : Messages()) {
      if (m.has_assign()) out.push_back(m.assign());
    }
    return out;
  }
  // Assignments sent since the previous call.
  std::vector<frameflow::v1::Assignment> TakeAssignments() {
    std::vector<frameflow::v1::Assignment> all = Assignments();
    std::vector<frameflow::v1::Assignment> out(all.begin() + static_cast<std::ptrdiff_t>(taken_),
                                               all.end());
    taken_ = all.size();
    return out;
  }
  // Every assignment kept, and forgets every message kept, in one step (a
  // bounded link then keeps recording).
  std::vector<frameflow::v1::Assignment> DrainAssignments() {
    if (flush) flush();
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<frameflow::v1::Assignment> out;
    for (const auto& m : messages_) {
      if (m.has_assign()) out.push_back(m.assign());
    }
    messages_.clear();
    taken_ = 0;
    return out;
  }
  std::vector<frameflow::v1::CancelChunk> Cancels() const {
    std::vector<frameflow::v1::CancelChunk> out;
    for (const auto& m : Messages()) {
      if (m.has_cancel()) out.push_back(m.cancel());
    }
    return out;
  }
  int RegisteredCount() const {
    int n = 0;
    for (const auto& m : Messages()) n += m.has_registered() ? 1 : 0;
    return n;
  }
  bool closed() const {
    if (flush) flush();
    std::lock_guard<std::mutex> lock(mu_);
    return closed_;
  }

 private:
  const size_t max_messages_;
  mutable std::mutex mu_;
  std::vector<frameflow::v1::ScheduleServerMessage> messages_;
  bool closed_ = false;
  size_t taken_ = 0;
};

}  // namespace ff
