// Courier: ships packages from a site's hotfolders/out to the peer each is
// addressed to (manifest to_site), over the SiteLink gRPC service.
//
// For each package, oldest first: Offer the manifest; the peer answers with
// the blobs it lacks and how much of each it already holds from a broken
// transfer; stream only the missing bytes of those (chunk_bytes per message,
// at most max_rate bytes/s if set); then Deliver, after which the peer has
// the complete package in its hotfolders/in. Only then is the package
// removed from hotfolders/out, so a crash at any point resends at most what
// the peer had not yet stored, and a delivered package is never lost. A
// package the peer refuses (rejected) is removed too and reported.
// A link failure is retried with backoff (100 ms doubling to 5 s) per peer;
// packages for other peers keep moving.
//
// A stream to a peer that dies is detected with keepalive pings every 10 s:
// the peer's gRPC server must accept them (the schedule server's does).
//
// Thread-safety: Start/Stop from the owner; Kick, Counters, Peers from any
// thread (Kick after Start). Listener callbacks run on the courier's thread and must not call
// back into the Courier.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "rpc/protocol.h"
#include "transfer/job_package.h"
#include "transfer/peer.h"

namespace ff {

class Courier {
 public:
  class Listener {
   public:
    virtual ~Listener() = default;
    // The peer holds the complete package (it is removed from out/).
    virtual void OnDelivered(const JobPackageManifest& m) = 0;
    // The peer refused the package (it is removed from out/).
    virtual void OnRejected(const JobPackageManifest& m, const std::string& reason) = 0;
  };

  struct Options {
    std::string site_name;
    std::string out_dir;  // <root>/hotfolders/out
    std::vector<PeerConfig> peers;
    int64_t chunk_bytes = 1 << 20;
    int64_t max_rate_bytes_per_s = 0;  // 0: unlimited
    int64_t rescan_ms = 2000;
    // A package addressed to a site that is not a peer stays in out/ and
    // is reported once per package in the log.
  };

  Courier(Options options, Clock* clock, Listener* listener);
  ~Courier();  // Stop()s

  Status Start();
  void Stop();
  // A package was just written to out/: look now.
  void Kick();

  // Per-peer state and counters, for ListPeers.
  std::vector<frameflow::v1::PeerInfo> Peers() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ff
