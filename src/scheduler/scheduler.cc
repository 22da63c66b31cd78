#include "scheduler/scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "base/text.h"
#include "core/version.h"
#include "scheduler/chunk_planner.h"
#include "scheduler/placement_policy.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

Scheduler::Scheduler(SiteConfig config, Clock* clock, std::unique_ptr<ResourceDatabase> db,
                     std::unique_ptr<BlobStore> blobs)
    : config_(std::move(config)),
      clock_(clock),
      db_(std::move(db)),
      blobs_(std::move(blobs)),
      committer_(
          db_.get(), [this](const std::vector<int64_t>& ended) { OnGroupDurable(ended); },
          [](const std::string& dir) { return SyncDir(dir); }) {}

Scheduler::~Scheduler() { Stop(); }

Result<std::unique_ptr<Scheduler>> Scheduler::Open(const SiteConfig& config, Clock* clock) {
  FF_RETURN_IF_ERROR(MakeDirs(config.root));
  FF_ASSIGN_OR_RETURN(UniqueFd root_lock, LockRoot(config.root, "schedule server"));
  FF_RETURN_IF_ERROR(MakeSiteDirs(config));
  FF_ASSIGN_OR_RETURN(auto db, OpenResourceDatabase(config.database_url, config.db_path()));
  return Create(config, clock, std::move(db), std::move(root_lock));
}

Status Scheduler::MakeSiteDirs(const SiteConfig& config) {
  for (const char* d : {"db", "storage", "storage/jobs"}) {
    FF_RETURN_IF_ERROR(MakeDirs(JoinPath(config.root, d)));
  }
  return Status::Ok();
}

Result<std::unique_ptr<Scheduler>> Scheduler::Create(const SiteConfig& config, Clock* clock,
                                                     std::unique_ptr<ResourceDatabase> db,
                                                     UniqueFd root_lock) {
  if (!root_lock.valid()) {
    FF_RETURN_IF_ERROR(MakeDirs(config.root));
    FF_ASSIGN_OR_RETURN(root_lock, LockRoot(config.root, "schedule server"));
  }
  FF_RETURN_IF_ERROR(MakeSiteDirs(config));
  FF_ASSIGN_OR_RETURN(auto blobs, BlobStore::Open(config.blob_dir()));
  std::unique_ptr<Scheduler> s(new Scheduler(config, clock, std::move(db), std::move(blobs)));
  s->root_lock_ = std::move(root_lock);
  FF_RETURN_IF_ERROR(s->Resume());
  s->committer_.Start();
  return s;
}

void Scheduler::Start() {
  timeout_thread_ = std::thread([this] { TimeoutLoop(); });
}

void Scheduler::Stop() {
  {
    MutexLock lock(&stop_mu_);
    stopping_ = true;
  }
  stop_cv_.SignalAll();
  if (timeout_thread_.joinable()) timeout_thread_.join();
  committer_.Stop();
}

// ---------------------------------------------------------- group commit ---

uint64_t Scheduler::AppendLocked(WriteBatch&& batch) { return committer_.Append(std::move(batch)); }

void Scheduler::SendWhenDurableLocked(const std::shared_ptr<RenderServerLink>& link,
                                      pb::ScheduleServerMessage msg) {
  committer_.SendWhenDurable(link, std::move(msg));
}

void Scheduler::WaitDurableLocked() {
  // The committer takes mu_ to announce a durable group: wait without it.
  const uint64_t seq = committer_.appended();
  mu_.Unlock();
  committer_.WaitDurable(seq);
  mu_.Lock();
}

void Scheduler::Flush() { committer_.Flush(); }

void Scheduler::OnGroupDurable(const std::vector<int64_t>& ended_jobs) {
  MutexLock lock(&mu_);
  for (int64_t id : ended_jobs) {
    auto it = jobs_.find(id);
    if (it != jobs_.end()) NotifyIfEndedLocked(it->second);
  }
  BumpLocked();
}

void Scheduler::TimeoutLoop() {
  // A dead render server is noticed at most a twentieth of the shorter limit
  // late (100 ms with the defaults); a pass costs one look per server.
  const int64_t period_ms = std::clamp<int64_t>(
      std::min(config_.heartbeat_timeout_ms, config_.reconnect_grace_ms) / 20, 20, 250);
  MutexLock lock(&stop_mu_);
  while (!stopping_) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(period_ms);
    while (!stopping_ && stop_cv_.WaitUntil(lock, deadline)) {
    }
    if (stopping_) break;
    lock.Unlock();
    CheckTimeouts();
    lock.Lock();
  }
}

void Scheduler::NotifyIfEndedLocked(Job& job) {
  // A job without notify targets was marked notified with its final state.
  if (job.notified || job.rec.notified || !JobStateFinal(job.rec.state)) return;
  job.notified = true;
  notifier_.JobEnded(SummaryLocked(job), job.profile.notify, [this, id = job.rec.id] {
    MutexLock lock(&mu_);
    auto it = jobs_.find(id);
    if (it == jobs_.end() || it->second.rec.notified) return;
    it->second.rec.notified = true;
    WriteBatch batch;
    batch.job_updates.push_back(it->second.rec);
    AppendLocked(std::move(batch));
  });
}

void Scheduler::BumpLocked() {
  ++version_;
  changed_cv_.SignalAll();
}

uint64_t Scheduler::WaitForChange(uint64_t seen, int64_t timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  MutexLock lock(&mu_);
  while (version_ == seen && changed_cv_.WaitUntil(lock, deadline)) {
  }
  return version_;
}

std::string Scheduler::JobDir(int64_t id) const {
  return JoinPath(config_.jobs_dir(), std::to_string(id));
}

Scheduler::RunKey Scheduler::RunKeyOf(const Job& job) {
  return {-job.rec.priority,
          job.profile.deadline_ms ? job.profile.deadline_ms : std::numeric_limits<int64_t>::max(),
          job.rec.submit_time, job.rec.id};
}

void Scheduler::UpdateRunnableLocked(Job& job) {
  const RunKey key = RunKeyOf(job);
  if (!job.pending.empty() && !JobStateFinal(job.rec.state)) {
    runnable_.insert(key);
  } else {
    runnable_.erase(key);
  }
}

// ---------------------------------------------------------------- submit ---

Result<int64_t> Scheduler::Submit(const pb::SubmitRequest& request) {
  std::string source =
      request.description_name().empty() ? "job description" : request.description_name();
  FF_ASSIGN_OR_RETURN(JobProfile profile, ValidateJobDescription(request.description(), source));
  // Every file the description names must have been uploaded, whole.
  std::map<std::string, const pb::JobFile*> uploaded;
  for (const auto& f : request.files()) uploaded[f.path()] = &f;
  std::vector<JobFile> files;
  for (const auto& path : profile.AllFiles()) {
    auto it = uploaded.find(path);
    if (it == uploaded.end()) {
      return InvalidArgument(source + ": file '" + path +
                             "' is named by the description but was not uploaded");
    }
    const pb::JobFile& f = *it->second;
    if (!blobs_->Has(f.sha256())) {
      return InvalidArgument(source + ": file '" + path + "' (sha256 " + f.sha256() +
                             ") was not uploaded to the site's file service");
    }
    files.push_back(JobFile{path, f.sha256(), f.size()});
    uploaded.erase(it);
  }
  if (!uploaded.empty()) {
    return InvalidArgument(source + ": file '" + uploaded.begin()->first +
                           "' was uploaded but the description does not name it (add it to "
                           "files)");
  }

  const std::string& rid = request.request_id();
  if (rid.size() > 64 || !std::all_of(rid.begin(), rid.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_';
      })) {
    return InvalidArgument("request_id: must be at most 64 letters, digits, '-' or '_'");
  }
  const std::string meta_key = rid.empty() ? "" : "submit/" + rid;
  if (!meta_key.empty()) {
    // A repeated request is answered before any peer is asked for a quote.
    auto seen = db_->GetMeta(meta_key);
    if (seen.ok() && seen->has_value()) {
      spdlog::info("submit request {} repeated; it is job {}", rid, **seen);
      return static_cast<int64_t>(std::stoll(**seen));
    }
  }
  const std::string profile_toml = ProfileToToml(profile);
  FF_ASSIGN_OR_RETURN(PlacementDecision where, DecidePlacement(profile, profile_toml, source));
  JobRecord tmpl;
  tmpl.client = config_.site_name;
  tmpl.placement = where.reason;
  std::vector<std::string> notes;
  if (where.peer.empty()) {
    tmpl.queue = *QueueTransition(JobQueue::kNew, QueueEvent::kPlacedLocally);
    notes.push_back("placed locally: " + where.reason);
  } else {
    tmpl.queue = *QueueTransition(JobQueue::kNew, QueueEvent::kOutsourced);
    tmpl.remote_site = where.peer;
    tmpl.exchange = *ExchangeTransition(ExchangeState::kNone, ExchangeEvent::kOutsourced);
    notes.push_back("outsourced to " + where.peer + ": " + where.reason);
  }
  auto id = CreateJob(std::move(profile), std::move(files), meta_key, std::move(tmpl), notes,
                      where.peer.empty());
  if (id.ok() && !where.peer.empty() && peers_) peers_->Kick();
  return id;
}

Result<int64_t> Scheduler::CreateJob(JobProfile profile, std::vector<JobFile> files,
                                     const std::string& meta_key, JobRecord tmpl,
                                     const std::vector<std::string>& notes, bool runnable) {
  // The job id is taken under the dispatch mutex; building and committing a
  // large job (a million frame rows) happens outside it, so dispatch goes on.
  int64_t id = 0;
  int capable_slots = 0;
  if (!meta_key.empty()) {
    // Recorded before this process started? Read without mu_: no database
    // I/O under the dispatch mutex. Recorded since: submitted_, below.
    auto seen = db_->GetMeta(meta_key);
    if (seen.ok() && seen->has_value()) {
      spdlog::info("{} repeated; it is job {}", meta_key, **seen);
      return static_cast<int64_t>(std::stoll(**seen));
    }
  }
  {
    MutexLock lock(&mu_);
    if (!meta_key.empty()) {
      if (auto it = submitted_.find(meta_key); it != submitted_.end()) {
        spdlog::info("{} repeated; it is job {}", meta_key, it->second);
        return it->second;
      }
      if (!submitting_.insert(meta_key).second) {
        return Unavailable(meta_key + " is already being recorded; retry");
      }
    }
    id = next_job_id_++;
    // "auto": plan for the slots that can run the job now (at least one).
    if (profile.chunk_size == JobProfile::kAutoChunkSize)
      capable_slots = CapableSlotsLocked(profile);
  }
  struct Unmark {
    Scheduler* self;
    const std::string& key;
    ~Unmark() {
      if (key.empty()) return;
      MutexLock lock(&self->mu_);
      self->submitting_.erase(key);
    }
  } unmark{this, meta_key};

  Job job;
  job.rec = std::move(tmpl);
  job.rec.id = id;
  job.rec.name = profile.name;
  job.rec.state = JobState::kQueued;
  job.rec.priority = profile.priority;
  job.rec.submit_time = clock_->UnixMillis();
  job.rec.profile_toml = ProfileToToml(profile);
  job.rec.files = std::move(files);
  WriteBatch batch;
  for (size_t i = 0; i < notes.size(); ++i) {
    JobEventRecord e;
    e.job_id = id;
    e.time = job.rec.submit_time;
    // Every job passes through the new job queue first.
    if (i == 0 && job.rec.origin_site.empty()) {
      e.queue = JobQueue::kNew;
      e.state = "queued";
      e.note = "submitted";
      batch.job_events.push_back(e);
    }
    e.queue = job.rec.queue;
    e.state = "queued";
    e.note = notes[i];
    batch.job_events.push_back(e);
  }
  WriteBatch::NewJob nj;
  nj.job = job.rec;
  nj.frames.reserve(profile.frames.size());
  int index = 0;
  const std::vector<FrameSet> parts =
      profile.chunk_size == JobProfile::kAutoChunkSize
          // No capable slot up yet: one frame per chunk rather than a plan
          // for one slot (whose first chunk would hold half the job).
          ? PlanChunks(profile.frames, capable_slots > 0 ? capable_slots
                                                         : static_cast<int>(std::min<size_t>(
                                                               profile.frames.size(), 1 << 30)))
          : profile.frames.Chunk(static_cast<size_t>(profile.chunk_size));
  for (const FrameSet& part : parts) {
    Chunk c;
    c.rec.job_id = id;
    c.rec.index = index;
    c.rec.frames = part.ToString();
    c.frames = part.frames();
    for (int64_t f : c.frames) {
      FrameRecord fr;
      fr.job_id = id;
      fr.frame = f;
      fr.chunk = index;
      nj.frames.push_back(std::move(fr));
    }
    nj.chunks.push_back(c.rec);
    if (runnable) job.pending.push_back(index);
    job.chunks.push_back(std::move(c));
    ++index;
  }
  job.profile = std::move(profile);
  batch.new_jobs.push_back(std::move(nj));
  if (!meta_key.empty()) batch.meta.emplace_back(meta_key, std::to_string(id));
  FF_RETURN_IF_ERROR(db_->Commit(batch).WithContext("cannot record the job"));
  batch = WriteBatch();  // the rows are written; free them before dispatching

  MutexLock lock(&mu_);
  Job& stored = jobs_[id] = std::move(job);
  if (!meta_key.empty()) submitted_[meta_key] = id;
  if (!stored.rec.origin_site.empty()) {
    remote_index_[{stored.rec.origin_site, stored.rec.origin_job_id}] = id;
  }
  if (ExchangeWorkDue(stored.rec.exchange)) exchange_due_.insert(id);
  UpdateRunnableLocked(stored);
  spdlog::info("job {} '{}' accepted: {} frames in {} chunks, priority {}, {}", id, stored.rec.name,
               stored.profile.frames.size(), index, stored.rec.priority,
               notes.empty() ? std::string("local") : notes.back());
  DispatchLocked();
  BumpLocked();
  return id;
}

// -------------------------------------------------------------- matching ---

bool Scheduler::CanRunLocked(const Server& s, const Slot& slot, Job& job) const {
  auto& known = job.package_ok[&s];
  if (known.first != s.generation)
    known = {s.generation, PackageMismatch(s.packages, job.profile).empty()};
  return known.second && SlotMeets(slot.rec, job.profile.requirements);
}

std::string Scheduler::CannotRunReason(const Server& s, const Slot* slot,
                                       const JobProfile& p) const {
  if (std::string why = PackageMismatch(s.packages, p); !why.empty()) return why;
  if (slot) return SlotShortfall(slot->rec, p.requirements);
  std::string first_reason = "has no render slots";
  for (const auto& id : s.slot_ids) {
    auto it = slots_.find(id);
    if (it == slots_.end()) continue;
    std::string r = SlotShortfall(it->second.rec, p.requirements);
    if (r.empty()) return "";
    first_reason = r;
  }
  return first_reason;
}

bool Scheduler::OtherCapableHostUp(const Job& job, const Chunk& c) const {
  for (const auto& [name, s] : servers_) {
    if (s.rec.status != ServerStatus::kUp || !s.link) continue;
    if (std::find(c.rec.failed_hosts.begin(), c.rec.failed_hosts.end(), s.rec.host) !=
        c.rec.failed_hosts.end()) {
      continue;
    }
    if (CannotRunReason(s, nullptr, job.profile).empty()) return true;
  }
  return false;
}

void Scheduler::DispatchLocked() {
  if (runnable_.empty() || idle_servers_.empty()) return;
  // Idle slots, round-robin across render servers, least-busy server first.
  // Only servers with an idle slot are visited (idle_servers_): a freed slot
  // costs a look at its own server, not at the whole site.
  std::vector<std::pair<int, std::vector<Slot*>>> per_server;
  for (const std::string& name : idle_servers_) {
    Server& s = servers_.at(name);
    std::vector<Slot*> idle;
    int busy = 0;
    for (Slot* slot : s.slots) {
      if (slot->rec.state == SlotState::kIdle) {
        idle.push_back(slot);
      } else if (slot->rec.state == SlotState::kBusy) {
        ++busy;
      }
    }
    if (!idle.empty()) per_server.emplace_back(busy, std::move(idle));
  }
  if (per_server.empty()) return;
  const std::vector<Slot*> idle = IdleSlotOrder(std::move(per_server));

  WriteBatch batch;
  std::vector<bool> used(idle.size(), false);
  size_t remaining = idle.size();
  const int64_t now_unix = clock_->UnixMillis();
  const int64_t now_mono = clock_->MonotonicMillis();
  for (auto key = runnable_.begin(); key != runnable_.end() && remaining > 0;) {
    // UpdateRunnableLocked below may erase this key: step past it first.
    Job& job = jobs_.at(std::get<3>(*key++));
    for (size_t i = 0; i < idle.size() && !job.pending.empty(); ++i) {
      if (used[i]) continue;
      Slot& slot = *idle[i];
      Server& server = *slot.server;
      if (!CanRunLocked(server, slot, job)) continue;
      // First queued chunk that may run on this host.
      auto pick = job.pending.end();
      for (auto it = job.pending.begin(); it != job.pending.end(); ++it) {
        const Chunk& c = job.chunks[*it];
        if (c.not_before_ms > now_mono) continue;  // waiting for disk space
        bool failed_here = !c.rec.failed_hosts.empty() &&
                           std::find(c.rec.failed_hosts.begin(), c.rec.failed_hosts.end(),
                                     server.rec.host) != c.rec.failed_hosts.end();
        if (!failed_here || !OtherCapableHostUp(job, c)) {
          pick = it;
          break;
        }
      }
      if (pick == job.pending.end()) continue;
      Chunk& c = job.chunks[*pick];
      job.pending.erase(pick);
      if (c.not_before_ms > 0) {
        c.not_before_ms = 0;
        --deferred_chunks_;
      }
      used[i] = true;
      --remaining;

      SetChunkStateLocked(job, c, ChunkState::kRunning);
      c.rec.attempts += 1;
      c.rec.slot = slot.rec.id;
      c.rec.render_server = server.rec.name;
      c.rec.started_at = now_unix;
      c.rec.ended_at = 0;
      c.rec.exit_code = 0;
      c.rec.error.clear();
      c.current_frame = -1;
      ++job.running;
      SetSlotStateLocked(slot, SlotState::kBusy, job.rec.id, c.rec.index);
      slot.attempt = c.rec.attempts;
      // The chunk row says which slot runs which attempt; slot and frame rows
      // are not rewritten per dispatch (see docs/architecture.md).
      batch.chunk_updates.push_back(c.rec);
      if (job.rec.state == JobState::kQueued) {
        job.rec.state = JobState::kRunning;
        batch.job_updates.push_back(job.rec);
      }

      pb::ScheduleServerMessage msg;
      pb::Assignment* a = msg.mutable_assign();
      a->set_job_id(job.rec.id);
      a->set_chunk(c.rec.index);
      a->set_attempt(c.rec.attempts);
      a->set_slot(slot.rec.id);
      for (int64_t f : c.frames) a->add_frames(f);
      a->set_package(job.profile.package);
      a->set_scene(job.profile.scene);
      a->set_width(job.profile.width);
      a->set_height(job.profile.height);
      a->set_output(job.profile.output);
      a->set_job_first_frame(job.profile.AnimationFirst());
      a->set_job_last_frame(job.profile.AnimationLast());
      for (const auto& arg : job.profile.args) a->add_args(arg);
      a->set_client(job.rec.client);
      FillSandboxPolicyLocked(job, a->mutable_sandbox());
      for (const auto& f : job.rec.files) {
        pb::JobFile* jf = a->add_files();
        jf->set_path(f.path);
        jf->set_sha256(f.sha256);
        jf->set_size(f.size);
      }
      spdlog::debug("job {} chunk {} attempt {} -> {}", job.rec.id, c.rec.index, c.rec.attempts,
                    slot.rec.id);
      // Durable before it is sent: after a crash the database says which slot
      // had which attempt, so a late result can be matched or ignored.
      SendWhenDurableLocked(server.link, std::move(msg));
    }
    UpdateRunnableLocked(job);
  }
  AppendLocked(std::move(batch));
}

void Scheduler::SetSlotStateLocked(Slot& slot, SlotState state, int64_t job, int chunk) {
  slot.rec.state = state;
  slot.rec.current_job = state == SlotState::kBusy ? job : 0;
  slot.rec.current_chunk = state == SlotState::kBusy ? chunk : -1;
  if (slot.server) RefreshIdleLocked(*slot.server);
}

void Scheduler::RefreshIdleLocked(Server& s) {
  bool idle = false;
  if (s.rec.status == ServerStatus::kUp && s.link) {
    for (const Slot* slot : s.slots) {
      if (slot->rec.state == SlotState::kIdle) {
        idle = true;
        break;
      }
    }
  }
  if (idle) {
    idle_servers_.insert(s.rec.name);
  } else {
    idle_servers_.erase(s.rec.name);
  }
}

void Scheduler::SetChunkStateLocked(Job& job, Chunk& c, ChunkState state) {
  const auto n = static_cast<int64_t>(c.frames.size());
  auto count = [&](ChunkState st) -> int64_t* {
    switch (st) {
      case ChunkState::kRunning:
        return &job.frames_running;
      case ChunkState::kDone:
        return &job.frames_done;
      case ChunkState::kFailed:
        return &job.frames_failed;
      default:
        return nullptr;
    }
  };
  if (c.rec.state == ChunkState::kRunning) {
    job.frames_progress -= c.frames_done;
    c.frames_done = 0;
  }
  if (int64_t* from = count(c.rec.state)) *from -= n;
  if (int64_t* to = count(state)) *to += n;
  c.rec.state = state;
}

// ------------------------------------------------------- render servers ---

// ------------------------------------------------------------ client API ---

Result<pb::JobInfo> Scheduler::Cancel(int64_t job_id) {
  return CancelJob(job_id, "cancelled by the client");
}

Result<pb::JobInfo> Scheduler::CancelJob(int64_t job_id, const std::string& why) {
  MutexLock lock(&mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  Job& job = jt->second;
  if (JobStateFinal(job.rec.state)) return SummaryLocked(job);
  WriteBatch batch;
  auto cancels = EndJobLocked(job, JobState::kCancelled, why, batch);
  AppendLocked(std::move(batch));
  // Renderers are stopped only once the cancel is durable.
  for (auto& [link, msg] : cancels) SendWhenDurableLocked(link, std::move(msg));
  spdlog::info("job {} cancelled: {}", job_id, why);
  WaitDurableLocked();
  return SummaryLocked(jobs_.at(job_id));
}

std::vector<std::pair<std::shared_ptr<RenderServerLink>, pb::ScheduleServerMessage>>
Scheduler::EndJobLocked(Job& job, JobState state, const std::string& why, WriteBatch& batch) {
  const int64_t job_id = job.rec.id;
  job.rec.state = state;
  job.rec.error = why;
  for (int idx : job.pending)
    FinishChunkLocked(job, job.chunks[idx], ChunkState::kCancelled, batch);
  job.pending.clear();
  std::vector<std::pair<std::shared_ptr<RenderServerLink>, pb::ScheduleServerMessage>> cancels;
  for (auto& c : job.chunks) {
    if (c.rec.state == ChunkState::kQueued) {
      // Outsourced jobs keep their chunks out of `pending`.
      FinishChunkLocked(job, c, ChunkState::kCancelled, batch);
      continue;
    }
    if (c.rec.state != ChunkState::kRunning) continue;
    auto st = servers_.find(c.rec.render_server);
    if (st != servers_.end() && st->second.link) {
      pb::ScheduleServerMessage msg;
      auto* cancel = msg.mutable_cancel();
      cancel->set_job_id(job_id);
      cancel->set_chunk(c.rec.index);
      cancel->set_attempt(c.rec.attempts);
      cancel->set_reason(state == JobState::kCancelled ? "job cancelled" : "job failed");
      cancels.emplace_back(st->second.link, std::move(msg));
    } else {
      // Nobody is there to report back: the chunk ends now.
      FreeSlotLocked(c.rec.render_server, job_id, c.rec.index);
      --job.running;
      FinishChunkLocked(job, c, ChunkState::kCancelled, batch);
    }
  }
  job.rec.finish_time = clock_->UnixMillis();
  if (!job.rec.remote_site.empty()) {
    // The peer hears of it through a cancel package, unless the job package
    // never left this site.
    const bool unsent = job.rec.exchange == ExchangeState::kPackaging && !job.task_out;
    auto next = ExchangeTransition(
        job.rec.exchange, unsent ? ExchangeEvent::kCancelledUnsent : ExchangeEvent::kCancelled);
    if (next) job.rec.exchange = *next;
    if (next == ExchangeState::kCancelling) {
      exchange_due_.insert(job_id);
      if (peers_) peers_->Kick();
    }
  }
  JobEndedLocked(job, batch);
  return cancels;
}

}  // namespace ff

namespace ff {}  // namespace ff
