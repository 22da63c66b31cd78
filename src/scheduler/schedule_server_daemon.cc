#include "scheduler/schedule_server_daemon.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "util/fs.h"

namespace ff {

Result<std::unique_ptr<ScheduleServerDaemon>> ScheduleServerDaemon::Start(
    const SiteConfig& config) {
  std::unique_ptr<ScheduleServerDaemon> d(new ScheduleServerDaemon(config));
  FF_RETURN_IF_ERROR(MakeDirs(config.root));
  FF_ASSIGN_OR_RETURN(d->scheduler_, Scheduler::Open(config, SystemClock::Default()));
  if (config.has_peers()) {
    d->exchange_ =
        std::make_unique<SiteExchange>(d->scheduler_.get(), config, SystemClock::Default());
  }
  d->service_ = std::make_unique<ScheduleService>(d->scheduler_.get(), d->exchange_.get());
  d->render_link_ = std::make_unique<RenderLinkService>(d->scheduler_.get());
  std::vector<grpc::Service*> services = {d->service_.get(), d->render_link_.get()};
  if (d->exchange_) services.push_back(d->exchange_->service());
  GrpcListenerOptions grpc;
  grpc.listen = config.listen;
  grpc.what = "schedule_server.listen";
  grpc.tls_cert = config.tls_cert;
  grpc.tls_key = config.tls_key;
  FF_ASSIGN_OR_RETURN(d->grpc_, StartGrpcListener(grpc, services));
  FF_RETURN_IF_ERROR(WriteAddressFile(config.address_file(), d->grpc_.address));
  d->scheduler_->Start();
  if (d->exchange_) FF_RETURN_IF_ERROR(d->exchange_->Start());
  d->AddMetrics();
  if (!config.web_listen.empty()) {
    FF_ASSIGN_OR_RETURN(d->http_, HttpListener::Start(config.web_listen, &d->metrics_));
    FF_RETURN_IF_ERROR(WriteAddressFile(config.web_address_file(), d->http_->address()));
    spdlog::info("HTTP (/healthz, /metrics) on {}", d->http_->address());
  }
  spdlog::info("schedule server of site '{}' listening on {} (root {})", config.site_name,
               d->grpc_.address, config.root);
  return d;
}

void ScheduleServerDaemon::AddMetrics() {
  Scheduler* s = scheduler_.get();
  metrics_.AddGaugeCallback("frameflow_jobs_unfinished", "Jobs not yet done, failed or cancelled.",
                            [s] { return static_cast<int64_t>(s->ListJobs(false).size()); });
  metrics_.AddGaugeCallback("frameflow_render_servers", "Render servers known to the site.",
                            [s] { return static_cast<int64_t>(s->ListHosts().hosts_size()); });
}

void ScheduleServerDaemon::Stop() {
  if (stopped_) return;
  stopped_ = true;
  spdlog::info("schedule server stopping");
  if (http_) http_->Stop();
  if (service_) service_->Shutdown();
  if (render_link_) render_link_->Shutdown();
  if (exchange_) exchange_->Stop();
  if (grpc_.server)
    grpc_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (scheduler_) scheduler_->Stop();
  ::unlink(config_.address_file().c_str());
  if (http_) ::unlink(config_.web_address_file().c_str());
}

ScheduleServerDaemon::~ScheduleServerDaemon() { Stop(); }

}  // namespace ff
