#include "transfer/site_link_service.h"

#include <spdlog/spdlog.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <chrono>
#include <map>

#include "rpc/grpc_status.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

grpc::Status Unauthenticated(const Status& s) {
  return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, s.message());
}

bool IsPlainName(const std::string& s) {
  if (s.empty() || s.size() > 128 || s.front() == '.') return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

// Marks a digest as being written for the lifetime of one PushBlob stream.
//
// A sender pushes a blob on one stream at a time, so when the same peer
// opens a new stream for a digest an older stream still holds, the sender
// has given that one up: its link broke and it reconnected. This end may
// not know yet — it only reads, so a silently dead connection (a cut link)
// keeps the old stream waiting until its deadline, and the transfer could
// not resume until then. The new stream takes over: it cancels the old one
// and waits (at most kTakeoverWaitMs) for it to store what it received and
// let go. Another peer's stream is never cancelled: that call is refused.
class SiteLinkService::DigestLock {
 public:
  static constexpr int kTakeoverWaitMs = 10'000;

  DigestLock(SiteLinkService* s, std::string sha, const std::string& peer, grpc::ServerContext* ctx)
      : s_(s), sha_(std::move(sha)) {
    std::unique_lock<std::mutex> lock(s_->mu_);
    auto it = s_->pushing_.find(sha_);
    if (it != s_->pushing_.end() && it->second.peer == peer) {
      spdlog::info(
          "site link: a new PushBlob stream from peer '{}' takes blob {} over from its "
          "old one",
          peer, sha_);
      // Alive while its entry is: the old handler erases it (under mu_)
      // before it returns.
      if (it->second.ctx) it->second.ctx->TryCancel();
      s_->released_.wait_for(lock, std::chrono::milliseconds(kTakeoverWaitMs),
                             [&] { return s_->pushing_.count(sha_) == 0; });
    }
    held_ = s_->pushing_.emplace(sha_, Pusher{peer, ctx}).second;
  }
  ~DigestLock() {
    if (!held_) return;
    {
      std::lock_guard<std::mutex> lock(s_->mu_);
      s_->pushing_.erase(sha_);
    }
    s_->released_.notify_all();
  }
  DigestLock(const DigestLock&) = delete;
  DigestLock& operator=(const DigestLock&) = delete;
  bool held() const { return held_; }

 private:
  SiteLinkService* s_;
  std::string sha_;
  bool held_ = false;
};

SiteLinkService::SiteLinkService(Options options, BlobStore* blobs, Handler* handler, Clock* clock)
    : options_(std::move(options)), blobs_(blobs), handler_(handler), clock_(clock) {}

Result<std::string> SiteLinkService::Authenticate(grpc::ServerContext* ctx, const char* method) {
  Result<std::string> peer = VerifyPeerCall(*ctx, options_.peers, method, clock_->UnixMillis());
  if (!peer.ok()) {
    spdlog::warn("site link: refused {} from {}: {}", method, ctx->peer(), peer.status().message());
  }
  return peer;
}

Result<JobPackageManifest> SiteLinkService::CheckOffer(const std::string& peer,
                                                       const std::string& name,
                                                       const std::string& manifest) {
  // Messages go back to the peer: they name the manifest field, never a
  // local path of this site.
  FF_ASSIGN_OR_RETURN(JobPackageManifest m, ParseManifest(manifest, "manifest.json"));
  if (m.name != name) {
    return InvalidArgument("manifest.json: name: '" + m.name + "' but the package is offered as '" +
                           name + "'");
  }
  if (m.to_site != options_.site_name) {
    return InvalidArgument("manifest.json: to_site: '" + m.to_site + "' is not this site ('" +
                           options_.site_name + "')");
  }
  if (m.from_site != peer) {
    return InvalidArgument("manifest.json: from_site: '" + m.from_site +
                           "' but the package comes from peer '" + peer + "'");
  }
  FF_RETURN_IF_ERROR(CheckLimits(m, options_.limits));
  // One digest, one size: the size is what a blob is checked against.
  std::map<std::string, size_t> sizes;
  for (size_t i = 0; i < m.files.size(); ++i) {
    auto [it, fresh] = sizes.emplace(m.files[i].sha256, i);
    if (!fresh && m.files[it->second].size != m.files[i].size) {
      return InvalidArgument("manifest.json: files[" + std::to_string(i) +
                             "].size: differs from files[" + std::to_string(it->second) +
                             "] of the same sha256");
    }
  }
  return m;
}

void SiteLinkService::QuarantineOffer(const std::string& peer, const std::string& name,
                                      const std::string& manifest, const std::string& reason) {
  const std::string& q = options_.quarantine_dir;
  Status st = MakeDirs(q);
  std::string tmp = JoinPath(q, ".incoming-XXXXXX");
  if (st.ok() && ::mkdtemp(tmp.data()) == nullptr) st = ErrnoError("cannot create", tmp, errno);
  if (st.ok()) {
    std::string dir = JoinPath(tmp, IsPlainName(name) ? name : "invalid-name");
    if (::mkdir(dir.c_str(), 0755) != 0) st = ErrnoError("cannot create", dir, errno);
    if (st.ok()) st = WriteFileAtomic(JoinPath(dir, "manifest.json"), manifest);
    if (st.ok()) {
      Result<std::string> moved =
          QuarantinePackage(dir, q, "refused package from peer '" + peer + "': " + reason);
      if (moved.ok()) {
        spdlog::warn("site link: refused package '{}' from peer '{}' (quarantined in {}): {}", name,
                     peer, *moved, reason);
      }
      st = moved.status();
    }
    (void)RemoveAll(tmp);
  }
  if (!st.ok()) {
    spdlog::error("site link: refused package '{}' from peer '{}': {}; cannot quarantine it: {}",
                  name, peer, reason, st.message());
  }
}

bool SiteLinkService::AlreadyDelivered(const std::string& peer, const std::string& name) {
  if (PathExists(JoinPath(options_.in_dir, name))) return true;
  return handler_ != nullptr && handler_->AlreadyIngested(peer, name);
}

grpc::Status SiteLinkService::Offer(grpc::ServerContext* ctx, const pb::PackageOffer* req,
                                    pb::OfferResponse* resp) {
  Result<std::string> peer = Authenticate(ctx, "Offer");
  if (!peer.ok()) return Unauthenticated(peer.status());
  return HandleOffer(*peer, *req, resp);
}

grpc::Status SiteLinkService::HandleOffer(const std::string& peer, const pb::PackageOffer& req,
                                          pb::OfferResponse* resp) {
  Result<JobPackageManifest> m = CheckOffer(peer, req.name(), req.manifest());
  if (!m.ok()) {
    QuarantineOffer(peer, req.name(), req.manifest(), m.status().message());
    resp->set_rejected(m.status().message());
    return grpc::Status::OK;
  }
  if (AlreadyDelivered(peer, m->name)) {
    resp->set_already_delivered(true);
    return grpc::Status::OK;
  }
  std::set<std::string> listed;
  for (const JobPackageFile& f : m->files) {
    if (!listed.insert(f.sha256).second || blobs_->Has(f.sha256)) continue;
    Result<int64_t> held = blobs_->PartialSize(f.sha256);
    if (!held.ok()) return ToGrpc(held.status());
    int64_t received = *held;
    if (received > f.size) {
      // Not a prefix of this blob: start over.
      if (Status s = blobs_->DiscardPartial(f.sha256); !s.ok()) return ToGrpc(s);
      received = 0;
    }
    pb::BlobNeed* need = resp->add_need();
    need->set_sha256(f.sha256);
    need->set_size(f.size);
    need->set_received(received);
  }
  return grpc::Status::OK;
}

grpc::Status SiteLinkService::PushBlob(grpc::ServerContext* ctx,
                                       grpc::ServerReader<pb::BlobPiece>* reader,
                                       pb::BlobPieceAck* ack) {
  Result<std::string> peer = Authenticate(ctx, "PushBlob");
  if (!peer.ok()) return Unauthenticated(peer.status());
  pb::BlobPiece first;
  if (!reader->Read(&first)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "PushBlob: empty stream");
  }
  return HandlePushBlob(
      *peer, first, [reader](pb::BlobPiece* piece) { return reader->Read(piece); }, ack, ctx);
}

grpc::Status SiteLinkService::HandlePushBlob(const std::string& peer, const pb::BlobPiece& first,
                                             const std::function<bool(pb::BlobPiece*)>& next,
                                             pb::BlobPieceAck* ack, grpc::ServerContext* ctx) {
  pb::BlobPiece piece = first;
  const std::string sha = piece.sha256();
  const int64_t size = piece.size();
  const int64_t offset = piece.offset();
  if (!IsSha256Hex(sha)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "PushBlob: sha256: not a lower-case hex SHA-256 digest");
  }
  if (size < 0 || size > options_.limits.max_file_bytes) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "PushBlob: size: " + std::to_string(size) + " is outside 0.." +
                            std::to_string(options_.limits.max_file_bytes));
  }
  if (offset < 0 || offset > size) {
    return grpc::Status(
        grpc::StatusCode::INVALID_ARGUMENT,
        "PushBlob: offset: " + std::to_string(offset) + " is outside 0.." + std::to_string(size));
  }
  DigestLock lock(this, sha, peer, ctx);
  if (!lock.held()) {
    return grpc::Status(grpc::StatusCode::ABORTED,
                        "PushBlob: blob " + sha + " is being received on another stream");
  }
  if (blobs_->Has(sha)) {
    (void)blobs_->DiscardPartial(sha);
    ack->set_received(size);
    ack->set_complete(true);
    return grpc::Status::OK;
  }
  int64_t pos = offset;
  Status st;
  do {
    if (!piece.sha256().empty() && piece.sha256() != sha) {
      st = InvalidArgument("PushBlob: a stream carries one blob, got pieces of " + piece.sha256() +
                           " after " + sha);
      break;
    }
    st = blobs_->AppendPartial(sha, size, pos, piece.data());
    if (!st.ok()) break;
    pos += static_cast<int64_t>(piece.data().size());
  } while (next(&piece));
  // Whatever arrived is kept durably, even from a broken stream: that is
  // what the sender resumes from.
  Status synced = blobs_->SyncPartial(sha);
  if (st.ok()) st = synced;
  if (!st.ok()) return ToGrpc(st);
  if (ctx && ctx->IsCancelled()) {
    return grpc::Status(grpc::StatusCode::CANCELLED, "PushBlob: cancelled with " +
                                                         std::to_string(pos) + " of " +
                                                         std::to_string(size) + " bytes stored");
  }
  if (pos == size) {
    st = blobs_->CompletePartial(sha, size);
    if (!st.ok()) {
      spdlog::warn("site link: blob {} from peer '{}' rejected: {}", sha, peer, st.message());
      return ToGrpc(st);
    }
    ack->set_complete(true);
  }
  ack->set_received(pos);
  return grpc::Status::OK;
}

grpc::Status SiteLinkService::Deliver(grpc::ServerContext* ctx, const pb::DeliverRequest* req,
                                      pb::DeliverResponse* resp) {
  Result<std::string> peer = Authenticate(ctx, "Deliver");
  if (!peer.ok()) return Unauthenticated(peer.status());
  return HandleDeliver(*peer, *req, resp);
}

grpc::Status SiteLinkService::HandleDeliver(const std::string& peer, const pb::DeliverRequest& req,
                                            pb::DeliverResponse* resp) {
  Result<JobPackageManifest> m = CheckOffer(peer, req.name(), req.manifest());
  if (!m.ok()) {
    QuarantineOffer(peer, req.name(), req.manifest(), m.status().message());
    resp->set_rejected(m.status().message());
    return grpc::Status::OK;
  }
  std::lock_guard<std::mutex> lock(deliver_mu_);
  if (AlreadyDelivered(peer, m->name)) return grpc::Status::OK;
  for (const JobPackageFile& f : m->files) {
    if (!blobs_->Has(f.sha256)) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "Deliver: " + f.path + " (blob " + f.sha256 + ") has not been received");
    }
  }
  Status st = MaterializePackage(options_.in_dir, *m, req.manifest(), *blobs_);
  if (!st.ok()) {
    spdlog::error("site link: cannot store package '{}' from peer '{}': {}", m->name, peer,
                  st.message());
    return ToGrpc(st);
  }
  spdlog::info("site link: received {} package '{}' from peer '{}' ({} files)",
               JobPackageKindName(m->kind), m->name, peer, m->files.size());
  return grpc::Status::OK;
}

grpc::Status SiteLinkService::Quote(grpc::ServerContext* ctx, const pb::QuoteRequest* req,
                                    pb::QuoteResponse* resp) {
  Result<std::string> peer = Authenticate(ctx, "Quote");
  if (!peer.ok()) return Unauthenticated(peer.status());
  return HandleQuote(*peer, *req, resp);
}

grpc::Status SiteLinkService::HandleQuote(const std::string& peer, const pb::QuoteRequest& req,
                                          pb::QuoteResponse* resp) {
  if (handler_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "Quote: this site takes no jobs");
  }
  *resp = handler_->Quote(peer, req);
  return grpc::Status::OK;
}

grpc::Status SiteLinkService::RemoteJobs(grpc::ServerContext* ctx, const pb::RemoteJobsRequest* req,
                                         pb::RemoteJobsResponse* resp) {
  Result<std::string> peer = Authenticate(ctx, "RemoteJobs");
  if (!peer.ok()) return Unauthenticated(peer.status());
  return HandleRemoteJobs(*peer, *req, resp);
}

grpc::Status SiteLinkService::HandleRemoteJobs(const std::string& peer,
                                               const pb::RemoteJobsRequest& req,
                                               pb::RemoteJobsResponse* resp) {
  if (handler_ == nullptr) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "RemoteJobs: this site takes no jobs");
  }
  *resp = handler_->RemoteJobs(peer, req);
  return grpc::Status::OK;
}

}  // namespace ff
