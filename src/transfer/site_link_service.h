// SiteLinkService: the receiving end of the communications medium, served
// by every schedule server that has peers.
//
// Offer/PushBlob/Deliver move a package from a peer's hotfolders/out into
// this site's hotfolders/in:
//  - Offer parses the manifest (ParseManifest), checks it is addressed to
//    this site and from the calling peer, and checks the limits; a bad
//    manifest is rejected with its reason (written to
//    hotfolders/quarantine/ with a reason file, and returned to the caller).
//    Otherwise it answers which blobs this site's blob store lacks and how
//    many bytes of each it holds in <blobs>/partial/ from a broken transfer.
//  - PushBlob appends to <blobs>/partial/<sha256> at the offset the stream
//    starts at (which must equal what is held), fsyncs, and once the blob
//    is complete verifies its SHA-256 and publishes it into the blob store
//    (a mismatch discards the partial file and fails the call).
//  - Deliver checks every blob is present and materialises the package
//    atomically into hotfolders/in (MaterializePackage). Idempotent.
// Quote and RemoteJobs are answered by the schedule server (Handler).
// Every method first authenticates the caller (VerifyPeerCall); a refusal
// is logged with the claimed peer name and the client address.
//
// Thread-safety: gRPC calls it concurrently; concurrent pushes of the same
// blob are serialised per digest.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "base/clock.h"
#include "rpc/services.h"
#include "store/blob_store.h"
#include "transfer/job_package.h"
#include "transfer/peer.h"

namespace ff {

class SiteLinkService final : public frameflow::v1::SiteLink::Service {
 public:
  class Handler {
   public:
    virtual ~Handler() = default;
    virtual frameflow::v1::QuoteResponse Quote(const std::string& peer,
                                               const frameflow::v1::QuoteRequest& req) = 0;
    virtual frameflow::v1::RemoteJobsResponse RemoteJobs(
        const std::string& peer, const frameflow::v1::RemoteJobsRequest& req) = 0;
    // Whether a package of this name from `peer` was already ingested here
    // (so a redelivery after a lost answer is not ingested twice).
    virtual bool AlreadyIngested(const std::string& peer, const std::string& name) = 0;
  };

  struct Options {
    std::string site_name;
    std::vector<PeerConfig> peers;
    std::string in_dir;          // <root>/hotfolders/in
    std::string quarantine_dir;  // <root>/hotfolders/quarantine
    JobPackageLimits limits;
  };

  // `blobs` and `handler` must outlive the service.
  SiteLinkService(Options options, BlobStore* blobs, Handler* handler, Clock* clock);

  grpc::Status Offer(grpc::ServerContext*, const frameflow::v1::PackageOffer*,
                     frameflow::v1::OfferResponse*) override;
  grpc::Status PushBlob(grpc::ServerContext*, grpc::ServerReader<frameflow::v1::BlobPiece>*,
                        frameflow::v1::BlobPieceAck*) override;
  grpc::Status Deliver(grpc::ServerContext*, const frameflow::v1::DeliverRequest*,
                       frameflow::v1::DeliverResponse*) override;
  grpc::Status Quote(grpc::ServerContext*, const frameflow::v1::QuoteRequest*,
                     frameflow::v1::QuoteResponse*) override;
  grpc::Status RemoteJobs(grpc::ServerContext*, const frameflow::v1::RemoteJobsRequest*,
                          frameflow::v1::RemoteJobsResponse*) override;

  // What each call does once its caller is authenticated as `peer` (the
  // gRPC methods above authenticate, then call these; the fuzz harness
  // calls them directly). `next` reads the pieces of a PushBlob stream
  // after `first`, returning false at its end.
  grpc::Status HandleOffer(const std::string& peer, const frameflow::v1::PackageOffer& req,
                           frameflow::v1::OfferResponse* resp);
  // `ctx` (null outside a gRPC call) lets a later stream of the same peer
  // cancel this one (see DigestLock).
  grpc::Status HandlePushBlob(const std::string& peer, const frameflow::v1::BlobPiece& first,
                              const std::function<bool(frameflow::v1::BlobPiece*)>& next,
                              frameflow::v1::BlobPieceAck* ack, grpc::ServerContext* ctx = nullptr);
  grpc::Status HandleDeliver(const std::string& peer, const frameflow::v1::DeliverRequest& req,
                             frameflow::v1::DeliverResponse* resp);
  grpc::Status HandleQuote(const std::string& peer, const frameflow::v1::QuoteRequest& req,
                           frameflow::v1::QuoteResponse* resp);
  grpc::Status HandleRemoteJobs(const std::string& peer,
                                const frameflow::v1::RemoteJobsRequest& req,
                                frameflow::v1::RemoteJobsResponse* resp);

 private:
  class DigestLock;
  // The calling peer's site name, or an error (already logged).
  Result<std::string> Authenticate(grpc::ServerContext* ctx, const char* method);
  // Parses an offered manifest and checks name, addressing and limits.
  Result<JobPackageManifest> CheckOffer(const std::string& peer, const std::string& name,
                                        const std::string& manifest);
  // Stores the refused manifest under quarantine_dir with its reason.
  void QuarantineOffer(const std::string& peer, const std::string& name,
                       const std::string& manifest, const std::string& reason);
  bool AlreadyDelivered(const std::string& peer, const std::string& name);

  Options options_;
  BlobStore* blobs_;
  Handler* handler_;  // may be null: Quote/RemoteJobs are then UNIMPLEMENTED
  Clock* clock_;
  // A PushBlob stream writing a digest: who sent it, and its context (to
  // cancel it when the same peer starts another stream for the digest).
  struct Pusher {
    std::string peer;
    grpc::ServerContext* ctx;
  };
  std::mutex mu_;
  std::condition_variable released_;       // a digest left pushing_
  std::map<std::string, Pusher> pushing_;  // GUARDED_BY(mu_) digests being written
  // Serialises Deliver: two deliveries of one package share a staging name.
  std::mutex deliver_mu_;
};

}  // namespace ff
