// Peers: the other sites a site exchanges packages with, and how calls
// between sites are authenticated.
//
// Every SiteLink call carries the caller's site name, the time and an
// HMAC-SHA256 over both and the method name, keyed with the secret the two
// sites share (configured on both sides). The receiver recomputes the MAC
// with its own copy of that peer's secret: an unknown peer, a wrong MAC or
// a clock skew over kMaxAuthSkewMs is refused. The secret itself never
// crosses the wire. Where TLS certificates are configured the channel is
// TLS as well (server cert/key on the receiver, the CA on the caller).
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff {

struct PeerConfig {
  std::string name;             // the peer's site name ([A-Za-z0-9._-]{1,64})
  std::string address;          // host:port of the peer's schedule server
  std::string address_file;     // or: a file holding it, re-read on every connect
  std::string secret;           // shared secret, >= 16 bytes
  std::string tls_ca;           // PEM file: use TLS to this peer, trusting this CA
  std::string tls_server_name;  // override of the name checked in its certificate
};

inline constexpr int64_t kMaxAuthSkewMs = 5 * 60 * 1000;

// Lower-case hex HMAC-SHA256(secret, site + "\n" + method + "\n" + time).
std::string PeerMac(const std::string& secret, const std::string& site, const std::string& method,
                    int64_t unix_ms);

// Adds ff-peer, ff-time and ff-auth metadata to a client context.
void SignPeerCall(grpc::ClientContext* ctx, const std::string& my_site, const std::string& secret,
                  const std::string& method, int64_t unix_ms);

// Checks the metadata of an incoming call against the configured peers.
// Returns the caller's site name, or an error saying what is wrong (unknown
// peer 'x', bad signature, clock skew) that the caller logs and returns as
// UNAUTHENTICATED.
Result<std::string> VerifyPeerCall(const grpc::ServerContext& ctx,
                                   const std::vector<PeerConfig>& peers, const std::string& method,
                                   int64_t now_unix_ms);
// The same check on a call's metadata (what VerifyPeerCall reads from the
// context; the fuzz harness passes its own).
Result<std::string> VerifyPeerMetadata(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
    const std::vector<PeerConfig>& peers, const std::string& method, int64_t now_unix_ms);

// The address to dial for a peer (address, or the content of address_file).
Result<std::string> PeerAddress(const PeerConfig& peer);

// Channel credentials for a peer: TLS with its CA when tls_ca is set,
// insecure otherwise.
Result<std::shared_ptr<grpc::ChannelCredentials>> PeerCredentials(const PeerConfig& peer);

}  // namespace ff
