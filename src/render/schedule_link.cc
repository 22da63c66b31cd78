// The render server's side of its schedule server (RenderServer::Run and
// the stream it keeps): register, reconnect with backoff, heartbeats, the
// queue of results not yet confirmed, drain and hand-back, and the calls
// to the schedule server's file service.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "render/reconnect.h"
#include "render/render_server.h"
#include "rpc/blob_client.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

constexpr int64_t kUnconfirmedKeepMs = 60'000;
constexpr int kHandshakeTimeoutMs = 10'000;  // register -> registered
// After a refusal because another live render server uses the same name.
constexpr int64_t kRefusedRetryDelayMs = 2'000;
// How long file transfers wait for a schedule server that is away.
constexpr int64_t kScheduleServerWaitMs = 120'000;
// A schedule server that hangs, or whose host vanishes, closes no connection:
// without pings the stream would wait forever (hung) or for TCP's ~15 min of
// retransmissions (host gone). The peer's gRPC transport answers the pings,
// so a schedule server merely busy dispatching still does.
constexpr int kKeepaliveTimeMs = 2000;
constexpr int kKeepaliveTimeoutMs = 5000;

void AddHeld(const pb::Assignment& a, const std::string& slot, pb::Drain* d) {
  auto* r = d->add_returned();
  r->set_job_id(a.job_id());
  r->set_chunk(a.chunk());
  r->set_attempt(a.attempt());
  r->set_slot(slot);
}

}  // namespace

std::string RenderServer::ResolveAddress() {
  if (!config_.schedule_server_file.empty()) {
    auto text = ReadFile(config_.schedule_server_file);
    if (text.ok()) {
      std::string a = *text;
      while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
      if (!a.empty()) return a;
    }
  }
  return config_.schedule_server;
}

pb::Register RenderServer::MakeRegister() {
  pb::Register reg;
  reg.set_render_server(config_.name);
  reg.set_host(hardware_.name);
  reg.set_instance(instance_);
  auto* hw = reg.mutable_hardware();
  hw->set_cpu_model(hardware_.cpu_model);
  hw->set_cores(hardware_.cores);
  hw->set_memory_bytes(hardware_.memory_bytes);
  for (const auto& g : hardware_.gpus) hw->add_gpus(g);
  hw->set_os(hardware_.os);
  for (const auto& p : packages_) {
    auto* pk = reg.add_packages();
    pk->set_name(p.name);
    pk->set_version(p.version);
    pk->set_executable(p.executable);
    pk->set_kind(p.kind);
  }
  MutexLock lock(&mu_);
  for (const auto& w : slots_) {
    auto* s = reg.add_slots();
    s->set_name(w->config.name);
    s->set_cores(w->config.cores);
    s->set_memory_bytes(w->config.memory_bytes);
    s->set_gpus(w->config.gpus);
    std::vector<const pb::Assignment*> held;
    if (w->current) held.push_back(&*w->current);
    for (const auto& a : w->next) held.push_back(&a);
    for (const pb::Assignment* a : held) {
      auto* r = reg.add_running();
      r->set_job_id(a->job_id());
      r->set_chunk(a->chunk());
      r->set_attempt(a->attempt());
      r->set_slot(w->id);
    }
  }
  // Results that may not have arrived are still "running" from the schedule
  // server's point of view; they are re-sent right after registering.
  for (const auto& [t, res] : unconfirmed_) {
    auto* r = reg.add_running();
    r->set_job_id(res.job_id());
    r->set_chunk(res.chunk());
    r->set_attempt(res.attempt());
  }
  return reg;
}

bool RenderServer::Send(const pb::RenderServerMessage& msg) {
  MutexLock lock(&stream_mu_);
  if (!stream_) return false;
  return stream_->Write(msg);
}

void RenderServer::DeliverResult(const pb::ChunkResult& r) {
  {
    MutexLock lock(&mu_);
    const int64_t now = clock_->MonotonicMillis();
    bool connected;
    {
      MutexLock stream_lock(&stream_mu_);
      connected = stream_ != nullptr;
    }
    // While connected, results sent long ago have arrived (the stream is
    // ordered); while disconnected nothing is dropped.
    while (connected && !unconfirmed_.empty() &&
           now - unconfirmed_.front().first > kUnconfirmedKeepMs) {
      unconfirmed_.pop_front();
    }
    unconfirmed_.emplace_back(now, r);
  }
  pb::RenderServerMessage msg;
  *msg.mutable_result() = r;
  if (!Send(msg)) {
    {
      MutexLock lock(&mu_);
      undelivered_ = true;
    }
    spdlog::warn("result of job {} chunk {} kept until the schedule server is back", r.job_id(),
                 r.chunk());
  }
}

void RenderServer::BeginDrain() {
  pb::RenderServerMessage msg;
  int running = 0;
  {
    MutexLock lock(&mu_);
    draining_ = true;
    for (auto& w : slots_) {
      for (const auto& a : w->next) AddHeld(a, w->id, msg.mutable_drain());
      w->next.clear();
      if (w->current) ++running;
    }
  }
  msg.mutable_drain()->set_reason("stopping (SIGTERM): running chunks finish, no new ones");
  spdlog::info("draining: {} running chunk(s) finish (at most {} s), {} waiting handed back",
               running, config_.drain_timeout_ms / 1000, msg.drain().returned_size());
  // Without a stream the waiting ones are simply not listed at the next
  // registration; the Drain is repeated then (Run).
  Send(msg);
}

void RenderServer::HandBackAll(const std::string& reason) {
  pb::RenderServerMessage msg;
  {
    MutexLock lock(&mu_);
    for (auto& w : slots_) {
      if (w->current) AddHeld(*w->current, w->id, msg.mutable_drain());
      for (const auto& a : w->next) AddHeld(a, w->id, msg.mutable_drain());
    }
  }
  if (msg.drain().returned_size() == 0) return;
  msg.mutable_drain()->set_reason(reason);
  if (Send(msg)) {
    spdlog::info("handed back {} chunk(s): {}", msg.drain().returned_size(), reason);
  }
}

bool RenderServer::WaitDrained(const std::atomic<bool>* stop) {
  const int64_t deadline = clock_->MonotonicMillis() + config_.drain_timeout_ms;
  while (!stop->load()) {
    {
      MutexLock lock(&mu_);
      bool busy = undelivered_;
      for (const auto& w : slots_) busy = busy || w->current || !w->next.empty();
      if (!busy) return true;
    }
    if (clock_->MonotonicMillis() >= deadline) {
      spdlog::warn("drain timeout ({} s) passed with chunks still running",
                   config_.drain_timeout_ms / 1000);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

Status RenderServer::Run(const std::atomic<bool>* stop, const std::atomic<bool>* drain) {
  const std::string& address_file = config_.schedule_server_file;
  int failures = 0;               // consecutive failed attempts to register
  int refusals = 0;               // consecutive registrations refused: the name is in use
  Status fatal;                   // a refusal retrying cannot cure: Run ends with it
  std::atomic<bool> quit{false};  // set with `fatal`
  bool waiting_logged = false;    // for the address file, since it was last read
  // Signal handlers cannot notify: the drain request is looked for every 20 ms.
  std::thread drain_watch([&] {
    if (!drain) return;
    while (!stop->load() && !drain->load() && !quit.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stop->load() || quit.load()) return;
    BeginDrain();
    if (WaitDrained(stop)) spdlog::info("drained: every chunk finished and was reported");
    drained_ = true;
  });
  auto ending = [&] { return stop->load() || drained_.load(); };
  while (!ending()) {
    // Taken before the file is read: a rewrite after this ends the wait below.
    const std::string address_version = FileVersion(address_file);
    std::string address = ResolveAddress();
    if (address.empty()) {
      if (address_file.empty()) {
        return InvalidArgument(
            "no schedule server address: set schedule_server or "
            "schedule_server_file in the render server config");
      }
      // The schedule server is (re)starting and has not written its address
      // yet: keep rendering and look again as soon as the file appears.
      if (!waiting_logged) {
        spdlog::info("waiting for the schedule server's address in {} (schedule_server_file)",
                     address_file);
        waiting_logged = true;
      }
      WaitForRetry(kReconnectMaxDelayMs, stop, address_file, address_version);
      continue;
    }
    waiting_logged = false;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    auto stub = std::shared_ptr<pb::ScheduleServer::Stub>(pb::ScheduleServer::NewStub(channel));
    auto link_stub = pb::RenderServerLink::NewStub(channel);
    grpc::ClientContext ctx;
    auto stream = link_stub->Connect(&ctx);
    pb::RenderServerMessage hello;
    *hello.mutable_register_() = MakeRegister();
    pb::ScheduleServerMessage in;
    // The handshake is bounded: a schedule server that accepts but never
    // answers (or a stop request) cancels it instead of blocking forever.
    // The guard is woken when the handshake ends, so it never delays it.
    std::mutex handshake_mu;
    std::condition_variable handshake_cv;
    bool handshake_done = false;       // GUARDED_BY(handshake_mu)
    bool handshake_cancelled = false;  // GUARDED_BY(handshake_mu)
    std::thread handshake_guard([&] {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(kHandshakeTimeoutMs);
      std::unique_lock<std::mutex> lock(handshake_mu);
      // `stop` is set from a signal handler, which cannot notify: look every 20 ms.
      while (!handshake_done && !stop->load() && std::chrono::steady_clock::now() < deadline) {
        handshake_cv.wait_for(lock, std::chrono::milliseconds(20));
      }
      if (!handshake_done) {
        handshake_cancelled = true;
        ctx.TryCancel();
      }
    });
    const bool wrote = stream->Write(hello);
    // A failed Write means the stream ended; Read then returns false as well.
    const bool got_reply = stream->Read(&in);
    const bool registered = wrote && got_reply && in.has_registered();
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(handshake_mu);
      handshake_done = true;
      cancelled = handshake_cancelled;
    }
    handshake_cv.notify_all();
    handshake_guard.join();
    if (!registered) {
      // When Read failed the server ended the stream (or it never opened):
      // Finish() returns at once with its status, the reason for the refusal.
      // A reply other than `registered` leaves the stream open: cancel, or
      // Finish() would wait for the server to end it.
      if (got_reply && !cancelled) ctx.TryCancel();
      grpc::Status st = stream->Finish();
      if (cancelled && !stop->load()) {
        st = grpc::Status(
            grpc::StatusCode::DEADLINE_EXCEEDED,
            "no answer to register within " + std::to_string(kHandshakeTimeoutMs) + " ms");
      }
      if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        // This render server's own configuration is wrong: retrying cannot help.
        fatal = InvalidArgument("schedule server " + address +
                                " refused the registration: " + st.error_message());
        spdlog::error("{}", fatal.message());
        quit = true;
        break;
      }
      const bool refused = st.error_code() == grpc::StatusCode::ALREADY_EXISTS;
      // The name is in use by a live render server: ask again slowly, in case
      // that one goes away, without disturbing it.
      const int64_t delay_ms = refused ? kRefusedRetryDelayMs : ReconnectDelayMs(++failures);
      const int attempt = refused ? ++refusals : failures;
      // A schedule server away for long would fill the log: after the first
      // few attempts, one line in 30.
      if (attempt <= 5 || attempt % 30 == 0) {
        spdlog::warn("cannot register with schedule server {}: {}; attempt {}, retrying in {} ms{}",
                     address, st.error_message().empty() ? "connection failed" : st.error_message(),
                     attempt, delay_ms,
                     address_file.empty() ? "" : " or when " + address_file + " changes");
      }
      if (WaitForRetry(delay_ms, stop, address_file, address_version)) {
        spdlog::info("{} changed; retrying now", address_file);
      }
      continue;
    }
    failures = 0;
    refusals = 0;
    const int64_t hb_ms = in.registered().heartbeat_interval_ms() > 0
                              ? in.registered().heartbeat_interval_ms()
                              : config_.heartbeat_interval_ms;
    spdlog::info("registered with schedule server {} of site '{}'", address,
                 in.registered().site());
    {
      // Under mu_ too, so a file transfer waiting in WithScheduleServer
      // cannot miss the notification: it goes at once.
      MutexLock lock(&mu_);
      MutexLock stream_lock(&stream_mu_);
      stream_ = stream.get();
      stub_ = stub;
    }
    stream_cv_.SignalAll();
    // Re-send results that may have been lost with the previous stream.
    std::vector<pb::ChunkResult> resend;
    {
      MutexLock lock(&mu_);
      for (const auto& [t, r] : unconfirmed_) resend.push_back(r);
    }
    bool all_sent = true;
    for (const auto& r : resend) {
      pb::RenderServerMessage msg;
      *msg.mutable_result() = r;
      all_sent = Send(msg) && all_sent;
    }
    bool draining;
    {
      MutexLock lock(&mu_);
      if (all_sent) undelivered_ = false;
      draining = draining_;
    }
    if (draining) {
      // Still stopping: the new stream is told so (no new chunks).
      pb::RenderServerMessage msg;
      msg.mutable_drain()->set_reason("stopping (SIGTERM): running chunks finish, no new ones");
      Send(msg);
    }
    std::atomic<bool> stream_done{false};
    std::thread heartbeat([&] {
      std::mutex m;
      std::unique_lock<std::mutex> lock(m);
      while (!stream_done.load() && !ending()) {
        pb::RenderServerMessage msg;
        msg.mutable_heartbeat()->set_sent_ms(clock_->UnixMillis());
        Send(msg);
        for (int64_t waited = 0; waited < hb_ms && !stream_done.load() && !ending(); waited += 20) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      if (ending()) {
        // Whatever is still held is killed below: queued again at once.
        if (!stream_done.load()) HandBackAll("the render server stopped");
        ctx.TryCancel();
      }
    });
    while (stream->Read(&in)) {
      if (in.has_assign()) {
        HandleAssignment(in.assign());
      } else if (in.has_cancel()) {
        HandleCancel(in.cancel());
      }
    }
    stream_done = true;
    heartbeat.join();
    {
      MutexLock lock(&stream_mu_);
      stream_ = nullptr;
      stub_.reset();  // file transfers wait for the next registered stream
    }
    grpc::Status st = stream->Finish();
    if (!ending()) {
      spdlog::warn("lost the schedule server stream ({}); reconnecting", st.error_message());
    }
  }
  quit = true;
  drain_watch.join();
  // Shutting down: kill every chunk's process tree.
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    stream_cv_.SignalAll();
    for (auto& w : slots_) {
      w->next.clear();
      if (w->process) {
        w->cancel_reason = "render server shutting down";
        w->process->KillTree(0);
      }
    }
  }
  StopSlots();
  return fatal;
}

void RenderServer::HandleAssignment(const pb::Assignment& a) {
  MutexLock lock(&mu_);
  if (draining_) {
    pb::RenderServerMessage msg;
    AddHeld(a, a.slot(), msg.mutable_drain());
    msg.mutable_drain()->set_reason("stopping (SIGTERM): no new chunks");
    lock.Unlock();
    Send(msg);
    return;
  }
  for (auto& w : slots_) {
    if (w->id != a.slot()) continue;
    if (w->current || !w->next.empty()) {
      // Runs after the chunk(s) the slot holds: the schedule server lost
      // track of the slot (restart), or sent the next chunk early.
      spdlog::debug("slot {} got {} while busy; queued behind {} chunk(s)", w->id, ChunkName(a),
                    w->next.size() + (w->current ? 1 : 0));
    }
    w->next.push_back(a);
    w->cv.Signal();
    return;
  }
  spdlog::error("assignment {} names unknown slot '{}'", ChunkName(a), a.slot());
}

void RenderServer::HandleCancel(const pb::CancelChunk& c) {
  MutexLock lock(&mu_);
  for (auto& w : slots_) {
    auto matches = [&](const pb::Assignment& a) {
      return a.job_id() == c.job_id() && a.chunk() == c.chunk() && a.attempt() == c.attempt();
    };
    for (auto it = w->next.begin(); it != w->next.end();) {
      it = matches(*it) ? w->next.erase(it) : it + 1;
    }
    if (w->current && matches(*w->current)) {
      w->cancel_reason = c.reason().empty() ? "cancelled" : c.reason();
      w->cancel_at_ms = clock_->MonotonicMillis();
      // SIGTERM now; the slot's own thread escalates to SIGKILL after the
      // grace period, so this reader thread never blocks.
      if (w->process) ::kill(-w->process->pid(), SIGTERM);
      spdlog::info("cancelling {}: {}", ChunkName(*w->current), w->cancel_reason);
    }
  }
}

Status RenderServer::WithScheduleServer(
    const std::function<Status(pb::ScheduleServer::Stub*)>& call) {
  const int64_t deadline = clock_->MonotonicMillis() + kScheduleServerWaitMs;
  Status st = Unavailable("not connected to the schedule server");
  for (int attempt = 0; clock_->MonotonicMillis() < deadline; ++attempt) {
    std::shared_ptr<pb::ScheduleServer::Stub> stub;
    {
      MutexLock lock(&stream_mu_);
      stub = stub_;
    }
    if (stub) {
      st = call(stub.get());
      // Only an unreachable server is worth waiting for.
      if (st.ok() || st.code() != StatusCode::kUnavailable) return st;
    }
    if (attempt == 0) {
      spdlog::info("the schedule server is away; waiting up to {} s for it to come back",
                   kScheduleServerWaitMs / 1000);
    }
    // Back off, but go again as soon as a new stream registers (Run notifies
    // stream_cv_): a chunk that ended while the schedule server was away reports at once.
    const auto delay = std::chrono::milliseconds(std::min(100 << std::min(attempt, 4), 1000));
    const auto deadline = std::chrono::steady_clock::now() + delay;
    MutexLock lock(&mu_);
    auto ready = [&]() FF_REQUIRES(mu_) {
      MutexLock stream_lock(&stream_mu_);  // order: mu_, then stream_mu_
      return stopping_ || (stub_ != nullptr && stub_ != stub);
    };
    while (!ready() && stream_cv_.WaitUntil(lock, deadline)) {
    }
    if (stopping_) return Cancelled("render server shutting down");
  }
  return st;
}

}  // namespace ff
