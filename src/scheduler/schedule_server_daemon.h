// ScheduleServerDaemon: a site's schedule server as a process, assembled on
// the daemon base (src/server): the Scheduler over the site's resource
// database, the site exchange when the site has peers, the gRPC port
// (client API, file service, render-server link, site link), the address
// file, and the HTTP port (/healthz, /metrics) when [web] listen is set.
#pragma once

#include <memory>

#include "base/status.h"
#include "scheduler/render_link_service.h"
#include "scheduler/scheduler.h"
#include "scheduler/service.h"
#include "scheduler/site_config.h"
#include "scheduler/site_exchange.h"
#include "server/grpc_listener.h"
#include "server/http_listener.h"
#include "server/metrics.h"

namespace ff {

class ScheduleServerDaemon {
 public:
  // Opens the site, listens on config.listen (port 0 picks one), writes the
  // bound address to <root>/schedule-server.addr and starts serving.
  static Result<std::unique_ptr<ScheduleServerDaemon>> Start(const SiteConfig& config);
  // Stops serving: streams and watchers return, pending state is written,
  // the address file is removed. Idempotent.
  void Stop();
  ~ScheduleServerDaemon();

  const std::string& address() const { return grpc_.address; }

 private:
  explicit ScheduleServerDaemon(SiteConfig config) : config_(std::move(config)) {}
  void AddMetrics();

  const SiteConfig config_;
  MetricsRegistry metrics_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<SiteExchange> exchange_;
  std::unique_ptr<ScheduleService> service_;
  std::unique_ptr<RenderLinkService> render_link_;
  GrpcListener grpc_;
  std::unique_ptr<HttpListener> http_;
  bool stopped_ = false;
};

}  // namespace ff
