// The gRPC port of a daemon: one builder for every frameflow service, so
// message sizes, keepalive policy and transport security are set in one
// place (the security work adds mutual TLS here).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff {

struct HostPort {
  std::string host;
  int port = 0;
};
// "host:port" (port 0..65535; "[::1]:0" for IPv6) -> parts.
Result<HostPort> SplitListenAddress(const std::string& listen);

struct GrpcListenerOptions {
  std::string listen;    // "host:port"; port 0 binds any free port
  std::string what;      // the setting it came from, for errors ("schedule_server.listen")
  std::string tls_cert;  // PEM files; both set: the port serves TLS only
  std::string tls_key;
  int max_message_bytes = 64 << 20;
};

struct GrpcListener {
  std::unique_ptr<grpc::Server> server;
  std::string address;  // "host:port" with the port actually bound
};

// Builds and starts a server for `services` (not owned; they must outlive
// it). Render servers ping every 2 s to notice a hung schedule server; the
// port accepts those pings whatever gRPC's default ping policy is.
Result<GrpcListener> StartGrpcListener(const GrpcListenerOptions& options,
                                       const std::vector<grpc::Service*>& services);

// Writes `address` + "\n" to `path` atomically (render servers and clients
// read it to find a daemon whose port was 0).
Status WriteAddressFile(const std::string& path, const std::string& address);

}  // namespace ff
