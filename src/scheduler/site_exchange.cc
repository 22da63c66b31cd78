#include "scheduler/site_exchange.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <set>

#include "transfer/result_report.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

SiteExchange::SiteExchange(Scheduler* scheduler, const SiteConfig& config, Clock* clock)
    : scheduler_(scheduler), config_(config), clock_(clock) {
  SiteLinkService::Options so;
  so.site_name = config_.site_name;
  so.peers = config_.peers;
  so.in_dir = config_.hotfolder_in();
  so.quarantine_dir = config_.quarantine_dir();
  so.limits = config_.limits;
  service_ = std::make_unique<SiteLinkService>(so, scheduler_->blobs(), this, clock_);
  Courier::Options co;
  co.site_name = config_.site_name;
  co.out_dir = config_.hotfolder_out();
  co.peers = config_.peers;
  co.chunk_bytes = config_.courier_chunk_bytes;
  co.max_rate_bytes_per_s = config_.courier_max_rate;
  courier_ = std::make_unique<Courier>(co, clock_, this);
}

SiteExchange::~SiteExchange() { Stop(); }

Status SiteExchange::Start() {
  for (const std::string& d :
       {config_.hotfolder_in(), config_.hotfolder_out(), config_.quarantine_dir()}) {
    FF_RETURN_IF_ERROR(MakeDirs(d));
  }
  // A package renamed for deletion before a crash: finish the deletion.
  FF_ASSIGN_OR_RETURN(auto names, ListDir(config_.hotfolder_in()));
  for (const auto& n : names) {
    if (n.rfind(".done-", 0) == 0) (void)RemoveAll(JoinPath(config_.hotfolder_in(), n));
  }
  FF_ASSIGN_OR_RETURN(in_watcher_, HotFolderWatcher::Open(config_.hotfolder_in()));
  scheduler_->SetPeerDirectory(this);
  FF_RETURN_IF_ERROR(courier_->Start());
  work_thread_ = std::thread([this] { WorkLoop(); });
  ingest_thread_ = std::thread([this] { IngestLoop(); });
  return Status::Ok();
}

void SiteExchange::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (in_watcher_) in_watcher_->Stop();
  if (work_thread_.joinable()) work_thread_.join();
  if (ingest_thread_.joinable()) ingest_thread_.join();
  courier_->Stop();
}

std::vector<pb::PeerInfo> SiteExchange::Peers() const { return courier_->Peers(); }

void SiteExchange::Kick() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    kicked_ = true;
  }
  cv_.notify_all();
}

// ------------------------------------------------------------- peers ---

Result<std::unique_ptr<pb::SiteLink::Stub>> SiteExchange::StubFor(const PeerConfig& peer) {
  FF_ASSIGN_OR_RETURN(std::string address, PeerAddress(peer));
  FF_ASSIGN_OR_RETURN(auto creds, PeerCredentials(peer));
  grpc::ChannelArguments args;
  if (!peer.tls_server_name.empty()) {
    args.SetSslTargetNameOverride(peer.tls_server_name);
  }
  auto channel = grpc::CreateCustomChannel(address, creds, args);
  return pb::SiteLink::NewStub(channel);
}

std::vector<PeerQuote> SiteExchange::Quote(const std::string& profile_toml,
                                           const std::vector<std::string>& peers) {
  std::vector<std::future<PeerQuote>> pending;
  for (const std::string& name : peers) {
    const PeerConfig* peer = config_.FindPeer(name);
    if (!peer) continue;
    pending.push_back(std::async(std::launch::async, [this, peer, profile_toml] {
      PeerQuote q;
      q.peer = peer->name;
      auto stub = StubFor(*peer);
      if (!stub.ok()) {
        q.error = stub.status().message();
        return q;
      }
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(config_.quote_timeout_ms));
      SignPeerCall(&ctx, config_.site_name, peer->secret, "Quote", clock_->UnixMillis());
      pb::QuoteRequest req;
      req.set_description(profile_toml);
      grpc::Status st = (*stub)->Quote(&ctx, req, &q.quote);
      if (st.ok()) {
        q.reachable = true;
      } else {
        q.error = st.error_message().empty() ? "gRPC code " + std::to_string(st.error_code())
                                             : st.error_message();
      }
      return q;
    }));
  }
  std::vector<PeerQuote> out;
  for (auto& f : pending) out.push_back(f.get());
  return out;
}

void SiteExchange::PollPeers() {
  for (auto& [peer_name, ids] : scheduler_->PollableOutsourcedJobs()) {
    const PeerConfig* peer = config_.FindPeer(peer_name);
    if (!peer) continue;
    auto stub = StubFor(*peer);
    if (!stub.ok()) continue;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    SignPeerCall(&ctx, config_.site_name, peer->secret, "RemoteJobs", clock_->UnixMillis());
    pb::RemoteJobsRequest req;
    for (int64_t id : ids) req.add_origin_job_ids(id);
    pb::RemoteJobsResponse resp;
    grpc::Status st = (*stub)->RemoteJobs(&ctx, req, &resp);
    if (!st.ok()) {
      spdlog::debug("progress of jobs at {}: {}", peer_name, st.error_message());
      continue;
    }
    for (const auto& s : resp.jobs()) scheduler_->OnRemoteStatus(s.origin_job_id(), s);
  }
}

pb::QuoteResponse SiteExchange::Quote(const std::string& peer, const pb::QuoteRequest& req) {
  (void)peer;
  return scheduler_->Quote(req.description());
}

pb::RemoteJobsResponse SiteExchange::RemoteJobs(const std::string& peer,
                                                const pb::RemoteJobsRequest& req) {
  return scheduler_->RemoteJobs(peer, req);
}

bool SiteExchange::AlreadyIngested(const std::string& peer, const std::string& name) {
  // Job packages are named job-<origin site>-<origin job id>.
  const std::string prefix = "job-" + peer + "-";
  if (name.rfind(prefix, 0) != 0) return false;
  try {
    size_t used = 0;
    const std::string rest = name.substr(prefix.size());
    const int64_t id = std::stoll(rest, &used);
    if (used != rest.size()) return false;
    return scheduler_->HasRemoteJob(peer, id);
  } catch (const std::exception&) {
    return false;
  }
}

// ----------------------------------------------------------- courier ---

void SiteExchange::OnDelivered(const JobPackageManifest& m) {
  spdlog::info("package {} delivered to {}", m.name, m.to_site);
  if (m.kind == JobPackageKind::kJob) scheduler_->OnJobDelivered(m.origin_job_id, m.to_site);
}

void SiteExchange::OnRejected(const JobPackageManifest& m, const std::string& reason) {
  spdlog::warn("package {} refused by {}: {}", m.name, m.to_site, reason);
  if (m.kind == JobPackageKind::kJob) scheduler_->OnJobRejected(m.origin_job_id, m.to_site, reason);
}

// --------------------------------------------------------------- work ---

void SiteExchange::WorkLoop() {
  int64_t next_poll = 0;
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    kicked_ = false;
    lock.unlock();
    for (const ExchangeTask& t : scheduler_->TakeExchangeTasks()) {
      Status st = DoTask(t);
      if (!st.ok()) {
        spdlog::error("job {}: hot-folder step failed (will retry): {}", t.job.id, st.message());
        scheduler_->ReleaseExchangeTask(t.job.id);
      }
    }
    if (clock_->MonotonicMillis() >= next_poll) {
      PollPeers();
      next_poll = clock_->MonotonicMillis() + config_.remote_poll_ms;
    }
    lock.lock();
    const int64_t wait = std::max<int64_t>(next_poll - clock_->MonotonicMillis(), 1);
    // Failed tasks are retried on the next kick or poll period.
    cv_.wait_for(lock, std::chrono::milliseconds(wait), [&] { return stopping_ || kicked_; });
  }
}

Status SiteExchange::DoTask(const ExchangeTask& t) {
  switch (t.kind) {
    case ExchangeTask::kSendJob:
      return SendJob(t);
    case ExchangeTask::kSendCancel:
      return SendCancel(t);
    case ExchangeTask::kReturnResult:
      return ReturnResult(t);
  }
  return Internal("unknown exchange task");
}

JobPackageManifest SiteExchange::OutsourcedJobManifest(JobPackageKind kind,
                                                       const std::string& prefix,
                                                       const JobRecord& job) const {
  JobPackageManifest m;
  m.kind = kind;
  m.name = prefix + "-" + config_.site_name + "-" + std::to_string(job.id);
  m.origin_site = config_.site_name;
  m.origin_job_id = job.id;
  m.from_site = config_.site_name;
  m.to_site = job.remote_site;
  m.client = job.client.empty() ? config_.site_name : job.client;
  m.created_ms = clock_->UnixMillis();
  return m;
}

Status SiteExchange::SendJob(const ExchangeTask& t) {
  JobPackageManifest m = OutsourcedJobManifest(JobPackageKind::kJob, "job", t.job);
  m.description = "job.toml";
  std::vector<JobPackageSource> sources;
  sources.push_back(JobPackageSource{"job.toml", "", t.description});
  for (const JobFile& f : t.job.files) {
    sources.push_back(
        JobPackageSource{"files/" + f.path, scheduler_->blobs()->PathOf(f.sha256), ""});
  }
  FF_RETURN_IF_ERROR(WritePackage(config_.hotfolder_out(), m, sources).status());
  FF_RETURN_IF_ERROR(scheduler_->MarkJobPackaged(t.job.id, m.name));
  courier_->Kick();
  return Status::Ok();
}

Status SiteExchange::SendCancel(const ExchangeTask& t) {
  JobPackageManifest m = OutsourcedJobManifest(JobPackageKind::kCancel, "cancel", t.job);
  m.reason = t.job.error;
  FF_RETURN_IF_ERROR(WritePackage(config_.hotfolder_out(), m, {}).status());
  FF_RETURN_IF_ERROR(scheduler_->MarkCancelSent(t.job.id));
  courier_->Kick();
  return Status::Ok();
}

Status SiteExchange::ReturnResult(const ExchangeTask& t) {
  const std::string secure = scheduler_->SecureDir(t.job.client, t.job.id);
  const std::string out = JoinPath(secure, "output");
  FF_RETURN_IF_ERROR(MakeDirs(JoinPath(out, "logs"), 0700));
  std::vector<JobPackageSource> sources;
  ResultReport report;
  report.site = config_.site_name;
  report.job_id = t.job.id;
  report.origin_site = t.job.origin_site;
  report.origin_job_id = t.job.origin_job_id;
  report.state = JobStateName(t.job.state);
  report.error = t.job.error;
  // Results are stored in the secure location first, then packaged from there.
  std::set<std::string> dirs = {out, JoinPath(out, "logs")};
  for (const auto& f : t.frames) {
    const std::string stored = JoinPath(out, f.name);
    if (!PathExists(stored)) {
      FF_RETURN_IF_ERROR(MakeDirs(DirName(stored), 0700));
      dirs.insert(DirName(stored));
      FF_RETURN_IF_ERROR(LinkOrCopy(f.file, stored, DirSync::kByCaller));
    }
    sources.push_back(JobPackageSource{"frames/" + f.name, stored, ""});
    report.frames.push_back(
        {f.frame, "frames/" + f.name, f.sha256, f.size, f.render_server, f.chunk});
  }
  for (const ChunkRecord& c : t.chunks) {
    ResultReport::Chunk rc{c.index,
                           c.frames,
                           ChunkStateName(c.state),
                           c.render_server,
                           c.slot,
                           c.attempts,
                           c.exit_code,
                           c.started_at,
                           c.ended_at,
                           c.error,
                           ""};
    if (!c.log_path.empty()) {
      const std::string from = JoinPath(config_.storage_dir(), c.log_path);
      const std::string name = "chunk-" + std::to_string(c.index) + ".log";
      const std::string stored = JoinPath(JoinPath(out, "logs"), name);
      if (PathExists(from)) {
        if (!PathExists(stored)) FF_RETURN_IF_ERROR(LinkOrCopy(from, stored, DirSync::kByCaller));
        sources.push_back(JobPackageSource{"logs/" + name, stored, ""});
        rc.log = "logs/" + name;
      }
    }
    report.chunks.push_back(std::move(rc));
  }
  for (const std::string& d : dirs) FF_RETURN_IF_ERROR(SyncDir(d));
  sources.push_back(JobPackageSource{"report.json", "", ResultReportToJson(report)});

  JobPackageManifest m;
  m.kind = JobPackageKind::kResult;
  m.name = "result-" + config_.site_name + "-" + t.job.origin_site + "-" +
           std::to_string(t.job.origin_job_id);
  m.origin_site = t.job.origin_site;
  m.origin_job_id = t.job.origin_job_id;
  m.from_site = config_.site_name;
  m.to_site = t.job.origin_site;
  m.client = t.job.client;
  m.created_ms = clock_->UnixMillis();
  m.state = JobStateName(t.job.state);
  m.reason = t.job.error;
  m.remote_job_id = t.job.id;
  FF_RETURN_IF_ERROR(WritePackage(config_.hotfolder_out(), m, sources).status());
  FF_RETURN_IF_ERROR(scheduler_->MarkResultReturned(t.job.id, m.name));
  courier_->Kick();
  return Status::Ok();
}

void SiteExchange::SendRejection(const JobPackageManifest& m, const std::string& reason) {
  if (m.kind != JobPackageKind::kJob || !config_.FindPeer(m.from_site)) return;
  JobPackageManifest r;
  r.kind = JobPackageKind::kRejection;
  r.name = "rejection-" + config_.site_name + "-" + m.name;
  if (r.name.size() > 128) r.name = r.name.substr(0, 128);
  r.origin_site = m.origin_site;
  r.origin_job_id = m.origin_job_id;
  r.from_site = config_.site_name;
  r.to_site = m.from_site;
  r.client = m.client;
  r.created_ms = clock_->UnixMillis();
  r.reason = reason;
  auto st = WritePackage(config_.hotfolder_out(), r, {});
  if (!st.ok()) {
    spdlog::error("cannot write the rejection of {}: {}", m.name, st.status().message());
    return;
  }
  courier_->Kick();
}

// ------------------------------------------------------------- ingest ---

void SiteExchange::IngestLoop() {
  while (true) {
    auto names = ListPackages(config_.hotfolder_in());
    if (names.ok()) {
      for (const auto& n : *names) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (stopping_) return;
        }
        IngestOne(n);
      }
    } else {
      spdlog::error("cannot list hotfolders/in: {}", names.status().message());
    }
    if (!in_watcher_->Wait(2000)) return;
  }
}

void SiteExchange::IngestIncoming() {
  auto names = ListPackages(config_.hotfolder_in());
  if (!names.ok()) {
    spdlog::error("cannot list hotfolders/in: {}", names.status().message());
    return;
  }
  for (const auto& n : *names) IngestOne(n);
}

void SiteExchange::Quarantine(const std::string& dir, const std::string& reason) {
  auto moved = QuarantinePackage(dir, config_.quarantine_dir(), reason);
  if (moved.ok()) {
    spdlog::warn("package {} quarantined in {}: {}", BaseName(dir), *moved, reason);
  } else {
    spdlog::error("package {} is bad ({}) and cannot be quarantined: {}", BaseName(dir), reason,
                  moved.status().message());
  }
}

void SiteExchange::IngestOne(const std::string& name) {
  const std::string dir = JoinPath(config_.hotfolder_in(), name);
  auto m = VerifyPackage(dir, config_.limits);
  if (!m.ok()) {
    // Said to the origin too: without this site's paths.
    std::string reason = m.status().message();
    for (size_t at; (at = reason.find(config_.hotfolder_in() + "/")) != std::string::npos;) {
      reason.erase(at, config_.hotfolder_in().size() + 1);
    }
    // Tell the origin if the manifest at least says who it is.
    auto text = ReadFile(JoinPath(dir, "manifest.json"));
    Quarantine(dir, reason);
    if (text.ok()) {
      auto parsed = ParseManifest(*text, name + "/manifest.json");
      if (parsed.ok() && parsed->to_site == config_.site_name) SendRejection(*parsed, reason);
    }
    return;
  }
  Status st = Ingest(*m, dir);
  if (!st.ok()) {
    if (st.code() == StatusCode::kUnavailable || st.code() == StatusCode::kIoError ||
        IsDiskFull(st)) {
      // Not the package's fault (e.g. a full disk): leave it for the next pass.
      spdlog::error("package {}: cannot ingest now: {}", name, st.message());
      return;
    }
    Quarantine(dir, st.message());
    SendRejection(*m, st.message());
    return;
  }
  // Done: out of the hot folder. Renamed first, so a crash mid-delete
  // leaves a dot-name (removed at the next start), not a half package.
  const std::string gone = JoinPath(config_.hotfolder_in(), ".done-" + name);
  if (RenameDurable(dir, gone).ok()) (void)RemoveAll(gone);
}

Status SiteExchange::Ingest(const JobPackageManifest& m, const std::string& dir) {
  if (m.to_site != config_.site_name) {
    return InvalidArgument("addressed to site '" + m.to_site + "', this is '" + config_.site_name +
                           "'");
  }
  if (!config_.FindPeer(m.from_site)) {
    return InvalidArgument("from site '" + m.from_site + "', which is not a peer of '" +
                           config_.site_name + "'");
  }
  switch (m.kind) {
    case JobPackageKind::kJob: {
      FF_ASSIGN_OR_RETURN(int64_t id, scheduler_->AcceptRemoteJob(m, dir));
      spdlog::info("package {} from {}: job {} in the active queue", m.name, m.from_site, id);
      return Status::Ok();
    }
    case JobPackageKind::kResult:
      return scheduler_->CompleteOutsourcedJob(m, dir);
    case JobPackageKind::kCancel:
      return scheduler_->CancelFromOrigin(m);
    case JobPackageKind::kRejection:
      return scheduler_->RejectedByPeer(m);
  }
  return InvalidArgument("unknown package kind");
}

}  // namespace ff
