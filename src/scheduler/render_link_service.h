// The schedule server's end of the render servers' streams
// (RenderServerLink.Connect): one call per render server, for as long as it
// is connected. Messages go to the Scheduler; the Scheduler's messages go
// out through a per-stream writer thread, so Scheduler never blocks on the
// network.
#pragma once

#include <atomic>

#include "rpc/services.h"
#include "scheduler/scheduler.h"

namespace ff {

class RenderLinkService final : public frameflow::v1::RenderServerLink::Service {
 public:
  explicit RenderLinkService(Scheduler* scheduler) : scheduler_(scheduler) {}

  // Makes every open stream return promptly.
  void Shutdown() { shutting_down_ = true; }

  grpc::Status Connect(grpc::ServerContext*,
                       grpc::ServerReaderWriter<frameflow::v1::ScheduleServerMessage,
                                                frameflow::v1::RenderServerMessage>*) override;

 private:
  Scheduler* scheduler_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace ff
