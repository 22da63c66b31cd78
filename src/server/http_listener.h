// HttpListener: a daemon's HTTP port. Today it serves
//   GET /healthz   "ok" while the daemon runs (for load balancers, systemd
//                  and `curl` in a wrangler's shell)
//   GET /metrics   the MetricsRegistry in Prometheus text format
// and the web monitor's pages and JSON API will be added here. It listens
// on its own thread; handlers must not block for long.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include "base/status.h"
#include "server/metrics.h"

namespace httplib {
class Server;
}

namespace ff {

class HttpListener {
 public:
  // Binds `listen` ("host:port", port 0 for any free port) and starts
  // serving. `metrics` may be null (no /metrics) and must outlive this.
  static Result<std::unique_ptr<HttpListener>> Start(const std::string& listen,
                                                     const MetricsRegistry* metrics);
  ~HttpListener();  // stops serving
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // "host:port" with the port actually bound.
  const std::string& address() const { return address_; }
  void Stop();

 private:
  HttpListener() = default;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
};

}  // namespace ff
