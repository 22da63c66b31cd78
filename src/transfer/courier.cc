#include "transfer/courier.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "rpc/services.h"
#include "transfer/hot_folder.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

constexpr int64_t kCallDeadlineMs = 30'000;
constexpr int64_t kMinBackoffMs = 100;
constexpr int64_t kMaxBackoffMs = 5'000;
// Keepalive pings make a stream to a peer that died (host down, cable
// pulled) fail within ~20 s instead of waiting for its deadline. The
// receiving server must accept pings this often (the schedule server allows
// one per second).
constexpr int kKeepaliveTimeMs = 10'000;
constexpr int kKeepaliveTimeoutMs = 10'000;
// A gRPC server accepts 4 MiB messages by default; a piece stays below.
constexpr int64_t kMaxChunkBytes = 3 << 20;
// Names of packages being removed after delivery: hidden from ListPackages
// so a half-removed package is never offered again.
constexpr char kSentPrefix[] = ".sent-";

class FdHolder {
 public:
  explicit FdHolder(int fd) : fd_(fd) {}
  ~FdHolder() {
    if (fd_ >= 0) ::close(fd_);
  }
  FdHolder(const FdHolder&) = delete;
  FdHolder& operator=(const FdHolder&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// What the courier needs of a manifest that does not pass ParseManifest
// here: where to send it. The peer runs the same check, refuses the package
// and quarantines it, and the refusal reaches the listener, so a bad
// package does not sit in out/ forever. Its files are never pushed (the
// file list stays empty). nullopt when not even to_site can be read.
std::optional<JobPackageManifest> AddressOnly(const std::string& text, const std::string& name) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) return std::nullopt;
  auto str = [&](const char* key) {
    auto it = doc.find(key);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  JobPackageManifest m;
  m.name = name;
  m.to_site = str("to_site");
  if (m.to_site.empty()) return std::nullopt;
  m.from_site = str("from_site");
  m.origin_site = str("origin_site");
  m.client = str("client");
  const std::string kind = str("kind");
  for (JobPackageKind k : {JobPackageKind::kJob, JobPackageKind::kResult, JobPackageKind::kCancel,
                           JobPackageKind::kRejection}) {
    if (kind == JobPackageKindName(k)) m.kind = k;
  }
  auto id = doc.find("origin_job_id");
  if (id != doc.end() && id->is_number_integer()) m.origin_job_id = id->get<int64_t>();
  return m;
}

std::chrono::system_clock::time_point DeadlineIn(int64_t ms) {
  return std::chrono::system_clock::now() + std::chrono::milliseconds(ms);
}

}  // namespace

struct Courier::Impl {
  struct Peer {
    PeerConfig config;
    // Courier thread only.
    std::string dialed;  // the address `stub` was made for
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<pb::SiteLink::Stub> stub;
    int64_t backoff_ms = 0;
    int64_t next_attempt_ms = 0;  // monotonic
  };

  // Why a package attempt stopped early (the peer is backed off).
  struct Failure {
    std::string what;
    grpc::Status status;
  };

  Options opt;
  Clock* clock;
  Listener* listener;
  std::unique_ptr<HotFolderWatcher> watcher;
  std::thread thread;
  std::atomic<bool> stopping{false};

  std::vector<Peer> peers;  // fixed after construction

  mutable std::mutex mu;
  std::vector<pb::PeerInfo> info;  // GUARDED_BY(mu), one per peer, same order

  std::mutex ctx_mu;
  grpc::ClientContext* active_ctx = nullptr;  // GUARDED_BY(ctx_mu), for Stop()
  std::mutex sleep_mu;
  std::condition_variable sleep_cv;

  // Courier thread only.
  std::set<std::string> reported;  // packages already logged as stuck
  // Digests sent for a package not yet delivered, so a retry does not count
  // them as "already held".
  std::map<std::string, std::set<std::string>> sent_for;

  Impl(Options o, Clock* c, Listener* l) : opt(std::move(o)), clock(c), listener(l) {
    for (const PeerConfig& p : opt.peers) {
      peers.push_back(Peer{p, "", nullptr, nullptr, 0, 0});
      pb::PeerInfo pi;
      pi.set_name(p.name);
      pi.set_address(p.address);
      pi.set_state("unknown");
      info.push_back(pi);
    }
    opt.chunk_bytes = std::clamp<int64_t>(opt.chunk_bytes, 1, kMaxChunkBytes);
  }

  template <typename F>
  void Update(size_t peer, F f) {
    std::lock_guard<std::mutex> lock(mu);
    f(&info[peer]);
  }

  // ---- the courier thread ----

  void Run() {
    for (;;) {
      int64_t wait = Pass();
      if (stopping.load() || !watcher->Wait(wait)) return;
    }
  }

  // One look at out/: ships what it can, returns how long to wait before
  // the next look (backoff expiry or the rescan period).
  int64_t Pass() {
    Result<std::vector<std::string>> names = ListPackages(opt.out_dir);
    if (!names.ok()) {
      spdlog::error("courier: {}", names.status().message());
      return opt.rescan_ms;
    }
    std::vector<int> waiting(peers.size(), 0);
    std::vector<bool> failed(peers.size(), false);
    std::set<std::string> present(names->begin(), names->end());
    std::erase_if(reported, [&](const std::string& n) { return present.count(n) == 0; });
    std::erase_if(sent_for, [&](const auto& e) { return present.count(e.first) == 0; });

    for (const std::string& name : *names) {
      if (stopping.load()) break;
      const std::string dir = JoinPath(opt.out_dir, name);
      Result<std::string> text = ReadFile(JoinPath(dir, "manifest.json"));
      Result<JobPackageManifest> m =
          text.ok() ? ParseManifest(*text, JoinPath(dir, "manifest.json")) : text.status();
      if (!m.ok()) {
        std::optional<JobPackageManifest> a = text.ok() ? AddressOnly(*text, name) : std::nullopt;
        if (!a) {
          if (reported.insert(name).second) {
            spdlog::error("courier: package {} stays in {}: {}", name, opt.out_dir,
                          m.status().message());
          }
          continue;
        }
        if (reported.insert(name).second) {
          spdlog::warn(
              "courier: package {} is invalid ({}); offering it to site '{}' to be "
              "refused and quarantined there",
              name, m.status().message(), a->to_site);
        }
        m = std::move(*a);
      }
      size_t p = 0;
      while (p < peers.size() && peers[p].config.name != m->to_site) ++p;
      if (p == peers.size()) {
        if (reported.insert(name).second) {
          spdlog::error(
              "courier: package {} is addressed to site '{}', which is not a peer; it "
              "stays in {}",
              name, m->to_site, opt.out_dir);
        }
        continue;
      }
      ++waiting[p];
      Peer& peer = peers[p];
      if (failed[p] || clock->MonotonicMillis() < peer.next_attempt_ms) continue;
      std::optional<Failure> f = Ship(p, name, dir, *m, *text);
      if (!f) {
        --waiting[p];
        peer.backoff_ms = 0;
        peer.next_attempt_ms = 0;
        continue;
      }
      if (stopping.load()) break;
      failed[p] = true;
      peer.backoff_ms =
          peer.backoff_ms == 0 ? kMinBackoffMs : std::min(peer.backoff_ms * 2, kMaxBackoffMs);
      peer.next_attempt_ms = clock->MonotonicMillis() + peer.backoff_ms;
      RecordFailure(p, *f);
    }

    int64_t wait = opt.rescan_ms;
    const int64_t now = clock->MonotonicMillis();
    std::lock_guard<std::mutex> lock(mu);
    for (size_t p = 0; p < peers.size(); ++p) {
      info[p].set_packages_waiting(waiting[p]);
      if (waiting[p] > 0 && peers[p].next_attempt_ms > 0) {
        wait = std::min(wait, std::max<int64_t>(peers[p].next_attempt_ms - now, 1));
      }
    }
    return wait;
  }

  void RecordFailure(size_t p, const Failure& f) {
    const bool refused = f.status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
                         f.status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
    // A full disk at the peer is retried like an unreachable peer, and said.
    const bool disk_full = f.status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED;
    const std::string error = f.what + ": " + f.status.error_message();
    bool changed = false;
    Update(p, [&](pb::PeerInfo* pi) {
      changed = pi->last_error() != error;
      pi->set_state(refused ? "refused" : disk_full ? "disk full" : "unreachable");
      pi->set_last_error(error);
      pi->mutable_counters()->set_failures(pi->counters().failures() + 1);
    });
    // The same error every backoff period is logged once.
    if (changed) {
      spdlog::warn("courier: peer '{}' {}: {} (retrying)", peers[p].config.name,
                   refused ? "refused the call" : "failed", error);
    }
  }

  void RecordOk(size_t p) {
    Update(p, [&](pb::PeerInfo* pi) {
      pi->set_state("ok");
      pi->clear_last_error();
      pi->set_last_ok_ms(clock->UnixMillis());
    });
  }

  // The stub for a peer, re-dialled when its address changed (a restarted
  // peer may listen on a new port: address_file is read every time).
  Result<pb::SiteLink::Stub*> Connect(size_t p) {
    Peer& peer = peers[p];
    FF_ASSIGN_OR_RETURN(std::string address, PeerAddress(peer.config));
    if (peer.stub && address == peer.dialed) return peer.stub.get();
    FF_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
                        PeerCredentials(peer.config));
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    if (!peer.config.tls_server_name.empty()) {
      args.SetSslTargetNameOverride(peer.config.tls_server_name);
    }
    peer.channel = grpc::CreateCustomChannel(address, creds, args);
    peer.stub = pb::SiteLink::NewStub(peer.channel);
    peer.dialed = address;
    Update(p, [&](pb::PeerInfo* pi) { pi->set_address(address); });
    return peer.stub.get();
  }

  // Makes `ctx` cancellable by Stop() while a call runs.
  class ActiveCall {
   public:
    ActiveCall(Impl* impl, grpc::ClientContext* ctx) : impl_(impl) {
      std::lock_guard<std::mutex> lock(impl_->ctx_mu);
      impl_->active_ctx = ctx;
      if (impl_->stopping.load()) ctx->TryCancel();
    }
    ~ActiveCall() {
      std::lock_guard<std::mutex> lock(impl_->ctx_mu);
      impl_->active_ctx = nullptr;
    }

   private:
    Impl* impl_;
  };

  void Sign(grpc::ClientContext* ctx, size_t p, const std::string& method, int64_t deadline_ms) {
    ctx->set_deadline(DeadlineIn(deadline_ms));
    SignPeerCall(ctx, opt.site_name, peers[p].config.secret, method, clock->UnixMillis());
  }

  // Ships one package; nullopt when it left out/ (delivered or refused).
  std::optional<Failure> Ship(size_t p, const std::string& name, const std::string& dir,
                              const JobPackageManifest& m, const std::string& manifest_text) {
    Result<pb::SiteLink::Stub*> stub = Connect(p);
    if (!stub.ok()) {
      return Failure{"connect",
                     grpc::Status(grpc::StatusCode::UNAVAILABLE, stub.status().message())};
    }
    pb::OfferResponse offer;
    {
      grpc::ClientContext ctx;
      Sign(&ctx, p, "Offer", kCallDeadlineMs);
      pb::PackageOffer req;
      req.set_name(name);
      req.set_manifest(manifest_text);
      ActiveCall active(this, &ctx);
      grpc::Status s = (*stub)->Offer(&ctx, req, &offer);
      if (!s.ok()) return Failure{"Offer " + name, s};
    }
    RecordOk(p);
    if (!offer.rejected().empty()) return Remove(p, name, dir, m, offer.rejected());
    if (offer.already_delivered()) return Remove(p, name, dir, m, "");

    std::set<std::string> needed;
    std::set<std::string>& sent = sent_for[name];
    for (const pb::BlobNeed& need : offer.need()) {
      const JobPackageFile* file = nullptr;
      for (const JobPackageFile& f : m.files) {
        if (f.sha256 == need.sha256() && f.size == need.size()) file = &f;
      }
      if (file == nullptr) {
        return Failure{"Offer " + name, grpc::Status(grpc::StatusCode::INTERNAL,
                                                     "the peer asked for blob " + need.sha256() +
                                                         ", which is not in the package")};
      }
      needed.insert(file->sha256);
      if (std::optional<Failure> f = Push(p, *stub, dir, *file, need.received())) return f;
      sent.insert(file->sha256);
    }

    pb::DeliverResponse delivered;
    {
      grpc::ClientContext ctx;
      Sign(&ctx, p, "Deliver", kCallDeadlineMs);
      pb::DeliverRequest req;
      req.set_name(name);
      req.set_manifest(manifest_text);
      ActiveCall active(this, &ctx);
      grpc::Status s = (*stub)->Deliver(&ctx, req, &delivered);
      if (!s.ok()) return Failure{"Deliver " + name, s};
    }
    if (!delivered.rejected().empty()) return Remove(p, name, dir, m, delivered.rejected());

    // Counted on delivery only, so a retried package is not counted twice.
    std::map<std::string, int64_t> held;
    for (const JobPackageFile& f : m.files) {
      if (needed.count(f.sha256) == 0 && sent.count(f.sha256) == 0) held[f.sha256] = f.size;
    }
    Update(p, [&](pb::PeerInfo* pi) {
      pb::CourierCounters* c = pi->mutable_counters();
      c->set_blobs_skipped(c->blobs_skipped() + static_cast<int64_t>(held.size()));
      for (const auto& [sha, size] : held) c->set_bytes_skipped(c->bytes_skipped() + size);
    });
    return Remove(p, name, dir, m, "");
  }

  // Streams the bytes of `file` from `received` on.
  std::optional<Failure> Push(size_t p, pb::SiteLink::Stub* stub, const std::string& dir,
                              const JobPackageFile& file, int64_t received) {
    const std::string what = "PushBlob " + file.path;
    auto local_error = [&](const std::string& msg) {
      return Failure{what, grpc::Status(grpc::StatusCode::INTERNAL, msg)};
    };
    if (received < 0 || received > file.size) {
      return local_error("the peer claims " + std::to_string(received) + " of " +
                         std::to_string(file.size) + " bytes");
    }
    const std::string path = JoinPath(dir, file.path);
    FdHolder fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    if (fd.get() < 0) return local_error(ErrnoError("cannot open", path, errno).message());
    struct stat st;
    if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != file.size) {
      return local_error(path + " is not a regular file of the " + std::to_string(file.size) +
                         " bytes its manifest says");
    }
    if (received > 0) {
      Update(p, [&](pb::PeerInfo* pi) {
        pi->mutable_counters()->set_bytes_resumed(pi->counters().bytes_resumed() + received);
      });
    }

    const int64_t remaining = file.size - received;
    const int64_t rate = opt.max_rate_bytes_per_s;
    // Generous: the stream's real guard against a dead peer is keepalive.
    const int64_t floor_rate = rate > 0 ? rate : (1 << 20);
    grpc::ClientContext ctx;
    Sign(&ctx, p, "PushBlob", 60'000 + remaining / floor_rate * 1000 * 2);
    pb::BlobPieceAck ack;
    ActiveCall active(this, &ctx);
    std::unique_ptr<grpc::ClientWriter<pb::BlobPiece>> writer = stub->PushBlob(&ctx, &ack);

    const int64_t start_ms = clock->MonotonicMillis();
    int64_t pos = received;
    int64_t streamed = 0;
    std::string buf;
    bool first = true;
    while (first || pos < file.size) {
      const int64_t n = std::min(opt.chunk_bytes, file.size - pos);
      buf.resize(static_cast<size_t>(n));
      int64_t got = 0;
      while (got < n) {
        ssize_t r = ::pread(fd.get(), buf.data() + got, static_cast<size_t>(n - got), pos + got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
          ctx.TryCancel();
          return local_error(path + " shrank or cannot be read");
        }
        got += r;
      }
      if (rate > 0 && !SleepUntil(start_ms + streamed * 1000 / rate)) {
        ctx.TryCancel();
        return Failure{what, grpc::Status(grpc::StatusCode::CANCELLED, "courier stopping")};
      }
      pb::BlobPiece piece;
      if (first) {
        piece.set_sha256(file.sha256);
        piece.set_size(file.size);
        piece.set_offset(received);
        first = false;
      }
      piece.set_data(std::move(buf));
      buf = std::string();
      if (!writer->Write(piece)) break;  // the stream broke: Finish says why
      pos += n;
      streamed += n;
      Update(p, [&](pb::PeerInfo* pi) {
        pi->mutable_counters()->set_bytes_sent(pi->counters().bytes_sent() + n);
      });
    }
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    if (!s.ok()) return Failure{what, s};
    if (!ack.complete()) {
      return Failure{what, grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                        "the stream ended with " + std::to_string(ack.received()) +
                                            " of " + std::to_string(file.size) + " bytes stored")};
    }
    Update(p, [&](pb::PeerInfo* pi) {
      pi->mutable_counters()->set_blobs_sent(pi->counters().blobs_sent() + 1);
    });
    return std::nullopt;
  }

  // Waits until the monotonic clock reaches `due_ms`; false if stopping.
  bool SleepUntil(int64_t due_ms) {
    std::unique_lock<std::mutex> lock(sleep_mu);
    while (!stopping.load()) {
      int64_t left = due_ms - clock->MonotonicMillis();
      if (left <= 0) return true;
      sleep_cv.wait_for(lock, std::chrono::milliseconds(std::min<int64_t>(left, 100)));
    }
    return false;
  }

  // The package left this site's hands: delivered (reason empty) or refused.
  std::optional<Failure> Remove(size_t p, const std::string& name, const std::string& dir,
                                const JobPackageManifest& m, const std::string& reason) {
    const std::string hidden = JoinPath(opt.out_dir, kSentPrefix + name);
    Status st = RemoveAll(hidden);
    if (st.ok()) st = RenameDurable(dir, hidden);
    if (st.ok()) st = RemoveAll(hidden);
    if (!st.ok()) spdlog::error("courier: cannot remove sent package {}: {}", dir, st.message());
    sent_for.erase(name);
    Update(p, [&](pb::PeerInfo* pi) {
      pb::CourierCounters* c = pi->mutable_counters();
      if (reason.empty()) {
        c->set_packages_sent(c->packages_sent() + 1);
      } else {
        c->set_packages_rejected(c->packages_rejected() + 1);
      }
    });
    if (reason.empty()) {
      spdlog::info("courier: delivered {} package '{}' to peer '{}'", JobPackageKindName(m.kind),
                   name, m.to_site);
      if (listener) listener->OnDelivered(m);
    } else {
      spdlog::warn("courier: peer '{}' refused package '{}': {}", m.to_site, name, reason);
      if (listener) listener->OnRejected(m, reason);
    }
    return std::nullopt;
  }
};

Courier::Courier(Options options, Clock* clock, Listener* listener)
    : impl_(std::make_unique<Impl>(std::move(options), clock, listener)) {}

Courier::~Courier() { Stop(); }

Status Courier::Start() {
  Impl& d = *impl_;
  if (d.thread.joinable()) return FailedPrecondition("courier: already started");
  if (d.opt.site_name.empty()) return InvalidArgument("courier: site_name: must be set");
  std::set<std::string> names;
  for (const PeerConfig& p : d.opt.peers) {
    if (!names.insert(p.name).second) {
      return InvalidArgument("courier: peer '" + p.name + "' is configured twice");
    }
  }
  FF_ASSIGN_OR_RETURN(d.watcher, HotFolderWatcher::Open(d.opt.out_dir, d.opt.rescan_ms));
  // Packages whose removal a crash interrupted were delivered already.
  FF_ASSIGN_OR_RETURN(std::vector<std::string> entries, ListDir(d.opt.out_dir));
  for (const std::string& e : entries) {
    if (e.rfind(kSentPrefix, 0) == 0) FF_RETURN_IF_ERROR(RemoveAll(JoinPath(d.opt.out_dir, e)));
  }
  d.stopping.store(false);
  d.thread = std::thread([&d] { d.Run(); });
  return Status::Ok();
}

void Courier::Stop() {
  Impl& d = *impl_;
  if (!d.thread.joinable()) return;
  d.stopping.store(true);
  {
    std::lock_guard<std::mutex> lock(d.ctx_mu);
    if (d.active_ctx) d.active_ctx->TryCancel();
  }
  {
    std::lock_guard<std::mutex> lock(d.sleep_mu);
    d.sleep_cv.notify_all();
  }
  d.watcher->Stop();
  d.thread.join();
}

void Courier::Kick() {
  if (impl_->watcher) impl_->watcher->Kick();
}

std::vector<pb::PeerInfo> Courier::Peers() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->info;
}

}  // namespace ff
