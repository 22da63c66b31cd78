// Scheduler: placement of new jobs (local, remote, auto) and the
// scheduler's side of the hot-folder exchange with peers. See
// docs/outsourcing.md for the queues and the exchange states.
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <stdexcept>

#include "scheduler/placement_policy.h"
#include "scheduler/scheduler.h"
#include "transfer/result_report.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

// Seconds per frame assumed for a package no frame of which was measured on
// this site yet.
constexpr double kDefaultFrameSeconds = 10.0;

// Creates `dir` (and missing parents) with mode 0700 and makes sure it is 0700.
Status MakePrivateDir(const std::string& dir) {
  FF_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  if (::chmod(dir.c_str(), 0700) != 0) return IoError("cannot chmod 0700 " + dir);
  return Status::Ok();
}

}  // namespace

void Scheduler::SetPeerDirectory(PeerDirectory* peers) {
  MutexLock lock(&mu_);
  peers_ = peers;
}

std::string Scheduler::SecureDir(const std::string& client, int64_t job_id) const {
  return JoinPath(JoinPath(config_.secure_dir(), client), std::to_string(job_id));
}

// ------------------------------------------------------------ placement ---

double Scheduler::FrameSecondsLocked(const std::string& package) const {
  auto it = frame_seconds_.find(package);
  if (it == frame_seconds_.end() || it->second.second == 0) return kDefaultFrameSeconds;
  return it->second.first;
}

int Scheduler::CapableSlotsLocked(const JobProfile& p) const {
  int capable = 0;
  for (const auto& [name, s] : servers_) {
    if (s.rec.status != ServerStatus::kUp || !s.link) continue;
    if (!PackageMismatch(s.packages, p).empty()) continue;
    for (const Slot* slot : s.slots) {
      if (slot->rec.state != SlotState::kDown && SlotMeets(slot->rec, p.requirements)) ++capable;
    }
  }
  return capable;
}

std::pair<int, int64_t> Scheduler::EstimateLocked(const JobProfile& p) const {
  const int capable = CapableSlotsLocked(p);
  if (capable == 0) return {0, 0};
  // Work ahead of the job: every unfinished local job of at least its
  // priority, at the measured seconds per frame of its package.
  double backlog = 0;
  for (const auto& [id, job] : jobs_) {
    if (JobStateFinal(job.rec.state) || !job.rec.remote_site.empty()) continue;
    if (job.rec.priority < p.priority) continue;
    const int64_t left = static_cast<int64_t>(job.profile.frames.size()) - job.frames_done -
                         job.frames_failed - job.frames_progress;
    backlog +=
        static_cast<double>(std::max<int64_t>(left, 0)) * FrameSecondsLocked(job.profile.package);
  }
  const double own = static_cast<double>(p.frames.size()) * FrameSecondsLocked(p.package);
  const double seconds = (backlog + own) / capable;
  // At most a century ahead: an estimate must stay an int64 time.
  constexpr double kMaxAheadMs = 100.0 * 365 * 86400 * 1000;
  return {capable, clock_->UnixMillis() +
                       static_cast<int64_t>(std::ceil(std::min(seconds * 1000, kMaxAheadMs)))};
}

Result<Scheduler::PlacementDecision> Scheduler::DecidePlacement(const JobProfile& profile,
                                                                const std::string& profile_toml,
                                                                const std::string& source) {
  if (profile.placement == Placement::kLocal) return PlacementDecision{"", "placement = \"local\""};
  if (!config_.has_peers()) {
    if (profile.placement == Placement::kRemote) {
      return FailedPrecondition(source +
                                ": placement: \"remote\" refused: no remote site "
                                "configured for site '" +
                                config_.site_name +
                                "' (it has no peers); use placement = \"local\"");
    }
  }
  std::string peer_names;
  for (const auto& p : config_.peers) peer_names += (peer_names.empty() ? "" : ", ") + p.name;
  if (profile.placement == Placement::kRemote) {
    if (profile.remote_site.empty()) {
      return PlacementDecision{config_.peers.front().name, "placement = \"remote\" (first peer, " +
                                                               config_.peers.front().name + ")"};
    }
    if (!config_.FindPeer(profile.remote_site)) {
      return InvalidArgument(source + ": remote_site: '" + profile.remote_site +
                             "' is not a peer of site '" + config_.site_name +
                             "' (peers: " + peer_names + ")");
    }
    return PlacementDecision{profile.remote_site, "placement = \"remote\", remote_site = \"" +
                                                      profile.remote_site + "\""};
  }

  // auto: local unless no local render server can render it, or the local
  // estimate misses the deadline and a peer's does not.
  std::string local_why;
  int capable = 0;
  int64_t local_finish = 0;
  {
    MutexLock lock(&mu_);
    local_why = NoCapableReasonLocked(profile, nullptr);
    std::tie(capable, local_finish) = EstimateLocked(profile);
  }
  const bool local_ok = local_why.empty() && capable > 0;
  const bool misses = local_ok && profile.deadline_ms != 0 && local_finish > profile.deadline_ms;
  if (local_ok && !misses) {
    std::string why = "auto: " + std::to_string(capable) + " local slot(s) can render it";
    if (profile.deadline_ms != 0) {
      why += ", estimated to finish " + FormatRfc3339(local_finish) + " before the deadline " +
             FormatRfc3339(profile.deadline_ms);
    }
    return PlacementDecision{"", why};
  }
  if (local_why.empty() && capable == 0) local_why = "no render slot up can run it";
  if (!config_.has_peers()) {
    return PlacementDecision{"", "auto: " +
                                     (misses ? "the local estimate " + FormatRfc3339(local_finish) +
                                                   " misses the deadline"
                                             : local_why) +
                                     "; the site has no peers, so it waits here"};
  }
  std::vector<std::string> names;
  for (const auto& p : config_.peers) names.push_back(p.name);
  std::vector<PeerQuote> quotes;
  if (peers_) quotes = peers_->Quote(profile_toml, names);
  const PeerQuote* best = nullptr;
  std::string refusals;
  for (const PeerQuote& q : quotes) {
    std::string why;
    if (!q.reachable) {
      why = "unreachable (" + q.error + ")";
    } else if (!q.quote.can_render()) {
      why = q.quote.reason();
    } else if (misses && q.quote.estimated_finish_ms() > profile.deadline_ms) {
      why = "estimates " + FormatRfc3339(q.quote.estimated_finish_ms()) + ", after the deadline";
    }
    if (!why.empty()) {
      refusals += (refusals.empty() ? "" : "; ") + q.peer + ": " + why;
      continue;
    }
    if (!best || q.quote.estimated_finish_ms() < best->quote.estimated_finish_ms()) best = &q;
  }
  if (!best) {
    if (quotes.empty()) refusals = "no peer answered";
    return PlacementDecision{
        "",
        "auto: " +
            (misses ? "the local estimate " + FormatRfc3339(local_finish) + " misses the deadline"
                    : local_why) +
            ", and no peer can do better (" + refusals + "); it stays here"};
  }
  std::string why = "auto: ";
  if (misses) {
    why += "the local estimate " + FormatRfc3339(local_finish) + " misses the deadline " +
           FormatRfc3339(profile.deadline_ms) + "; " + best->peer + " estimates " +
           FormatRfc3339(best->quote.estimated_finish_ms());
  } else {
    why += local_why + "; " + best->peer + " can (" + std::to_string(best->quote.capable_slots()) +
           " slot(s))";
  }
  return PlacementDecision{best->peer, why};
}

pb::QuoteResponse Scheduler::Quote(const std::string& profile_toml) {
  pb::QuoteResponse resp;
  auto profile = ParseJobDescription(profile_toml, "quoted job");
  if (!profile.ok()) {
    resp.set_reason(profile.status().message());
    return resp;
  }
  MutexLock lock(&mu_);
  std::string why = NoCapableReasonLocked(*profile, nullptr);
  auto [capable, finish] = EstimateLocked(*profile);
  if (!why.empty() || capable == 0) {
    resp.set_reason(why.empty() ? "no render slot up can run it" : why);
    return resp;
  }
  resp.set_can_render(true);
  resp.set_capable_slots(capable);
  resp.set_estimated_finish_ms(finish);
  return resp;
}

// ------------------------------------------------------- exchange tasks ---

std::vector<ExchangeTask> Scheduler::TakeExchangeTasks() {
  MutexLock lock(&mu_);
  std::vector<ExchangeTask> tasks;
  for (auto it = exchange_due_.begin(); it != exchange_due_.end();) {
    auto jt = jobs_.find(*it);
    if (jt == jobs_.end()) {
      it = exchange_due_.erase(it);
      continue;
    }
    Job& job = jt->second;
    ExchangeTask t;
    t.job = job.rec;
    const ExchangeState x = job.rec.exchange;
    if (x == ExchangeState::kPackaging) {
      t.kind = ExchangeTask::kSendJob;
      t.description = job.rec.profile_toml;
    } else if (x == ExchangeState::kCancelling) {
      t.kind = ExchangeTask::kSendCancel;
    } else if (x == ExchangeState::kReturning) {
      t.kind = ExchangeTask::kReturnResult;
      for (const Chunk& c : job.chunks) {
        t.chunks.push_back(c.rec);
        for (const auto& o : c.outputs) {
          ExchangeTask::Frame f;
          f.frame = o.frame();
          f.name = job.profile.OutputName(o.frame());
          f.file = JoinPath(JobDir(job.rec.id), f.name);
          f.render_server = c.rec.render_server;
          f.chunk = c.rec.index;
          f.sha256 = o.sha256();
          f.size = o.size();
          t.frames.push_back(std::move(f));
        }
      }
    } else {
      it = exchange_due_.erase(it);
      continue;
    }
    job.task_out = true;
    tasks.push_back(std::move(t));
    it = exchange_due_.erase(it);
  }
  return tasks;
}

void Scheduler::ReleaseExchangeTask(int64_t job_id) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return;
  jt->second.task_out = false;
  exchange_due_.insert(job_id);
}

Status Scheduler::MarkJobPackaged(int64_t job_id, const std::string& package) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  Job& job = jt->second;
  job.task_out = false;
  WriteBatch batch;
  const auto next = ExchangeTransition(job.rec.exchange, ExchangeEvent::kPackaged);
  if (next == ExchangeState::kShipping) {
    job.rec.exchange = *next;
    RecordEventLocked(
        job, "job package " + package + " written to hotfolders/out for " + job.rec.remote_site,
        batch);
    batch.job_updates.push_back(job.rec);
  } else if (next == ExchangeState::kCancelling && job.rec.state == JobState::kCancelled) {
    // Cancelled while the package was being written: tell the peer.
    job.rec.exchange = *next;
    exchange_due_.insert(job_id);
    if (peers_) peers_->Kick();
    batch.job_updates.push_back(job.rec);
  }
  AppendLocked(std::move(batch));
  BumpLocked();
  WaitDurableLocked();
  return Status::Ok();
}

Status Scheduler::MarkCancelSent(int64_t job_id) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  Job& job = jt->second;
  job.task_out = false;
  auto next = ExchangeTransition(job.rec.exchange, ExchangeEvent::kCancelSent);
  if (!next) return Status::Ok();
  job.rec.exchange = *next;
  WriteBatch batch;
  RecordEventLocked(job, "cancel package written to hotfolders/out for " + job.rec.remote_site,
                    batch);
  batch.job_updates.push_back(job.rec);
  AppendLocked(std::move(batch));
  WaitDurableLocked();
  return Status::Ok();
}

Status Scheduler::MarkResultReturned(int64_t job_id, const std::string& package) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  Job& job = jt->second;
  job.task_out = false;
  auto next = ExchangeTransition(job.rec.exchange, ExchangeEvent::kResultReturned);
  if (!next) return Status::Ok();
  job.rec.exchange = *next;
  job.rec.queue = *QueueTransition(job.rec.queue, QueueEvent::kLeft);
  WriteBatch batch;
  RecordEventLocked(job,
                    "results stored in the secure location and written to hotfolders/out as " +
                        package + " for " + job.rec.origin_site + "; removed from the active queue",
                    batch);
  batch.job_updates.push_back(job.rec);
  AppendLocked(std::move(batch));
  BumpLocked();
  WaitDurableLocked();
  return Status::Ok();
}

// ------------------------------------------------- origin: courier, poll ---

void Scheduler::OnJobDelivered(int64_t job_id, const std::string& peer) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return;
  Job& job = jt->second;
  if (job.rec.remote_site != peer) return;
  auto next = ExchangeTransition(job.rec.exchange, ExchangeEvent::kDelivered);
  if (!next) return;
  job.rec.exchange = *next;
  WriteBatch batch;
  RecordEventLocked(job, "job package delivered to " + peer + "'s hotfolders/in", batch);
  batch.job_updates.push_back(job.rec);
  AppendLocked(std::move(batch));
  BumpLocked();
}

void Scheduler::OnJobRejected(int64_t job_id, const std::string& peer, const std::string& reason) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return;
  Job& job = jt->second;
  if (job.rec.remote_site != peer || JobStateFinal(job.rec.state)) return;
  WriteBatch batch;
  for (auto& c : job.chunks) {
    if (c.rec.state == ChunkState::kQueued) FinishChunkLocked(job, c, ChunkState::kFailed, batch);
  }
  job.rec.state = JobState::kFailed;
  job.rec.error = peer + " refused the job package: " + reason;
  if (auto x = ExchangeTransition(job.rec.exchange, ExchangeEvent::kRejected))
    job.rec.exchange = *x;
  job.rec.finish_time = clock_->UnixMillis();
  JobEndedLocked(job, batch);
  AppendLocked(std::move(batch));
  spdlog::warn("job {}: {}", job_id, job.rec.error);
}

std::map<std::string, std::vector<int64_t>> Scheduler::PollableOutsourcedJobs() {
  MutexLock lock(&mu_);
  std::map<std::string, std::vector<int64_t>> out;
  for (const auto& [id, job] : jobs_) {
    if (job.rec.remote_site.empty() || JobStateFinal(job.rec.state)) continue;
    if (job.rec.exchange == ExchangeState::kShipping ||
        job.rec.exchange == ExchangeState::kDelivered) {
      out[job.rec.remote_site].push_back(id);
    }
  }
  return out;
}

void Scheduler::OnRemoteStatus(int64_t job_id, const pb::RemoteJobStatus& status) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return;
  Job& job = jt->second;
  if (JobStateFinal(job.rec.state) || job.rec.remote_site.empty()) return;
  const bool changed = job.remote.SerializeAsString() != status.SerializeAsString();
  job.remote = status;
  if (status.job_id() == 0) return;
  WriteBatch batch;
  if (auto next = ExchangeTransition(job.rec.exchange, ExchangeEvent::kDelivered)) {
    job.rec.exchange = *next;
    RecordEventLocked(job, "job package delivered to " + job.rec.remote_site, batch);
  }
  if (job.rec.remote_job_id == 0) {
    job.rec.remote_job_id = status.job_id();
    RecordEventLocked(
        job,
        "in " + job.rec.remote_site + "'s active queue as job " + std::to_string(status.job_id()),
        batch);
  }
  if (status.state() == "running" && job.rec.state == JobState::kQueued) {
    job.rec.state = JobState::kRunning;
    RecordEventLocked(job, "rendering at " + job.rec.remote_site, batch);
  }
  if (!batch.job_events.empty()) {
    batch.job_updates.push_back(job.rec);
    AppendLocked(std::move(batch));
  }
  if (changed) BumpLocked();
}

// ----------------------------------------------------- remote: ingest ---

bool Scheduler::HasRemoteJob(const std::string& site, int64_t origin_job_id) {
  MutexLock lock(&mu_);
  return remote_index_.count({site, origin_job_id}) > 0;
}

Result<int64_t> Scheduler::AcceptRemoteJob(const JobPackageManifest& m,
                                           const std::string& package_dir) {
  if (m.kind != JobPackageKind::kJob) return InvalidArgument(m.name + ": not a job package");
  if (m.origin_site != m.from_site) {
    return InvalidArgument(m.name + ": a job package must come from its origin site ('" +
                           m.from_site + "' is not '" + m.origin_site + "')");
  }
  const std::string where = m.name + "/" + m.description;
  FF_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(package_dir, m.description)));
  FF_ASSIGN_OR_RETURN(JobProfile profile, ParseJobDescription(text, where));
  // It renders here; the origin announces it to its client.
  profile.placement = Placement::kLocal;
  profile.remote_site.clear();
  profile.notify.clear();
  std::map<std::string, const JobPackageFile*> listed;
  for (const auto& f : m.files) listed[f.path] = &f;
  std::vector<JobFile> files;
  for (const std::string& path : profile.AllFiles()) {
    const std::string in_package = "files/" + path;
    auto it = listed.find(in_package);
    if (it == listed.end()) {
      return InvalidArgument(m.name + ": the description names '" + path + "' but the package " +
                             "has no '" + in_package + "'");
    }
    const JobPackageFile& f = *it->second;
    if (!blobs_->Has(f.sha256)) {
      FF_ASSIGN_OR_RETURN(std::string sha, blobs_->Import(JoinPath(package_dir, in_package)));
      if (sha != f.sha256) {
        return InvalidArgument(m.name + ": " + in_package + ": SHA-256 changed while ingesting");
      }
    }
    files.push_back(JobFile{path, f.sha256, f.size});
  }
  JobRecord tmpl;
  tmpl.client = m.client.empty() ? m.origin_site : m.client;
  tmpl.origin_site = m.origin_site;
  tmpl.origin_job_id = m.origin_job_id;
  tmpl.queue = *QueueTransition(JobQueue::kNone, QueueEvent::kAcceptedFromPeer);
  tmpl.placement = "outsourced by " + m.origin_site + " (its job " +
                   std::to_string(m.origin_job_id) + ", package " + m.name + ")";
  const std::string key = "remote/" + m.origin_site + "/" + std::to_string(m.origin_job_id);
  FF_ASSIGN_OR_RETURN(
      int64_t id, CreateJob(std::move(profile), files, key, tmpl,
                            {"received from " + m.origin_site + " through hotfolders/in (package " +
                             m.name + "); in the active queue"},
                            true));

  // The job's files in its secure location, where only its client's jobs
  // may reach them (docs/outsourcing.md).
  const std::string secure = SecureDir(tmpl.client, id);
  FF_RETURN_IF_ERROR(MakePrivateDir(config_.secure_dir()));
  FF_RETURN_IF_ERROR(MakePrivateDir(JoinPath(config_.secure_dir(), tmpl.client)));
  FF_RETURN_IF_ERROR(MakePrivateDir(secure));
  FF_RETURN_IF_ERROR(MakePrivateDir(JoinPath(secure, "input")));
  FF_RETURN_IF_ERROR(MakePrivateDir(JoinPath(secure, "output")));
  for (const JobFile& f : files) {
    const std::string to = JoinPath(JoinPath(secure, "input"), f.path);
    if (PathExists(to)) continue;
    FF_RETURN_IF_ERROR(MakePrivateDir(DirName(to)));
    FF_RETURN_IF_ERROR(LinkOrCopy(blobs_->PathOf(f.sha256), to, DirSync::kNow));
  }
  if (!PathExists(JoinPath(secure, "input/job.toml"))) {
    FF_RETURN_IF_ERROR(WriteFileAtomic(JoinPath(secure, "input/job.toml"), text, 0600));
  }

  // A cancel that arrived before the job.
  auto tomb = db_->GetMeta("cancel/" + m.origin_site + "/" + std::to_string(m.origin_job_id));
  if (tomb.ok() && tomb->has_value()) {
    FF_RETURN_IF_ERROR(CancelJob(id, "cancelled by " + m.origin_site).status());
  }
  return id;
}

Status Scheduler::CancelFromOrigin(const JobPackageManifest& m) {
  int64_t id = 0;
  {
    MutexLock lock(&mu_);
    auto it = remote_index_.find({m.origin_site, m.origin_job_id});
    if (it != remote_index_.end()) id = it->second;
  }
  if (id == 0) {
    // The job package has not arrived (or was quarantined): remember the
    // cancel so the job is cancelled the moment it arrives.
    WriteBatch batch;
    batch.meta.emplace_back("cancel/" + m.origin_site + "/" + std::to_string(m.origin_job_id),
                            m.reason);
    return db_->Commit(batch);
  }
  return CancelJob(id, "cancelled by " + m.origin_site +
                           (m.reason.empty() ? std::string() : ": " + m.reason))
      .status();
}

Status Scheduler::RejectedByPeer(const JobPackageManifest& m) {
  OnJobRejected(m.origin_job_id, m.from_site, m.reason);
  return Status::Ok();
}

pb::RemoteJobsResponse Scheduler::RemoteJobs(const std::string& peer,
                                             const pb::RemoteJobsRequest& req) {
  MutexLock lock(&mu_);
  pb::RemoteJobsResponse resp;
  for (int64_t oid : req.origin_job_ids()) {
    pb::RemoteJobStatus* st = resp.add_jobs();
    st->set_origin_job_id(oid);
    auto it = remote_index_.find({peer, oid});
    if (it == remote_index_.end()) {
      st->set_state("unknown");
      continue;
    }
    const Job& job = jobs_.at(it->second);
    pb::JobInfo info = SummaryLocked(job);
    st->set_job_id(job.rec.id);
    st->set_state(info.state());
    st->set_queue(JobQueueName(job.rec.queue));
    st->set_position(info.queue_position());
    st->set_frames_total(info.frames_total());
    st->set_frames_done(info.frames_done());
    st->set_frames_running(info.frames_running());
    st->set_frames_failed(info.frames_failed());
    st->set_error(job.rec.error);
  }
  return resp;
}

// ------------------------------------------------- origin: result ingest ---

Status Scheduler::CompleteOutsourcedJob(const JobPackageManifest& m,
                                        const std::string& package_dir) {
  if (m.kind != JobPackageKind::kResult) return InvalidArgument(m.name + ": not a result package");
  const int64_t id = m.origin_job_id;
  JobProfile profile;
  {
    MutexLock lock(&mu_);
    auto jt = jobs_.find(id);
    if (jt == jobs_.end() || m.origin_site != config_.site_name) {
      return NotFound(m.name + ": job " + std::to_string(id) + " of " + m.origin_site +
                      " is not a job of this site");
    }
    if (jt->second.rec.remote_site != m.from_site) {
      return InvalidArgument(m.name + ": job " + std::to_string(id) + " was outsourced to '" +
                             jt->second.rec.remote_site + "', not to '" + m.from_site + "'");
    }
    if (JobStateFinal(jt->second.rec.state)) return Status::Ok();  // e.g. cancelled here
    profile = jt->second.profile;
  }
  std::set<std::string> listed;
  for (const auto& f : m.files) listed.insert(f.path);
  ResultReport report;
  {
    FF_ASSIGN_OR_RETURN(std::string text, ReadFile(JoinPath(package_dir, "report.json")));
    auto parsed = ParseResultReport(text);
    if (!parsed.ok()) return parsed.status().WithContext(m.name + "/report.json");
    report = std::move(parsed).value();
  }
  struct Done {
    std::string sha256;
    int64_t size = 0;
    std::string render_server;
    int remote_chunk = 0;
  };
  std::map<int64_t, Done> done;
  const std::string job_dir = JobDir(id);
  FF_RETURN_IF_ERROR(MakeDirs(job_dir));
  std::set<std::string> dirs = {job_dir};
  for (const auto& f : report.frames) {
    if (!profile.frames.Contains(f.frame)) {
      return InvalidArgument(m.name + "/report.json: frame " + std::to_string(f.frame) +
                             " is not a frame of the job");
    }
    if (!listed.count(f.file)) {
      return InvalidArgument(m.name + "/report.json: frame " + std::to_string(f.frame) + ": '" +
                             f.file + "' is not in the manifest");
    }
    const std::string to = JoinPath(job_dir, profile.OutputName(f.frame));
    if (dirs.insert(DirName(to)).second) FF_RETURN_IF_ERROR(MakeDirs(DirName(to)));
    FF_RETURN_IF_ERROR(LinkOrCopy(JoinPath(package_dir, f.file), to, DirSync::kByCaller));
    done[f.frame] = Done{f.sha256, f.size, m.from_site + "/" + f.render_server, f.chunk};
  }
  // Remote chunks' logs, and which remote chunk rendered which frame.
  struct RemoteChunk {
    std::string log_rel;
    std::string render_server;
    std::string error;
    FrameSet frames;
  };
  std::vector<RemoteChunk> remote_chunks;
  const std::string log_dir = JoinPath(job_dir, "logs");
  FF_RETURN_IF_ERROR(MakeDirs(log_dir));
  for (const auto& c : report.chunks) {
    RemoteChunk rc;
    auto fs = FrameSet::Parse(c.frames);
    if (fs.ok()) rc.frames = *fs;
    rc.render_server = m.from_site + "/" + c.render_server;
    rc.error = c.error;
    if (!c.log.empty() && listed.count(c.log)) {
      rc.log_rel =
          "jobs/" + std::to_string(id) + "/logs/remote-chunk-" + std::to_string(c.index) + ".log";
      FF_RETURN_IF_ERROR(LinkOrCopy(JoinPath(package_dir, c.log),
                                    JoinPath(config_.storage_dir(), rc.log_rel),
                                    DirSync::kByCaller));
    }
    remote_chunks.push_back(std::move(rc));
  }
  dirs.insert(log_dir);
  for (const std::string& d : dirs) FF_RETURN_IF_ERROR(SyncDir(d));

  MutexLock lock(&mu_);
  auto jt = jobs_.find(id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(id) + " vanished");
  Job& job = jt->second;
  if (JobStateFinal(job.rec.state)) return Status::Ok();
  WriteBatch batch;
  auto remote_chunk_of = [&](int64_t frame) -> const RemoteChunk* {
    for (const auto& rc : remote_chunks) {
      if (rc.frames.Contains(frame)) return &rc;
    }
    return nullptr;
  };
  const ChunkState not_done = m.state == "cancelled" ? ChunkState::kCancelled : ChunkState::kFailed;
  for (auto& c : job.chunks) {
    if (c.rec.state != ChunkState::kQueued && c.rec.state != ChunkState::kRunning) continue;
    const RemoteChunk* rc = c.frames.empty() ? nullptr : remote_chunk_of(c.frames.front());
    if (rc) {
      c.rec.render_server = rc->render_server;
      c.rec.log_path = rc->log_rel;
    }
    c.rec.attempts = std::max(c.rec.attempts, 1);
    const bool all =
        std::all_of(c.frames.begin(), c.frames.end(), [&](int64_t f) { return done.count(f) > 0; });
    if (!all) {
      c.rec.error = rc && !rc->error.empty() ? rc->error : "not rendered at " + m.from_site;
      FinishChunkLocked(job, c, not_done, batch);
      continue;
    }
    c.outputs.clear();
    for (int64_t f : c.frames) {
      const Done& d = done.at(f);
      pb::FrameOutput o;
      o.set_frame(f);
      o.set_sha256(d.sha256);
      o.set_size(d.size);
      o.set_name(job.profile.OutputName(f));
      c.outputs.push_back(o);
      FrameRecord fr;
      fr.job_id = id;
      fr.frame = f;
      fr.chunk = c.rec.index;
      fr.state = FrameState::kDone;
      fr.render_server = d.render_server;
      fr.output_path = "jobs/" + std::to_string(id) + "/" + job.profile.OutputName(f);
      fr.sha256 = d.sha256;
      fr.size = d.size;
      batch.frame_updates.push_back(std::move(fr));
    }
    c.rec.error.clear();
    FinishChunkLocked(job, c, ChunkState::kDone, batch);
  }
  if (m.state == "cancelled") {
    job.rec.state = JobState::kCancelled;
    job.rec.error = "cancelled at " + m.from_site + (m.reason.empty() ? "" : ": " + m.reason);
  } else if (m.state == "done" && job.frames_failed == 0) {
    job.rec.state = JobState::kDone;
  } else {
    job.rec.state = JobState::kFailed;
    job.rec.error =
        "failed at " + m.from_site + ": " +
        (m.reason.empty() ? std::to_string(job.frames_failed) + " frame(s) failed" : m.reason);
  }
  job.rec.exchange = *ExchangeTransition(job.rec.exchange, ExchangeEvent::kResultReceived);
  job.rec.remote_job_id = m.remote_job_id ? m.remote_job_id : job.rec.remote_job_id;
  job.rec.finish_time = clock_->UnixMillis();
  RecordEventLocked(job,
                    "result package " + m.name + " from " + m.from_site + ": " +
                        std::to_string(done.size()) + " frame(s) placed on storage",
                    batch);
  JobEndedLocked(job, batch);
  AppendLocked(std::move(batch));
  spdlog::info("job {} '{}' {} at {}: {} frame(s) on storage", id, job.rec.name,
               JobStateName(job.rec.state), m.from_site, done.size());
  WaitDurableLocked();
  return Status::Ok();
}

}  // namespace ff
