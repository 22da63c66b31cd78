#include "server/grpc_listener.h"

#include <charconv>

#include "util/fs.h"

namespace ff {

Result<HostPort> SplitListenAddress(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return InvalidArgument("'" + listen + "' is not host:port");
  }
  HostPort hp;
  hp.host = listen.substr(0, colon);
  if (hp.host.size() > 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  const std::string port = listen.substr(colon + 1);
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), hp.port);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || hp.port < 0 ||
      hp.port > 65535) {
    return InvalidArgument("'" + listen + "': the port must be a number from 0 to 65535");
  }
  return hp;
}

Result<GrpcListener> StartGrpcListener(const GrpcListenerOptions& o,
                                       const std::vector<grpc::Service*>& services) {
  grpc::ServerBuilder builder;
  int port = 0;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!o.tls_cert.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    FF_ASSIGN_OR_RETURN(pair.cert_chain, ReadFile(o.tls_cert));
    FF_ASSIGN_OR_RETURN(pair.private_key, ReadFile(o.tls_key));
    ssl.pem_key_cert_pairs.push_back(std::move(pair));
    creds = grpc::SslServerCredentials(ssl);
  }
  builder.AddListeningPort(o.listen, creds, &port);
  for (grpc::Service* s : services) builder.RegisterService(s);
  builder.SetMaxReceiveMessageSize(o.max_message_bytes);
  builder.SetMaxSendMessageSize(o.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  GrpcListener out;
  out.server = builder.BuildAndStart();
  if (!out.server || port == 0) {
    return Unavailable("cannot listen on '" + o.listen + "' (" + o.what +
                       "): address in use or invalid");
  }
  out.address = o.listen.substr(0, o.listen.rfind(':')) + ":" + std::to_string(port);
  return out;
}

Status WriteAddressFile(const std::string& path, const std::string& address) {
  return WriteFileAtomic(path, address + "\n");
}

}  // namespace ff
