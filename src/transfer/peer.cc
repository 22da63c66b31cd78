#include "transfer/peer.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <string_view>

#include "util/fs.h"

namespace ff {

namespace {

constexpr char kPeerKey[] = "ff-peer";
constexpr char kTimeKey[] = "ff-time";
constexpr char kAuthKey[] = "ff-auth";
constexpr size_t kMinSecretBytes = 16;

std::string ToHex(const unsigned char* bytes, unsigned int len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 0xf]);
  }
  return out;
}

// The single value of a metadata key: NotFound when absent, an error when
// repeated (a second value could otherwise smuggle past the check).
Result<std::string> MetadataValue(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                                  const char* key) {
  auto range = md.equal_range(grpc::string_ref(key));
  if (range.first == range.second) return NotFound(std::string("missing ") + key + " metadata");
  auto next = range.first;
  if (++next != range.second) {
    return InvalidArgument(std::string("repeated ") + key + " metadata");
  }
  return std::string(range.first->second.data(), range.first->second.size());
}

bool ParseInt64(std::string_view s, int64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    // Nineteen digits may exceed int64 (the header comes before any check).
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, c - '0', &v)) return false;
  }
  *out = v;
  return true;
}

std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(c >= 0x20 && c < 0x7f ? c : '?');
  return out;
}

}  // namespace

std::string PeerMac(const std::string& secret, const std::string& site, const std::string& method,
                    int64_t unix_ms) {
  const std::string message = site + "\n" + method + "\n" + std::to_string(unix_ms);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac,
           &len) == nullptr) {
    // Only an allocation failure or a broken libcrypto gets here.
    std::abort();
  }
  return ToHex(mac, len);
}

void SignPeerCall(grpc::ClientContext* ctx, const std::string& my_site, const std::string& secret,
                  const std::string& method, int64_t unix_ms) {
  ctx->AddMetadata(kPeerKey, my_site);
  ctx->AddMetadata(kTimeKey, std::to_string(unix_ms));
  ctx->AddMetadata(kAuthKey, PeerMac(secret, my_site, method, unix_ms));
}

Result<std::string> VerifyPeerCall(const grpc::ServerContext& ctx,
                                   const std::vector<PeerConfig>& peers, const std::string& method,
                                   int64_t now_unix_ms) {
  return VerifyPeerMetadata(ctx.client_metadata(), peers, method, now_unix_ms);
}

Result<std::string> VerifyPeerMetadata(const std::multimap<grpc::string_ref, grpc::string_ref>& md,
                                       const std::vector<PeerConfig>& peers,
                                       const std::string& method, int64_t now_unix_ms) {
  FF_ASSIGN_OR_RETURN(std::string site, MetadataValue(md, kPeerKey));
  const PeerConfig* peer = nullptr;
  for (const PeerConfig& p : peers) {
    if (p.name == site) peer = &p;
  }
  if (peer == nullptr) return NotFound("unknown peer '" + Printable(site) + "'");
  if (peer->secret.size() < kMinSecretBytes) {
    return FailedPrecondition("peer '" + site + "' has no usable shared secret configured here");
  }
  FF_ASSIGN_OR_RETURN(std::string time_text, MetadataValue(md, kTimeKey));
  int64_t t = 0;
  if (!ParseInt64(time_text, &t)) {
    return InvalidArgument("peer '" + site + "': ff-time '" + Printable(time_text) +
                           "' is not unix milliseconds");
  }
  int64_t skew = now_unix_ms > t ? now_unix_ms - t : t - now_unix_ms;
  if (skew > kMaxAuthSkewMs) {
    return FailedPrecondition("peer '" + site + "': clock skew of " + std::to_string(skew) +
                              " ms exceeds " + std::to_string(kMaxAuthSkewMs) + " ms");
  }
  FF_ASSIGN_OR_RETURN(std::string got, MetadataValue(md, kAuthKey));
  const std::string want = PeerMac(peer->secret, site, method, t);
  if (got.size() != want.size() || CRYPTO_memcmp(got.data(), want.data(), want.size()) != 0) {
    return InvalidArgument("peer '" + site + "': bad signature for " + method +
                           " (do both sites have the same shared secret?)");
  }
  return site;
}

Result<std::string> PeerAddress(const PeerConfig& peer) {
  if (!peer.address.empty()) return peer.address;
  if (peer.address_file.empty()) {
    return InvalidArgument("peer '" + peer.name + "': neither address nor address_file is set");
  }
  Result<std::string> text = ReadFile(peer.address_file);
  if (!text.ok()) return text.status().WithContext("peer '" + peer.name + "': address_file");
  std::string_view a = *text;
  while (!a.empty() &&
         (a.front() == ' ' || a.front() == '\t' || a.front() == '\n' || a.front() == '\r')) {
    a.remove_prefix(1);
  }
  while (!a.empty() &&
         (a.back() == ' ' || a.back() == '\t' || a.back() == '\n' || a.back() == '\r')) {
    a.remove_suffix(1);
  }
  if (a.empty()) {
    return Unavailable("peer '" + peer.name + "': address_file '" + peer.address_file +
                       "' is empty");
  }
  if (a.find_first_of(" \t\r\n") != std::string_view::npos) {
    return InvalidArgument("peer '" + peer.name + "': address_file '" + peer.address_file +
                           "' holds more than one address");
  }
  return std::string(a);
}

Result<std::shared_ptr<grpc::ChannelCredentials>> PeerCredentials(const PeerConfig& peer) {
  if (peer.tls_ca.empty()) return grpc::InsecureChannelCredentials();
  Result<std::string> pem = ReadFile(peer.tls_ca);
  if (!pem.ok()) return pem.status().WithContext("peer '" + peer.name + "': tls_ca");
  if (pem->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return InvalidArgument("peer '" + peer.name + "': tls_ca '" + peer.tls_ca +
                           "' holds no PEM certificate");
  }
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *pem;
  return grpc::SslCredentials(options);
}

}  // namespace ff
