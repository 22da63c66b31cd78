// The gRPC face of a schedule server's client API and file service,
// delegating to Scheduler (the render servers' stream is
// render_link_service.h). Converts ff::Status to gRPC codes at this edge.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "base/status.h"
#include "rpc/services.h"
#include "scheduler/scheduler.h"
#include "scheduler/site_exchange.h"

namespace ff {

class ScheduleService final : public frameflow::v1::ScheduleServer::Service {
 public:
  // `exchange` may be null (a site without peers).
  explicit ScheduleService(Scheduler* scheduler, SiteExchange* exchange = nullptr)
      : scheduler_(scheduler), exchange_(exchange) {}

  // Makes every open render server stream and watcher return promptly.
  void Shutdown() { shutting_down_ = true; }

  grpc::Status Submit(grpc::ServerContext*, const frameflow::v1::SubmitRequest*,
                      frameflow::v1::SubmitResponse*) override;
  grpc::Status ValidateJob(grpc::ServerContext*, const frameflow::v1::ValidateJobRequest*,
                           frameflow::v1::ValidateJobResponse*) override;
  grpc::Status GetJob(grpc::ServerContext*, const frameflow::v1::JobRef*,
                      frameflow::v1::JobInfo*) override;
  grpc::Status ListJobs(grpc::ServerContext*, const frameflow::v1::ListJobsRequest*,
                        frameflow::v1::ListJobsResponse*) override;
  grpc::Status WatchJob(grpc::ServerContext*, const frameflow::v1::JobRef*,
                        grpc::ServerWriter<frameflow::v1::JobEvent>*) override;
  grpc::Status CancelJob(grpc::ServerContext*, const frameflow::v1::JobRef*,
                         frameflow::v1::JobInfo*) override;
  grpc::Status GetLogs(grpc::ServerContext*, const frameflow::v1::LogsRequest*,
                       frameflow::v1::LogsResponse*) override;
  grpc::Status ListOutputs(grpc::ServerContext*, const frameflow::v1::JobRef*,
                           frameflow::v1::OutputsResponse*) override;
  grpc::Status ListHosts(grpc::ServerContext*, const frameflow::v1::ListHostsRequest*,
                         frameflow::v1::ListHostsResponse*) override;
  grpc::Status ListPeers(grpc::ServerContext*, const frameflow::v1::ListPeersRequest*,
                         frameflow::v1::ListPeersResponse*) override;
  grpc::Status HaveBlobs(grpc::ServerContext*, const frameflow::v1::HaveBlobsRequest*,
                         frameflow::v1::HaveBlobsResponse*) override;
  grpc::Status UploadBlob(grpc::ServerContext*, grpc::ServerReader<frameflow::v1::BlobChunk>*,
                          frameflow::v1::BlobRef*) override;
  grpc::Status DownloadBlob(grpc::ServerContext*, const frameflow::v1::DownloadBlobRequest*,
                            grpc::ServerWriter<frameflow::v1::BlobChunk>*) override;

 private:
  Scheduler* scheduler_;
  SiteExchange* exchange_;
  std::atomic<bool> shutting_down_{false};
};

}  // namespace ff
