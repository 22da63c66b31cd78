#include "scheduler/render_link_service.h"

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "rpc/grpc_status.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

// Outgoing half of one render server stream: a queue drained by a writer
// thread, so Scheduler::Send never blocks on the network and messages keep
// their order.
class GrpcLink final : public RenderServerLink {
 public:
  explicit GrpcLink(grpc::ServerReaderWriter<pb::ScheduleServerMessage, pb::RenderServerMessage>* s,
                    grpc::ServerContext* ctx)
      : stream_(s), ctx_(ctx) {
    writer_ = std::thread([this] { WriteLoop(); });
  }
  ~GrpcLink() override { Stop(); }

  void Send(const pb::ScheduleServerMessage& msg) override {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    queue_.push_back(msg);
    cv_.notify_one();
  }

  void Close() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (!closed_) ctx_->TryCancel();
    closed_ = true;
    cv_.notify_one();
  }

  // Stops the writer; REQUIRES: called before the stream is destroyed.
  void Stop() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopped_ = true;
      cv_.notify_one();
    }
    if (writer_.joinable()) writer_.join();
  }

 private:
  void WriteLoop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      cv_.wait(lock, [&] { return stopped_ || closed_ || !queue_.empty(); });
      if (stopped_ || closed_) return;
      pb::ScheduleServerMessage msg = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      bool ok = stream_->Write(msg);
      lock.lock();
      if (!ok) return;
    }
  }

  grpc::ServerReaderWriter<pb::ScheduleServerMessage, pb::RenderServerMessage>* stream_;
  grpc::ServerContext* ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<pb::ScheduleServerMessage> queue_;
  bool closed_ = false;
  bool stopped_ = false;
  std::thread writer_;
};

}  // namespace

grpc::Status RenderLinkService::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<pb::ScheduleServerMessage, pb::RenderServerMessage>* stream) {
  pb::RenderServerMessage msg;
  if (!stream->Read(&msg) || !msg.has_register_()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "connect: the first message must be register");
  }
  auto link = std::make_shared<GrpcLink>(stream, ctx);
  const std::string name = msg.register_().render_server();
  Status st = scheduler_->Register(msg.register_(), link);
  if (!st.ok()) {
    link->Stop();
    return ToGrpc(st);
  }
  while (!shutting_down_ && stream->Read(&msg)) {
    switch (msg.msg_case()) {
      case pb::RenderServerMessage::kHeartbeat:
        scheduler_->OnHeartbeat(name);
        break;
      case pb::RenderServerMessage::kProgress:
        scheduler_->OnHeartbeat(name);
        scheduler_->OnProgress(name, msg.progress());
        break;
      case pb::RenderServerMessage::kResult:
        scheduler_->OnResult(name, msg.result());
        break;
      case pb::RenderServerMessage::kDrain:
        scheduler_->OnDrain(name, msg.drain());
        break;
      case pb::RenderServerMessage::kRegister:
        spdlog::warn("render server '{}' sent register twice on one stream; ignored", name);
        break;
      default:
        break;
    }
  }
  scheduler_->OnDisconnect(name, link.get());
  link->Stop();
  return grpc::Status::OK;
}

}  // namespace ff
