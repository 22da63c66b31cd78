// SiteExchange: a schedule server's side of outsourcing — everything that
// moves through hot folders between this site and its peers.
//
//  - Writes packages into hotfolders/out for the scheduler's ExchangeTasks:
//    job packages of outsourced jobs, cancel packages, and (at a remote
//    site) result packages, after storing the results in the job's secure
//    location. The courier ships them to the peers.
//  - Watches hotfolders/in (inotify) and ingests every package there, from
//    the link or dropped by hand alike: verifies it (VerifyPackage), checks
//    it is addressed to this site by a peer, and hands it to the scheduler.
//    A bad package is moved to hotfolders/quarantine/ with a reason file,
//    and a job package's origin gets a rejection package saying why.
//    A package leaves hotfolders/in only after the scheduler has made its
//    effect durable (renamed to a dot-name first, so a crash mid-delete
//    never leaves a half package that looks bad).
//  - Asks peers for quotes (auto placement) and polls the progress of
//    outsourced jobs (RemoteJobs), and answers both for its peers
//    (SiteLinkService::Handler).
//
// Thread-safety: Start/Stop from the owner; the rest from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "scheduler/scheduler.h"
#include "scheduler/site_config.h"
#include "transfer/courier.h"
#include "transfer/hot_folder.h"
#include "transfer/site_link_service.h"

namespace ff {

class SiteExchange final : public PeerDirectory,
                           public Courier::Listener,
                           public SiteLinkService::Handler {
 public:
  // `scheduler` must outlive the exchange.
  SiteExchange(Scheduler* scheduler, const SiteConfig& config, Clock* clock);
  ~SiteExchange() override;

  // Creates the hot folders, connects to the scheduler and starts the
  // courier and the exchange's threads.
  Status Start();
  // Stops the threads and the courier; packages in flight stay where they
  // are and are picked up again at the next start.
  void Stop();

  // Ingests every package now in hotfolders/in, as the ingest thread does
  // on each change (for the fuzz harness, on an exchange not started).
  void IngestIncoming();

  // The SiteLink service to register on the schedule server's gRPC server.
  SiteLinkService* service() { return service_.get(); }
  std::vector<frameflow::v1::PeerInfo> Peers() const;

  // PeerDirectory
  std::vector<PeerQuote> Quote(const std::string& profile_toml,
                               const std::vector<std::string>& peers) override;
  void Kick() override;

  // Courier::Listener
  void OnDelivered(const JobPackageManifest& m) override;
  void OnRejected(const JobPackageManifest& m, const std::string& reason) override;

  // SiteLinkService::Handler
  frameflow::v1::QuoteResponse Quote(const std::string& peer,
                                     const frameflow::v1::QuoteRequest& req) override;
  frameflow::v1::RemoteJobsResponse RemoteJobs(
      const std::string& peer, const frameflow::v1::RemoteJobsRequest& req) override;
  bool AlreadyIngested(const std::string& peer, const std::string& name) override;

 private:
  void WorkLoop();
  void IngestLoop();
  // Ingests one package of hotfolders/in; every outcome removes it from
  // there (done, or quarantined).
  void IngestOne(const std::string& name);
  Status Ingest(const JobPackageManifest& m, const std::string& dir);
  void Quarantine(const std::string& dir, const std::string& reason);
  Status DoTask(const ExchangeTask& t);
  // The manifest of a job or cancel package about this site's job `job`,
  // named <prefix>-<site>-<job id>.
  JobPackageManifest OutsourcedJobManifest(JobPackageKind kind, const std::string& prefix,
                                           const JobRecord& job) const;
  Status SendJob(const ExchangeTask& t);
  Status SendCancel(const ExchangeTask& t);
  Status ReturnResult(const ExchangeTask& t);
  void PollPeers();
  // Writes a rejection package for the sender of a job package.
  void SendRejection(const JobPackageManifest& m, const std::string& reason);
  // A stub to a peer's SiteLink, and the signed context for one call.
  Result<std::unique_ptr<frameflow::v1::SiteLink::Stub>> StubFor(const PeerConfig& peer);

  Scheduler* const scheduler_;
  const SiteConfig config_;
  Clock* const clock_;
  std::unique_ptr<SiteLinkService> service_;
  std::unique_ptr<Courier> courier_;
  std::unique_ptr<HotFolderWatcher> in_watcher_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool kicked_ = false;    // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread work_thread_;
  std::thread ingest_thread_;
};

}  // namespace ff
