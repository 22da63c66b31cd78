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
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

HostRecord HostFromProto(const pb::Register& reg) {
  HostRecord h;
  h.name = reg.host();
  h.cpu_model = reg.hardware().cpu_model();
  h.cores = reg.hardware().cores();
  h.memory_bytes = reg.hardware().memory_bytes();
  h.gpus.assign(reg.hardware().gpus().begin(), reg.hardware().gpus().end());
  h.os = reg.hardware().os();
  return h;
}

bool FinalStateName(const std::string& s) {
  return s == "done" || s == "failed" || s == "cancelled";
}

bool HasControlChar(const std::string& s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
  });
}

bool ContainsFrame(const std::vector<int64_t>& frames, int64_t f) {
  return std::binary_search(frames.begin(), frames.end(), f);
}

}  // namespace

Scheduler::Scheduler(SiteConfig config, Clock* clock, std::unique_ptr<ResourceDatabase> db,
                     std::unique_ptr<BlobStore> blobs)
    : config_(std::move(config)), clock_(clock), db_(std::move(db)), blobs_(std::move(blobs)) {}

Scheduler::~Scheduler() { Stop(); }

Result<std::unique_ptr<Scheduler>> Scheduler::Open(const SiteConfig& config, Clock* clock) {
  for (const char* d : {"db", "storage", "storage/jobs", "logs"}) {
    FF_RETURN_IF_ERROR(MakeDirs(JoinPath(config.root, d)));
  }
  FF_ASSIGN_OR_RETURN(auto db, OpenSqliteResourceDatabase(config.db_path()));
  FF_ASSIGN_OR_RETURN(auto blobs, BlobStore::Open(config.blob_dir()));
  std::unique_ptr<Scheduler> s(new Scheduler(config, clock, std::move(db), std::move(blobs)));
  FF_RETURN_IF_ERROR(s->Resume());
  s->committer_ = std::thread([p = s.get()] { p->CommitLoop(); });
  return s;
}

Status Scheduler::Resume() {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(int64_t max_id, db_->MaxJobId());
  next_job_id_ = max_id + 1;
  const int64_t now = clock_->MonotonicMillis();

  // Render servers known from before: none is connected yet. Those with
  // running chunks get the reconnect window (a full heartbeat timeout) to
  // come back and claim them; the rest are simply down until they register.
  FF_ASSIGN_OR_RETURN(auto hosts, db_->LoadHosts());
  FF_ASSIGN_OR_RETURN(auto packages, db_->LoadPackages());
  FF_ASSIGN_OR_RETURN(auto servers, db_->LoadRenderServers());
  FF_ASSIGN_OR_RETURN(auto slots, db_->LoadSlots());
  for (auto& r : servers) {
    Server s;
    s.rec = r;
    for (auto& h : hosts) {
      if (h.name == r.host) s.hardware = h;
    }
    for (auto& p : packages) {
      if (p.host == r.host) s.packages.push_back(p);
    }
    last_seen_[r.name] = {now, clock_->UnixMillis()};
    s.disconnected_ms = now;
    s.grace_ms = config_.heartbeat_timeout_ms;
    servers_[r.name] = std::move(s);
  }
  for (auto& sr : slots) {
    auto it = servers_.find(sr.render_server);
    if (it == servers_.end()) continue;
    it->second.slot_ids.push_back(sr.id);
    Slot& slot = slots_[sr.id];
    slot.rec = sr;
    // What a slot runs is recorded in the chunk rows (below), not here.
    slot.rec.state = sr.state == SlotState::kDown ? SlotState::kDown : SlotState::kIdle;
    slot.rec.current_job = 0;
    slot.rec.current_chunk = -1;
    slot.server = &it->second;
    it->second.slots.push_back(&slot);
  }

  FF_ASSIGN_OR_RETURN(auto jobs, db_->LoadJobs());
  size_t resumed = 0;
  for (auto& jr : jobs) {
    Job job;
    job.rec = jr;
    auto profile = ParseJobDescription(jr.profile_toml, "job " + std::to_string(jr.id));
    if (!profile.ok()) {
      spdlog::error("job {}: stored profile unreadable: {}", jr.id, profile.status().message());
      continue;
    }
    job.profile = std::move(profile).value();
    FF_ASSIGN_OR_RETURN(auto chunks, db_->LoadChunks(jr.id));
    std::map<int, std::vector<pb::FrameOutput>> outputs;
    {
      FF_ASSIGN_OR_RETURN(auto frames, db_->LoadFrames(jr.id));
      for (auto& f : frames) {
        if (f.state != FrameState::kDone) continue;
        pb::FrameOutput o;
        o.set_frame(f.frame);
        o.set_sha256(f.sha256);
        o.set_size(f.size);
        o.set_name(BaseName(f.output_path));
        outputs[f.chunk].push_back(o);
      }
    }
    for (auto& cr : chunks) {
      Chunk c;
      c.rec = cr;
      auto fs = FrameSet::Parse(cr.frames);
      if (fs.ok()) c.frames = fs->frames();
      c.outputs = std::move(outputs[cr.index]);
      job.chunks.push_back(std::move(c));
    }
    for (auto& c : job.chunks) {
      const auto n = static_cast<int64_t>(c.frames.size());
      switch (c.rec.state) {
        case ChunkState::kQueued:
          job.pending.push_back(c.rec.index);
          break;
        case ChunkState::kRunning: {
          ++job.running;
          job.frames_running += n;
          auto st = slots_.find(c.rec.slot);
          if (st != slots_.end()) {
            st->second.rec.state = SlotState::kBusy;
            st->second.rec.current_job = jr.id;
            st->second.rec.current_chunk = c.rec.index;
            st->second.attempt = c.rec.attempts;
          }
          break;
        }
        case ChunkState::kDone:
          ++job.final_chunks;
          job.frames_done += n;
          break;
        case ChunkState::kFailed:
          ++job.final_chunks;
          job.frames_failed += n;
          break;
        default:
          ++job.final_chunks;
      }
    }
    if (!JobStateFinal(jr.state)) {
      ++resumed;
      // A kill mid-write leaves a temporary file beside the frames or logs
      // being placed (finished jobs had every write done before they ended).
      auto swept = RemoveTempFiles(JobDir(jr.id));
      if (!swept.ok()) {
        spdlog::warn("job {}: {}", jr.id, swept.status().message());
      } else if (*swept > 0) {
        spdlog::info("job {}: removed {} temporary file(s) a crash left", jr.id, *swept);
      }
    }
    // Outsourced jobs render at their peer: none of their chunks is ours to run.
    if (!jr.remote_site.empty()) job.pending.clear();
    int64_t id = jr.id;
    if (!jr.origin_site.empty()) remote_index_[{jr.origin_site, jr.origin_job_id}] = id;
    if (jr.exchange == "packaging" || jr.exchange == "cancelling" || jr.exchange == "returning") {
      exchange_due_.insert(id);
    }
    // A job that ended but was not announced (the server stopped first) is
    // announced once the committer runs.
    if (JobStateFinal(jr.state) && !jr.notified) pending_.ended_jobs.push_back(id);
    jobs_[id] = std::move(job);
    UpdateRunnableLocked(jobs_[id]);
  }
  spdlog::info("resumed {} unfinished job(s) from {}", resumed, config_.db_path());
  return Status::Ok();
}

void Scheduler::Start() {
  timeout_thread_ = std::thread([this] { TimeoutLoop(); });
}

void Scheduler::Stop() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (timeout_thread_.joinable()) timeout_thread_.join();
  StopCommitter();
}

// ---------------------------------------------------------- group commit ---

uint64_t Scheduler::AppendLocked(WriteBatch&& batch) {
  if (batch.empty()) return appended_seq_;
  if (committer_exited_) {
    // Only after Stop(): nobody batches any more, so write it at once.
    CommitOrDie(batch, "state change after stop");
    return appended_seq_;
  }
  pending_.batches.push_back(std::move(batch));
  commit_cv_.notify_one();
  return ++appended_seq_;
}

void Scheduler::SendWhenDurableLocked(const std::shared_ptr<RenderServerLink>& link,
                                      pb::ScheduleServerMessage msg) {
  if (!link) return;
  if (committer_exited_) {
    link->Send(msg);
    return;
  }
  pending_.sends.emplace_back(link, std::move(msg));
  commit_cv_.notify_one();
  ++appended_seq_;
}

void Scheduler::WaitDurableLocked(std::unique_lock<std::mutex>& lock, uint64_t seq) {
  durable_cv_.wait(lock, [&] { return durable_seq_ >= seq || committer_exited_; });
}

void Scheduler::Flush() {
  std::unique_lock<std::mutex> lock(mu_);
  WaitDurableLocked(lock, appended_seq_);
}

void Scheduler::CommitLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    commit_cv_.wait(lock, [&] { return committer_stop_ || !pending_.empty(); });
    if (pending_.empty()) {  // stopping, and everything is written
      committer_exited_ = true;
      durable_cv_.notify_all();
      return;
    }
    Pending group = std::move(pending_);
    pending_ = Pending();
    const uint64_t seq = appended_seq_;
    lock.unlock();
    // Frames and logs were renamed into these directories before their
    // results were appended; the renames must be durable before the rows
    // that point at them.
    for (const std::string& dir : group.dirs) {
      Status st = SyncDir(dir);
      if (!st.ok()) {
        spdlog::critical("cannot make frames durable on storage: {}; exiting", st.message());
        std::_Exit(70);
      }
    }
    if (!group.batches.empty()) {
      Status st = db_->CommitGroup(group.batches);
      if (!st.ok()) {
        spdlog::critical("cannot record {} state change(s) in the resource database: {}; exiting",
                         group.batches.size(), st.message());
        std::_Exit(70);
      }
    }
    for (auto& [link, msg] : group.sends) link->Send(msg);
    lock.lock();
    durable_seq_ = seq;
    durable_cv_.notify_all();
    for (int64_t id : group.ended_jobs) {
      auto it = jobs_.find(id);
      if (it != jobs_.end()) NotifyIfEndedLocked(it->second);
    }
    BumpLocked();
  }
}

void Scheduler::StopCommitter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    committer_stop_ = true;
  }
  commit_cv_.notify_one();
  if (committer_.joinable()) committer_.join();
}

void Scheduler::TimeoutLoop() {
  // A dead render server is noticed at most a twentieth of the shorter limit
  // late (100 ms with the defaults); a pass costs one look per server.
  const auto period = std::chrono::milliseconds(std::clamp<int64_t>(
      std::min(config_.heartbeat_timeout_ms, config_.reconnect_grace_ms) / 20, 20, 250));
  std::unique_lock<std::mutex> lock(stop_mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, period, [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    CheckTimeouts();
    lock.lock();
  }
}

void Scheduler::CommitOrDie(const WriteBatch& batch, const char* what) {
  if (batch.empty()) return;
  Status st = db_->Commit(batch);
  if (!st.ok()) {
    // The in-memory state is already ahead of the database; continuing would
    // acknowledge changes that are not durable. Exit and let the restart
    // resume from the last durable state.
    spdlog::critical("cannot record {} in the resource database: {}; exiting", what, st.message());
    std::_Exit(70);
  }
}

void Scheduler::NotifyIfEndedLocked(Job& job) {
  // A job without notify targets was marked notified with its final state.
  if (job.notified || job.rec.notified || !JobStateFinal(job.rec.state)) return;
  job.notified = true;
  notifier_.JobEnded(SummaryLocked(job), job.profile.notify, [this, id = job.rec.id] {
    std::lock_guard<std::mutex> lock(mu_);
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
  changed_cv_.notify_all();
}

uint64_t Scheduler::WaitForChange(uint64_t seen, int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  changed_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                       [&] { return version_ != seen; });
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
  if (static_cast<int64_t>(request.description().size()) > kMaxJobDescriptionBytes) {
    return InvalidArgument("description: " + PrintableExcerpt(source) + " is " +
                           std::to_string(request.description().size()) +
                           " bytes, more than the limit of " +
                           std::to_string(kMaxJobDescriptionBytes));
  }
  FF_ASSIGN_OR_RETURN(JobProfile profile, ParseJobDescription(request.description(), source));
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
    tmpl.queue = "active";
    notes.push_back("placed locally: " + where.reason);
  } else {
    tmpl.queue = "outsourced";
    tmpl.remote_site = where.peer;
    tmpl.exchange = "packaging";
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
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!meta_key.empty()) {
      auto seen = db_->GetMeta(meta_key);
      if (seen.ok() && seen->has_value()) {
        spdlog::info("{} repeated; it is job {}", meta_key, **seen);
        return static_cast<int64_t>(std::stoll(**seen));
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
      std::lock_guard<std::mutex> lock(self->mu_);
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
      e.queue = "new";
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

  std::lock_guard<std::mutex> lock(mu_);
  Job& stored = jobs_[id] = std::move(job);
  if (!stored.rec.origin_site.empty()) {
    remote_index_[{stored.rec.origin_site, stored.rec.origin_job_id}] = id;
  }
  if (!stored.rec.exchange.empty()) exchange_due_.insert(id);
  UpdateRunnableLocked(stored);
  spdlog::info("job {} '{}' accepted: {} frames in {} chunks, priority {}, {}", id, stored.rec.name,
               stored.profile.frames.size(), index, stored.rec.priority,
               notes.empty() ? std::string("local") : notes.back());
  DispatchLocked();
  BumpLocked();
  return id;
}

// -------------------------------------------------------------- matching ---

std::string Scheduler::PackageMismatch(const Server& s, const JobProfile& p) const {
  const PackageRecord* pkg = nullptr;
  for (const auto& candidate : s.packages) {
    if (candidate.name == p.package) pkg = &candidate;
  }
  if (!pkg) return "has no package '" + p.package + "'";
  if (!p.package_version.MatchesAny()) {
    auto v = Version::Parse(pkg->version);
    if (!v.ok() || !p.package_version.Matches(*v)) {
      return "has " + p.package + " " + pkg->version + ", the job needs '" +
             p.package_version.text() + "'";
    }
  }
  return "";
}

bool Scheduler::CanRunLocked(const Server& s, const Slot& slot, Job& job) const {
  auto& known = job.package_ok[&s];
  if (known.first != s.generation) known = {s.generation, PackageMismatch(s, job.profile).empty()};
  return known.second && SlotMeets(slot.rec, job.profile.requirements);
}

bool Scheduler::SlotMeets(const SlotRecord& slot, const Requirements& need) {
  return slot.cores >= need.cores && slot.memory_bytes >= need.memory_bytes &&
         slot.gpus >= need.gpus;
}

std::string Scheduler::CannotRunReason(const Server& s, const Slot* slot,
                                       const JobProfile& p) const {
  if (std::string why = PackageMismatch(s, p); !why.empty()) return why;
  auto check = [&](const SlotRecord& r) -> std::string {
    if (r.cores < p.requirements.cores) {
      return "slot " + r.id + " has " + std::to_string(r.cores) + " core(s), the job needs " +
             std::to_string(p.requirements.cores);
    }
    if (r.memory_bytes < p.requirements.memory_bytes) {
      return "slot " + r.id + " has " + FormatBytes(r.memory_bytes, ByteStyle::kOneDecimal) +
             " of memory, the job needs " +
             FormatBytes(p.requirements.memory_bytes, ByteStyle::kOneDecimal);
    }
    if (r.gpus < p.requirements.gpus) {
      return "slot " + r.id + " has " + std::to_string(r.gpus) + " GPU(s), the job needs " +
             std::to_string(p.requirements.gpus);
    }
    return "";
  };
  if (slot) return check(slot->rec);
  std::string first_reason = "has no render slots";
  for (const auto& id : s.slot_ids) {
    auto it = slots_.find(id);
    if (it == slots_.end()) continue;
    std::string r = check(it->second.rec);
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
  std::stable_sort(per_server.begin(), per_server.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Slot*> idle;
  for (size_t round = 0;; ++round) {
    bool any = false;
    for (auto& [busy, list] : per_server) {
      if (round < list.size()) {
        idle.push_back(list[round]);
        any = true;
      }
    }
    if (!any) break;
  }

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
      a->set_job_first_frame(job.profile.frames.first());
      a->set_job_last_frame(job.profile.frames.last());
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

Status Scheduler::Register(const pb::Register& reg, std::shared_ptr<RenderServerLink> link) {
  if (reg.render_server().empty()) {
    return InvalidArgument("register: render_server: must name the render server");
  }
  // Validate everything before touching state: a bad registration is refused,
  // never allowed to reach the database (where it would stop the server).
  if (const char* problem = ServerNameProblem(reg.render_server())) {
    return InvalidArgument("register: render_server: name '" +
                           PrintableExcerpt(reg.render_server()) + "' " + problem);
  }
  if (reg.slots_size() == 0) {
    return InvalidArgument("register: slots: render server '" + reg.render_server() +
                           "' offers no render slots");
  }
  if (reg.instance().size() > 200) {
    return InvalidArgument("register: instance: longer than 200 characters");
  }
  if (reg.host().empty()) {
    return InvalidArgument("register: host: render server '" + reg.render_server() +
                           "' did not name its host");
  }
  if (reg.host().size() > 255) {
    return InvalidArgument("register: host: '" + PrintableExcerpt(reg.host()) +
                           "' is longer than 255 characters");
  }
  // Names go to logs, to `hosts`, and into newline-separated lists in the
  // database (chunks.failed_hosts, hosts.gpus): no control characters.
  if (HasControlChar(reg.render_server()) || HasControlChar(reg.host())) {
    return InvalidArgument(
        "register: render_server and host must not contain control "
        "characters");
  }
  for (int i = 0; i < reg.hardware().gpus_size(); ++i) {
    if (HasControlChar(reg.hardware().gpus(i))) {
      return InvalidArgument("register: hardware.gpus[" + std::to_string(i) +
                             "]: must not contain control characters");
    }
  }
  {
    std::set<std::string> names;
    for (int i = 0; i < reg.slots_size(); ++i) {
      const std::string& n = reg.slots(i).name();
      if (const char* problem = ServerNameProblem(n)) {
        return InvalidArgument("register: slots[" + std::to_string(i) + "].name: '" +
                               PrintableExcerpt(n) + "' " + problem);
      }
      if (!names.insert(n).second) {
        return InvalidArgument("register: slots[" + std::to_string(i) + "].name: '" + n +
                               "' is used twice");
      }
    }
    names.clear();
    for (int i = 0; i < reg.packages_size(); ++i) {
      const std::string& n = reg.packages(i).name();
      if (n.empty() || !names.insert(n).second) {
        return InvalidArgument("register: packages[" + std::to_string(i) + "].name: '" +
                               PrintableExcerpt(n) + "' is empty or used twice");
      }
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  Server& s = servers_[reg.render_server()];
  if (s.link && s.link != link) {
    // Another process with the same name while this one is alive and heard
    // from: refused, or the two would take the name from each other for ever
    // and every takeover would count as a lost render server for its chunks.
    // The same process (a reconnect) or one that is silent takes over.
    const bool other_process =
        !reg.instance().empty() && !s.instance.empty() && reg.instance() != s.instance;
    if (other_process) {
      int64_t seen_ms = 0;
      {
        std::lock_guard<std::mutex> seen_lock(seen_mu_);
        auto it = last_seen_.find(reg.render_server());
        if (it != last_seen_.end()) seen_ms = it->second.first;
      }
      if (clock_->MonotonicMillis() - seen_ms <= config_.heartbeat_timeout_ms) {
        spdlog::warn(
            "render server '{}' on host {} (instance {}) refused: the name is connected from "
            "host {} (instance {})",
            reg.render_server(), reg.host(), reg.instance(), s.rec.host, s.instance);
        return AlreadyExists("render server '" + reg.render_server() +
                             "' is already connected from host " + s.rec.host + " (instance " +
                             s.instance + "); render server names must be unique on a site");
      }
    }
    spdlog::warn("render server '{}' registered again; closing its previous stream",
                 reg.render_server());
    s.link->Close();
  }
  s.link = link;
  s.instance = reg.instance();
  s.generation = next_generation_++;
  Touch(reg.render_server());
  s.rec.name = reg.render_server();
  s.rec.host = reg.host();
  s.rec.status = ServerStatus::kUp;
  s.rec.registered_at = clock_->UnixMillis();
  s.rec.last_heartbeat = s.rec.registered_at;
  s.hardware = HostFromProto(reg);
  s.packages.clear();
  for (const auto& p : reg.packages()) {
    s.packages.push_back(
        PackageRecord{reg.host(), p.name(), p.version(), p.executable(), p.kind()});
  }

  WriteBatch batch;
  // Chunks this server was running before: keep those it still runs, requeue the rest.
  std::set<std::tuple<int64_t, int, int>> still_running;
  for (const auto& r : reg.running()) still_running.insert({r.job_id(), r.chunk(), r.attempt()});
  std::map<std::string, std::pair<int64_t, int>> kept_slot_work;  // slot id -> (job, chunk)
  // A chunk is kept only on a slot the server still offers: one slot, one chunk.
  std::set<std::string> offered_slots;
  for (const auto& spec : reg.slots()) offered_slots.insert(s.rec.name + "/" + spec.name());
  for (auto& [id, job] : jobs_) {
    for (auto& c : job.chunks) {
      if (c.rec.state != ChunkState::kRunning || c.rec.render_server != s.rec.name) continue;
      // A cancelled job's chunk is not kept: it stays in still_running so the
      // (possibly lost) cancel is sent again below.
      if (job.rec.state != JobState::kCancelled && offered_slots.count(c.rec.slot) &&
          still_running.erase({job.rec.id, c.rec.index, c.rec.attempts})) {
        kept_slot_work[c.rec.slot] = {job.rec.id, c.rec.index};
      } else {
        LoseChunkLocked(job, c, batch, "render server '" + s.rec.name + "' restarted");
      }
    }
  }
  // The first message on every stream is `registered`; cancels and
  // assignments follow it.
  pb::ScheduleServerMessage hello;
  hello.mutable_registered()->set_site(config_.site_name);
  hello.mutable_registered()->set_heartbeat_interval_ms(
      static_cast<int32_t>(config_.heartbeat_interval_ms));
  link->Send(hello);
  // Work the server runs that we no longer want (finished, cancelled, reassigned).
  for (const auto& [job_id, chunk, attempt] : still_running) {
    pb::ScheduleServerMessage msg;
    auto* cancel = msg.mutable_cancel();
    cancel->set_job_id(job_id);
    cancel->set_chunk(chunk);
    cancel->set_attempt(attempt);
    cancel->set_reason("the schedule server no longer expects this chunk from you");
    link->Send(msg);
  }

  for (const auto& id : s.slot_ids) slots_.erase(id);
  s.slot_ids.clear();
  s.slots.clear();
  WriteBatch::SlotsOf slot_set;
  slot_set.render_server = s.rec.name;
  for (const auto& spec : reg.slots()) {
    Slot slot;
    slot.rec.id = s.rec.name + "/" + spec.name();
    slot.rec.render_server = s.rec.name;
    slot.rec.cores = std::max(1, spec.cores());
    slot.rec.memory_bytes = spec.memory_bytes();
    slot.rec.gpus = spec.gpus();
    auto kept = kept_slot_work.find(slot.rec.id);
    if (kept != kept_slot_work.end()) {
      slot.rec.state = SlotState::kBusy;
      slot.rec.current_job = kept->second.first;
      slot.rec.current_chunk = kept->second.second;
      slot.attempt = jobs_[kept->second.first].chunks[kept->second.second].rec.attempts;
    }
    slot.server = &s;
    s.slot_ids.push_back(slot.rec.id);
    // Durable as idle: the chunk rows say what it runs (see SlotRecord).
    SlotRecord durable = slot.rec;
    if (durable.state == SlotState::kBusy) {
      durable.state = SlotState::kIdle;
      durable.current_job = 0;
      durable.current_chunk = -1;
    }
    slot_set.slots.push_back(durable);
    Slot& stored = slots_[slot.rec.id] = slot;
    s.slots.push_back(&stored);
  }
  RefreshIdleLocked(s);
  batch.hosts.push_back(s.hardware);
  batch.packages.push_back(WriteBatch::PackagesOf{reg.host(), s.packages});
  batch.render_servers.push_back(s.rec);
  batch.slot_sets.push_back(std::move(slot_set));
  AppendLocked(std::move(batch));
  spdlog::info(
      "render server '{}' on host '{}' registered: {} slot(s), {} package(s), {} chunk(s) "
      "resumed",
      s.rec.name, s.rec.host, reg.slots_size(), reg.packages_size(), kept_slot_work.size());

  DispatchLocked();
  BumpLocked();
  return Status::Ok();
}

void Scheduler::Touch(const std::string& render_server) {
  std::lock_guard<std::mutex> lock(seen_mu_);
  last_seen_[render_server] = {clock_->MonotonicMillis(), clock_->UnixMillis()};
}

void Scheduler::OnHeartbeat(const std::string& render_server) { Touch(render_server); }

void Scheduler::OnDisconnect(const std::string& render_server, const RenderServerLink* link) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = servers_.find(render_server);
  if (it == servers_.end() || it->second.link.get() != link) return;
  it->second.link.reset();
  it->second.disconnected_ms = clock_->MonotonicMillis();
  it->second.grace_ms = config_.reconnect_grace_ms;
  RefreshIdleLocked(it->second);
  if (it->second.rec.status == ServerStatus::kDraining) {
    // It said it was stopping: nothing to wait for.
    WriteBatch batch;
    MarkServerDownLocked(it->second, "stopped (drained)", batch);
    AppendLocked(std::move(batch));
    DispatchLocked();
    BumpLocked();
    return;
  }
  spdlog::warn("render server '{}' disconnected; its chunks wait {} ms for it to come back",
               render_server, config_.reconnect_grace_ms);
  BumpLocked();
}

void Scheduler::OnDrain(const std::string& render_server, const pb::Drain& d) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = servers_.find(render_server);
  if (it == servers_.end()) return;
  Server& s = it->second;
  WriteBatch batch;
  if (s.rec.status == ServerStatus::kUp) {
    s.rec.status = ServerStatus::kDraining;
    batch.render_servers.push_back(s.rec);
    spdlog::info("render server '{}' is draining: {}", render_server, d.reason());
  }
  RefreshIdleLocked(s);  // only servers that are up take chunks
  int returned = 0;
  for (const auto& r : d.returned()) {
    auto jt = jobs_.find(r.job_id());
    if (jt == jobs_.end() || r.chunk() < 0 ||
        r.chunk() >= static_cast<int>(jt->second.chunks.size())) {
      continue;
    }
    Chunk& c = jt->second.chunks[r.chunk()];
    if (c.rec.state != ChunkState::kRunning || c.rec.render_server != render_server ||
        c.rec.attempts != r.attempt()) {
      continue;  // not (or no longer) this server's attempt
    }
    ++c.returned;
    RequeueChunkLocked(jt->second, c, batch,
                       "handed back by render server '" + render_server + "' (stopping)");
    FreeSlotLocked(render_server, r.job_id(), r.chunk());
    ++returned;
  }
  if (returned) spdlog::info("render server '{}' handed back {} chunk(s)", render_server, returned);
  AppendLocked(std::move(batch));
  DispatchLocked();
  BumpLocked();
}

void Scheduler::CheckTimeouts() {
  std::lock_guard<std::mutex> lock(mu_);
  const int64_t now = clock_->MonotonicMillis();
  WriteBatch batch;
  bool stale = false;
  const int64_t now_unix = clock_->UnixMillis();
  for (auto& [name, s] : servers_) {
    if (s.rec.status == ServerStatus::kDown) continue;
    int64_t seen_ms = 0, seen_unix = 0;
    {
      std::lock_guard<std::mutex> seen_lock(seen_mu_);
      auto it = last_seen_.find(name);
      if (it != last_seen_.end()) std::tie(seen_ms, seen_unix) = it->second;
    }
    // The heartbeat time is recorded every few seconds, for people reading
    // `hosts`; liveness itself is judged in memory.
    if (s.link && seen_unix - s.rec.last_heartbeat >= 5000 && now_unix >= seen_unix) {
      s.rec.last_heartbeat = seen_unix;
      batch.render_servers.push_back(s.rec);
    }
    if (s.link && now - seen_ms > config_.heartbeat_timeout_ms) {
      spdlog::warn("render server '{}' silent for {} ms; marking it down", name, now - seen_ms);
      s.link->Close();
      s.link.reset();
      MarkServerDownLocked(s, "was silent longer than the heartbeat timeout", batch);
      stale = true;
    } else if (!s.link && now - s.disconnected_ms > s.grace_ms) {
      MarkServerDownLocked(s, "closed its stream and did not reconnect", batch);
      stale = true;
    }
  }
  AppendLocked(std::move(batch));
  if (stale) {
    DispatchLocked();
    BumpLocked();
  } else if (deferred_chunks_ > 0) {
    DispatchLocked();  // a disk-full backoff may have run out
  }
}

void Scheduler::MarkServerDownLocked(Server& s, const std::string& why, WriteBatch& batch) {
  s.rec.status = ServerStatus::kDown;
  batch.render_servers.push_back(s.rec);
  int requeued = 0;
  for (const auto& id : s.slot_ids) {
    Slot& slot = slots_[id];
    if (slot.rec.state == SlotState::kBusy) {
      auto jt = jobs_.find(slot.rec.current_job);
      if (jt != jobs_.end() && slot.rec.current_chunk >= 0 &&
          slot.rec.current_chunk < static_cast<int>(jt->second.chunks.size())) {
        Chunk& c = jt->second.chunks[slot.rec.current_chunk];
        if (c.rec.state == ChunkState::kRunning && c.rec.render_server == s.rec.name) {
          LoseChunkLocked(jt->second, c, batch, "render server '" + s.rec.name + "' " + why);
          ++requeued;
        }
      }
    }
    SetSlotStateLocked(slot, SlotState::kDown);
    batch.slot_updates.push_back(slot.rec);
  }
  RefreshIdleLocked(s);
  // Chunks recorded as running on this server but not on a known slot.
  for (auto& [jid, job] : jobs_) {
    for (auto& c : job.chunks) {
      if (c.rec.state == ChunkState::kRunning && c.rec.render_server == s.rec.name) {
        LoseChunkLocked(job, c, batch, "render server '" + s.rec.name + "' " + why);
        ++requeued;
      }
    }
  }
  spdlog::warn("render server '{}' is down ({}); {} chunk(s) requeued", s.rec.name, why, requeued);
}

void Scheduler::LoseChunkLocked(Job& job, Chunk& c, WriteBatch& batch, const std::string& why) {
  if (c.rec.state != ChunkState::kRunning) return;
  // Attempts that did not fail were lost with their render server.
  const int losses = c.rec.attempts - static_cast<int>(c.rec.failed_hosts.size()) - c.returned -
                     c.disk_full_retries;
  if (job.rec.state != JobState::kCancelled && losses >= kMaxServerLosses) {
    c.rec.error = "lost its render server " + std::to_string(losses) + " times (last: " + why +
                  "); a chunk that takes hosts down is not retried further";
    c.rec.ended_at = clock_->UnixMillis();
    --job.running;
    spdlog::error("job {} chunk {}: {}", job.rec.id, c.rec.index, c.rec.error);
    FinishChunkLocked(job, c, ChunkState::kFailed, batch);
    MaybeFinishJobLocked(job, batch);
    return;
  }
  RequeueChunkLocked(job, c, batch, why);
}

void Scheduler::RequeueChunkLocked(Job& job, Chunk& c, WriteBatch& batch, const std::string& why) {
  if (c.rec.state != ChunkState::kRunning) return;
  if (job.rec.state == JobState::kCancelled) {
    // Nothing runs a chunk of a cancelled job again: it ends here.
    c.rec.ended_at = clock_->UnixMillis();
    --job.running;
    FinishChunkLocked(job, c, ChunkState::kCancelled, batch);
    MaybeFinishJobLocked(job, batch);
    return;
  }
  SetChunkStateLocked(job, c, ChunkState::kQueued);
  c.rec.error = why;
  c.rec.ended_at = clock_->UnixMillis();
  --job.running;
  job.pending.push_front(c.rec.index);
  batch.chunk_updates.push_back(c.rec);
  UpdateRunnableLocked(job);
}

void Scheduler::FreeSlotLocked(const std::string& server, int64_t job_id, int chunk) {
  auto it = servers_.find(server);
  if (it == servers_.end()) return;
  for (Slot* slot : it->second.slots) {
    if (slot->rec.state == SlotState::kBusy && slot->rec.current_job == job_id &&
        slot->rec.current_chunk == chunk) {
      SetSlotStateLocked(*slot, SlotState::kIdle);
    }
  }
}

void Scheduler::OnProgress(const std::string& render_server, const pb::ChunkProgress& p) {
  std::string log_path;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto jt = jobs_.find(p.job_id());
    if (jt == jobs_.end() || p.chunk() < 0 ||
        p.chunk() >= static_cast<int>(jt->second.chunks.size())) {
      return;
    }
    Job& job = jt->second;
    Chunk& c = job.chunks[p.chunk()];
    if (c.rec.state != ChunkState::kRunning || c.rec.render_server != render_server ||
        c.rec.attempts != p.attempt()) {
      return;
    }
    const int done = std::clamp(p.frames_done(), 0, static_cast<int>(c.frames.size()));
    job.frames_progress += done - c.frames_done;
    c.frames_done = done;
    c.current_frame = p.frame();
    if (p.log_lines_size() > 0) {
      std::string rel = ChunkLogRel(p.job_id(), p.chunk(), p.attempt());
      log_path = JoinPath(config_.storage_dir(), rel);
      if (c.rec.log_path != rel) {
        c.rec.log_path = rel;
        (void)MakeDirs(DirName(log_path));
      }
    }
    BumpLocked();
  }
  // The live log is appended outside the dispatch mutex; one stream delivers
  // a chunk's progress in order, so its lines stay in order.
  if (!log_path.empty()) {
    std::ofstream out(log_path, std::ios::app);
    for (const auto& line : p.log_lines()) out << line << '\n';
  }
}

std::string Scheduler::ChunkLogRel(int64_t job, int chunk, int attempt) {
  return "jobs/" + std::to_string(job) + "/logs/chunk-" + std::to_string(chunk) + ".attempt-" +
         std::to_string(attempt) + ".log";
}

// A result is handled in three steps so that the filesystem work (checking
// blobs, linking frames and the log into storage) happens without the
// dispatch mutex: (1) under the mutex, is this the current attempt and what
// must be placed; (2) without it, place; (3) under it again, still current?
// then record, free the slot and dispatch. The renames of step 2 are made
// durable by the committer (one directory fsync per group) before the rows.
void Scheduler::OnResult(const std::string& render_server, const pb::ChunkResult& r) {
  bool cancelled = false;
  bool collects = true;
  std::string log_rel;
  std::vector<std::pair<int64_t, std::string>> wanted;  // frame, storage path
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = servers_.find(render_server);
    if (it != servers_.end()) Touch(render_server);
    auto jt = jobs_.find(r.job_id());
    if (jt == jobs_.end() || r.chunk() < 0 ||
        r.chunk() >= static_cast<int>(jt->second.chunks.size())) {
      spdlog::warn("render server '{}' reported unknown chunk {}/{}", render_server, r.job_id(),
                   r.chunk());
      FreeSlotLocked(render_server, r.job_id(), r.chunk());
      DispatchLocked();
      return;
    }
    Job& job = jt->second;
    Chunk& c = job.chunks[r.chunk()];
    // Only the current attempt on the server it was given to counts: a late
    // result of a requeued attempt must not place frames a second time.
    bool current = c.rec.state == ChunkState::kRunning && c.rec.render_server == render_server &&
                   c.rec.attempts == r.attempt();
    if (!current) {
      spdlog::info("ignoring stale result of job {} chunk {} attempt {} from '{}'", r.job_id(),
                   r.chunk(), r.attempt(), render_server);
      // A slot of this server holding this chunk runs its current attempt
      // when the chunk is running here: that slot stays busy. An unknown
      // server has no slots (and must not be added to the site by its result).
      bool current_here =
          c.rec.state == ChunkState::kRunning && c.rec.render_server == render_server;
      if (it != servers_.end() && !current_here) {
        FreeSlotLocked(render_server, r.job_id(), r.chunk());
      }
      DispatchLocked();
      return;
    }
    cancelled = job.rec.state == JobState::kCancelled;
    collects = !job.profile.output.empty();
    log_rel = ChunkLogRel(job.rec.id, c.rec.index, c.rec.attempts);
    if (r.ok() && collects) {
      for (int64_t f : c.frames) {
        wanted.emplace_back(f, JoinPath(JobDir(job.rec.id), job.profile.OutputName(f)));
      }
    }
  }

  std::set<std::string> dirs;  // to fsync before the result is recorded
  bool have_log = false;
  const std::string log_path = JoinPath(config_.storage_dir(), log_rel);
  if (!r.log_text().empty() || (!r.log_sha256().empty() && blobs_->Has(r.log_sha256()))) {
    Status st = MakeDirs(DirName(log_path));
    if (st.ok() && !r.log_text().empty()) {
      st = WriteFileAtomic(log_path, r.log_text());
    } else if (st.ok()) {
      st = LinkOrCopy(blobs_->PathOf(r.log_sha256()), log_path, DirSync::kByCaller);
      dirs.insert(DirName(log_path));
    }
    have_log = st.ok();
    if (!st.ok()) spdlog::warn("job {} chunk {}: {}", r.job_id(), r.chunk(), st.message());
  }
  std::string error = r.ok() ? "" : (r.error().empty() ? "renderer failed" : r.error());
  bool disk_full = !r.ok() && r.disk_full();
  std::vector<pb::FrameOutput> placed;
  if (error.empty() && collects) {
    // Every frame of the chunk must come back as a verified blob.
    std::map<int64_t, const pb::FrameOutput*> by_frame;
    for (const auto& o : r.outputs()) by_frame[o.frame()] = &o;
    for (const auto& [f, dest] : wanted) {
      auto ot = by_frame.find(f);
      if (ot == by_frame.end()) {
        error = "frame " + std::to_string(f) + " produced no output";
        break;
      }
      if (!blobs_->Has(ot->second->sha256())) {
        error = "output of frame " + std::to_string(f) + " was not uploaded";
        break;
      }
      placed.push_back(*ot->second);
    }
  }
  if (error.empty() && collects && !cancelled) {
    // Place frames on site storage: link from the verified blob under a temp
    // name, then rename, so a frame file is either absent or complete.
    for (size_t i = 0; i < placed.size(); ++i) {
      const std::string& dest = wanted[i].second;
      Status st = MakeDirs(DirName(dest));
      if (st.ok()) st = LinkOrCopy(blobs_->PathOf(placed[i].sha256()), dest, DirSync::kByCaller);
      if (!st.ok()) {
        error = "cannot place frame " + std::to_string(placed[i].frame()) +
                " on storage: " + st.message();
        disk_full = IsDiskFull(st);
        break;
      }
      dirs.insert(DirName(dest));
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto jt = jobs_.find(r.job_id());
  Job& job = jt->second;
  Chunk& c = job.chunks[r.chunk()];
  if (c.rec.state != ChunkState::kRunning || c.rec.render_server != render_server ||
      c.rec.attempts != r.attempt()) {
    // Requeued while its files were placed (its server timed out): the next
    // attempt replaces them; nothing is recorded for this one.
    spdlog::info("result of job {} chunk {} attempt {} from '{}' arrived too late", r.job_id(),
                 r.chunk(), r.attempt(), render_server);
    return;
  }
  pending_.dirs.insert(dirs.begin(), dirs.end());
  RecordResultLocked(render_server, r, job, c, error, placed, have_log ? log_rel : "", disk_full);
}

void Scheduler::RecordResultLocked(const std::string& render_server, const pb::ChunkResult& r,
                                   Job& job, Chunk& c, std::string error,
                                   const std::vector<pb::FrameOutput>& placed,
                                   const std::string& log_rel, bool disk_full) {
  WriteBatch batch;
  FreeSlotLocked(render_server, r.job_id(), r.chunk());
  --job.running;
  // The render server's clock says when the chunk ended, but is not trusted
  // past the window this site saw it run in (its clock may be off, or the
  // value garbage): the time feeds the frame-time estimates.
  const int64_t now_unix = clock_->UnixMillis();
  c.rec.ended_at =
      r.ended_ms() >= c.rec.started_at && r.ended_ms() <= now_unix ? r.ended_ms() : now_unix;
  c.rec.exit_code = r.exit_code();
  if (!log_rel.empty()) c.rec.log_path = log_rel;

  if (job.rec.state == JobState::kCancelled) {
    FinishChunkLocked(job, c, ChunkState::kCancelled, batch);
  } else if (error.empty()) {
    c.outputs = placed;
    // Frame rows are written once, when the frame is final. `placed` is in
    // frame order, one per frame, or empty for a job that collects no files.
    for (size_t i = 0; i < c.frames.size(); ++i) {
      FrameRecord fr;
      fr.job_id = job.rec.id;
      fr.frame = c.frames[i];
      fr.chunk = c.rec.index;
      fr.state = FrameState::kDone;
      fr.render_server = render_server;
      if (i < placed.size()) {
        fr.output_path =
            "jobs/" + std::to_string(job.rec.id) + "/" + job.profile.OutputName(placed[i].frame());
        fr.sha256 = placed[i].sha256();
        fr.size = placed[i].size();
      }
      batch.frame_updates.push_back(std::move(fr));
    }
    c.rec.error.clear();
    FinishChunkLocked(job, c, ChunkState::kDone, batch);
    if (c.rec.started_at > 0 && c.rec.ended_at > c.rec.started_at && !c.frames.empty()) {
      // Measured seconds per frame, for deadline estimates (EWMA).
      const double x = (c.rec.ended_at - c.rec.started_at) / 1000.0 / c.frames.size();
      auto& [avg, n] = frame_seconds_[job.profile.package];
      avg = n == 0 ? x : 0.8 * avg + 0.2 * x;
      ++n;
    }
  } else if (disk_full) {
    // Environmental: retried once space is freed, whatever max_attempts
    // says, and visible meanwhile as the chunk's error.
    const int64_t backoff =
        std::min(kDiskFullMinBackoffMs << std::min(c.disk_full_retries, 5), kDiskFullMaxBackoffMs);
    ++c.disk_full_retries;
    spdlog::warn(
        "job {} chunk {} attempt {} on '{}' stopped on a full disk (retrying in {} ms): {}",
        job.rec.id, c.rec.index, c.rec.attempts, render_server, backoff, error);
    ++job.running;  // RequeueChunkLocked expects a running chunk
    RequeueChunkLocked(job, c, batch, error + "; retrying");
    if (c.rec.state == ChunkState::kQueued) {
      if (c.not_before_ms == 0) ++deferred_chunks_;
      c.not_before_ms = clock_->MonotonicMillis() + backoff;
    }
  } else {
    c.rec.error = error;
    c.rec.failed_hosts.push_back(servers_[render_server].rec.host);
    int max_attempts =
        job.profile.max_attempts > 0 ? job.profile.max_attempts : config_.max_attempts;
    spdlog::warn("job {} chunk {} attempt {} failed on '{}': {}", job.rec.id, c.rec.index,
                 c.rec.attempts, render_server, error);
    if (static_cast<int>(c.rec.failed_hosts.size()) < max_attempts) {
      ++job.running;  // RequeueChunkLocked expects a running chunk
      RequeueChunkLocked(job, c, batch, error);
      c.rec.error = error;
    } else {
      FinishChunkLocked(job, c, ChunkState::kFailed, batch);
    }
  }
  MaybeFinishJobLocked(job, batch);
  AppendLocked(std::move(batch));
  DispatchLocked();
}

void Scheduler::FinishChunkLocked(Job& job, Chunk& c, ChunkState state, WriteBatch& batch) {
  SetChunkStateLocked(job, c, state);
  ++job.final_chunks;
  batch.chunk_updates.push_back(c.rec);
  if (state != ChunkState::kDone) {
    for (int64_t f : c.frames) {
      FrameRecord fr;
      fr.job_id = job.rec.id;
      fr.frame = f;
      fr.chunk = c.rec.index;
      fr.state = state == ChunkState::kFailed ? FrameState::kFailed : FrameState::kCancelled;
      fr.render_server = c.rec.render_server;
      batch.frame_updates.push_back(fr);
    }
  }
}

void Scheduler::MaybeFinishJobLocked(Job& job, WriteBatch& batch) {
  if (JobStateFinal(job.rec.state) && job.rec.state != JobState::kCancelled) return;
  if (job.final_chunks < static_cast<int>(job.chunks.size())) return;
  if (job.rec.state != JobState::kCancelled) {
    const int64_t failed_frames = job.frames_failed;
    if (failed_frames == 0) {
      job.rec.state = JobState::kDone;
    } else {
      job.rec.state = JobState::kFailed;
      job.rec.error = std::to_string(failed_frames) + " of " +
                      std::to_string(job.profile.frames.size()) +
                      " frame(s) failed after every attempt; see `frameflow logs " +
                      std::to_string(job.rec.id) + " FRAME`";
    }
  }
  if (job.rec.finish_time == 0) job.rec.finish_time = clock_->UnixMillis();
  JobEndedLocked(job, batch);
  spdlog::info("job {} '{}' {}", job.rec.id, job.rec.name, JobStateName(job.rec.state));
}

void Scheduler::JobEndedLocked(Job& job, WriteBatch& batch) {
  if (!job.rec.origin_site.empty()) {
    // A remote job leaves the active queue once its results are on their
    // way back (MarkResultReturned).
    job.rec.queue = "active";
    job.rec.exchange = "returning";
    exchange_due_.insert(job.rec.id);
    if (peers_) peers_->Kick();
    RecordEventLocked(
        job,
        std::string(JobStateName(job.rec.state)) + "; returning results to " + job.rec.origin_site,
        batch);
  } else {
    const std::string left = job.rec.queue;
    job.rec.queue = "";
    RecordEventLocked(job,
                      std::string(JobStateName(job.rec.state)) +
                          (job.rec.error.empty() ? "" : ": " + job.rec.error) +
                          "; removed from the " + left + " queue",
                      batch);
  }
  // Nothing to announce: recorded as announced with the final state itself.
  if (job.profile.notify.empty()) job.rec.notified = true;
  batch.job_updates.push_back(job.rec);
  UpdateRunnableLocked(job);
  pending_.ended_jobs.push_back(job.rec.id);  // notified once this is durable
}

void Scheduler::RecordEventLocked(const Job& job, const std::string& note, WriteBatch& batch) {
  JobEventRecord e;
  e.job_id = job.rec.id;
  e.time = clock_->UnixMillis();
  e.queue = job.rec.queue;
  e.state = JobStateName(job.rec.state);
  e.note = note;
  batch.job_events.push_back(std::move(e));
}

// ------------------------------------------------------------ client API ---

Result<pb::JobInfo> Scheduler::Cancel(int64_t job_id) {
  return CancelJob(job_id, "cancelled by the client");
}

Result<pb::JobInfo> Scheduler::CancelJob(int64_t job_id, const std::string& why) {
  std::unique_lock<std::mutex> lock(mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  Job& job = jt->second;
  if (JobStateFinal(job.rec.state)) return SummaryLocked(job);
  WriteBatch batch;
  job.rec.state = JobState::kCancelled;
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
      cancel->set_reason("job cancelled");
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
    if (job.rec.exchange == "packaging" && !job.task_out) {
      job.rec.exchange = "not sent";
    } else if (job.rec.exchange != "rejected" && job.rec.exchange != "returned") {
      job.rec.exchange = "cancelling";
      exchange_due_.insert(job_id);
      if (peers_) peers_->Kick();
    }
  }
  JobEndedLocked(job, batch);
  AppendLocked(std::move(batch));
  // Renderers are stopped only once the cancel is durable.
  for (auto& [link, msg] : cancels) SendWhenDurableLocked(link, std::move(msg));
  spdlog::info("job {} cancelled: {}", job_id, why);
  WaitDurableLocked(lock, appended_seq_);
  return SummaryLocked(jobs_.at(job_id));
}

std::string Scheduler::NoCapableReasonLocked(const JobProfile& p, int* capable_servers) const {
  std::vector<std::string> reasons;
  int capable = 0;
  int up = 0;
  for (const auto& [name, s] : servers_) {
    if (s.rec.status != ServerStatus::kUp || !s.link) continue;
    ++up;
    std::string why = CannotRunReason(s, nullptr, p);
    if (why.empty()) {
      ++capable;
    } else {
      reasons.push_back(name + " " + why);
    }
  }
  if (capable_servers) *capable_servers = capable;
  if (up == 0) return "no render server is connected to the site";
  if (capable == 0) {
    std::string out = "no render server can render it: ";
    for (size_t i = 0; i < reasons.size(); ++i) out += (i ? "; " : "") + reasons[i];
    return out;
  }
  return "";
}

std::string Scheduler::WaitingReasonLocked(const Job& job) const {
  if (JobStateFinal(job.rec.state)) return "";
  if (!job.rec.remote_site.empty()) {
    const std::string& peer = job.rec.remote_site;
    if (job.rec.exchange == "packaging") return "writing the job package for " + peer;
    if (job.rec.exchange == "shipping") return "in hotfolders/out, being sent to " + peer;
    if (job.remote.job_id() == 0) return "delivered to " + peer + ", waiting for it to ingest";
    if (job.remote.position() > 0) {
      return "in " + peer + "'s active queue, position " + std::to_string(job.remote.position());
    }
    if (FinalStateName(job.remote.state())) {
      return job.remote.state() + " at " + peer + ", waiting for the result package";
    }
    return "";
  }
  if (job.pending.empty() || job.running > 0) return "";
  int capable = 0;
  if (std::string why = NoCapableReasonLocked(job.profile, &capable); !why.empty()) return why;
  return "waiting for a free render slot on " + std::to_string(capable) +
         " capable render server(s)";
}

pb::JobInfo Scheduler::SummaryLocked(const Job& job) const {
  pb::JobInfo info;
  info.set_job_id(job.rec.id);
  info.set_name(job.rec.name);
  info.set_state(JobStateName(job.rec.state));
  info.set_queue(job.rec.queue);
  info.set_priority(job.rec.priority);
  info.set_submit_time_ms(job.rec.submit_time);
  info.set_finish_time_ms(job.rec.finish_time);
  info.set_package(job.profile.package + (job.profile.package_version.MatchesAny()
                                              ? ""
                                              : " " + job.profile.package_version.text()));
  info.set_frames(job.profile.frames.ToString());
  info.set_frames_total(static_cast<int32_t>(job.profile.frames.size()));
  info.set_frames_done(static_cast<int32_t>(job.frames_done + job.frames_progress));
  info.set_frames_running(static_cast<int32_t>(job.frames_running - job.frames_progress));
  info.set_frames_failed(static_cast<int32_t>(job.frames_failed));
  info.set_error(job.rec.error);
  info.set_waiting_reason(WaitingReasonLocked(job));
  info.set_storage_dir(JobDir(job.rec.id));
  info.set_placement(job.rec.placement);
  info.set_queue_position(QueuePositionLocked(job));
  info.set_client(job.rec.client);
  info.set_origin_site(job.rec.origin_site);
  info.set_origin_job_id(job.rec.origin_job_id);
  info.set_remote_site(job.rec.remote_site);
  info.set_remote_job_id(job.rec.remote_job_id);
  info.set_exchange(job.rec.exchange);
  info.set_deadline_ms(job.profile.deadline_ms);
  if (job.rec.remote_site.empty()) info.set_sandbox(SandboxTextLocked(job));
  if (!job.rec.remote_site.empty() && !JobStateFinal(job.rec.state) && job.remote.job_id() != 0) {
    // Progress of an outsourced job is the peer's, as last polled.
    info.set_remote_state(job.remote.state());
    info.set_frames_done(job.remote.frames_done());
    info.set_frames_running(job.remote.frames_running());
    info.set_frames_failed(job.remote.frames_failed());
  }
  return info;
}

int Scheduler::QueuePositionLocked(const Job& job) const {
  if (JobStateFinal(job.rec.state)) return 0;
  if (job.rec.queue == "outsourced") {
    // Order of the outsourced queue: the order jobs were outsourced in.
    int pos = 1;
    for (const auto& [id, other] : jobs_) {
      if (id >= job.rec.id) break;
      if (other.rec.queue == "outsourced" && !JobStateFinal(other.rec.state)) ++pos;
    }
    return pos;
  }
  if (job.running > 0 || job.pending.empty()) return 0;
  const RunKey key = RunKeyOf(job);
  int pos = 1;
  for (const RunKey& k : runnable_) {
    if (k == key) break;
    ++pos;
  }
  return pos;
}

Result<pb::JobInfo> Scheduler::GetJob(int64_t job_id, bool detail) {
  std::lock_guard<std::mutex> lock(mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  const Job& job = jt->second;
  pb::JobInfo info = SummaryLocked(job);
  if (!detail) return info;
  info.set_description(job.rec.profile_toml);
  auto events = db_->LoadJobEvents(job_id);
  if (events.ok()) {
    for (const auto& e : *events) {
      pb::QueueEvent* qe = info.add_history();
      qe->set_time_ms(e.time);
      qe->set_queue(e.queue);
      qe->set_state(e.state);
      qe->set_note(e.note);
    }
  }
  for (const auto& c : job.chunks) {
    pb::ChunkInfo* ci = info.add_chunks();
    ci->set_index(c.rec.index);
    ci->set_frames(c.rec.frames);
    ci->set_state(ChunkStateName(c.rec.state));
    ci->set_attempts(c.rec.attempts);
    ci->set_render_server(c.rec.render_server);
    ci->set_slot(c.rec.slot);
    ci->set_started_at_ms(c.rec.started_at);
    ci->set_ended_at_ms(c.rec.ended_at);
    ci->set_exit_code(c.rec.exit_code);
    ci->set_error(c.rec.error);
    ci->set_log(c.rec.log_path);
    std::map<int64_t, const pb::FrameOutput*> outs;
    for (const auto& o : c.outputs) outs[o.frame()] = &o;
    for (size_t i = 0; i < c.frames.size(); ++i) {
      int64_t f = c.frames[i];
      pb::FrameInfo* fi = info.add_frame_info();
      fi->set_frame(f);
      fi->set_chunk(c.rec.index);
      std::string state = ChunkStateName(c.rec.state);
      if (c.rec.state == ChunkState::kRunning && static_cast<int>(i) < c.frames_done) {
        state = "done";
      }
      fi->set_state(state);
      if (c.rec.state != ChunkState::kQueued) fi->set_render_server(c.rec.render_server);
      auto ot = outs.find(f);
      if (ot != outs.end()) {
        fi->set_output(JoinPath(JobDir(job.rec.id), job.profile.OutputName(f)));
        fi->set_sha256(ot->second->sha256());
        fi->set_size(ot->second->size());
      }
    }
  }
  return info;
}

std::vector<pb::JobInfo> Scheduler::ListJobs(bool include_finished) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<pb::JobInfo> out;
  for (const auto& [id, job] : jobs_) {
    if (!include_finished && JobStateFinal(job.rec.state)) continue;
    out.push_back(SummaryLocked(job));
  }
  return out;
}

Result<pb::LogsResponse> Scheduler::GetLogs(int64_t job_id, int64_t frame) {
  std::string path;
  pb::LogsResponse resp;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto jt = jobs_.find(job_id);
    if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
    const Chunk* chunk = nullptr;
    for (const auto& c : jt->second.chunks) {
      if (ContainsFrame(c.frames, frame)) chunk = &c;
    }
    if (!chunk) {
      return NotFound("job " + std::to_string(job_id) + " has no frame " + std::to_string(frame));
    }
    if (chunk->rec.log_path.empty()) {
      return NotFound("frame " + std::to_string(frame) + " of job " + std::to_string(job_id) +
                      " has no log yet (chunk " + ChunkStateName(chunk->rec.state) + ")");
    }
    path = JoinPath(config_.storage_dir(), chunk->rec.log_path);
    resp.set_render_server(chunk->rec.render_server);
    resp.set_attempt(chunk->rec.attempts);
  }
  FF_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  resp.set_text(std::move(text));
  return resp;
}

Result<pb::OutputsResponse> Scheduler::ListOutputs(int64_t job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
  pb::OutputsResponse resp;
  for (const auto& c : jt->second.chunks) {
    for (const auto& o : c.outputs) {
      pb::OutputFile* f = resp.add_outputs();
      f->set_name(jt->second.profile.OutputName(o.frame()));
      f->set_frame(o.frame());
      f->set_sha256(o.sha256());
      f->set_size(o.size());
    }
  }
  return resp;
}

pb::ListHostsResponse Scheduler::ListHosts() {
  std::lock_guard<std::mutex> lock(mu_);
  pb::ListHostsResponse resp;
  for (const auto& [name, s] : servers_) {
    pb::HostInfo* h = resp.add_hosts();
    h->set_render_server(name);
    h->set_host(s.rec.host);
    std::string status = ServerStatusName(s.rec.status);
    if (s.rec.status == ServerStatus::kUp && !s.link) status = "reconnecting";
    h->set_status(status);
    h->set_last_heartbeat_ms(s.rec.last_heartbeat);
    auto* hw = h->mutable_hardware();
    hw->set_cpu_model(s.hardware.cpu_model);
    hw->set_cores(s.hardware.cores);
    hw->set_memory_bytes(s.hardware.memory_bytes);
    for (const auto& g : s.hardware.gpus) hw->add_gpus(g);
    hw->set_os(s.hardware.os);
    for (const auto& p : s.packages) {
      auto* pk = h->add_packages();
      pk->set_name(p.name);
      pk->set_version(p.version);
      pk->set_executable(p.executable);
      pk->set_kind(p.kind);
    }
    for (const auto& id : s.slot_ids) {
      auto it = slots_.find(id);
      if (it == slots_.end()) continue;
      const SlotRecord& r = it->second.rec;
      auto* ss = h->add_slots();
      ss->set_id(r.id);
      ss->mutable_spec()->set_name(r.id.substr(r.id.find('/') + 1));
      ss->mutable_spec()->set_cores(r.cores);
      ss->mutable_spec()->set_memory_bytes(r.memory_bytes);
      ss->mutable_spec()->set_gpus(r.gpus);
      ss->set_state(SlotStateName(r.state));
      ss->set_job_id(r.current_job);
      ss->set_chunk(r.current_chunk);
    }
  }
  return resp;
}

}  // namespace ff

namespace ff {

void Scheduler::FillSandboxPolicyLocked(const Job& job, pb::SandboxPolicy* p) const {
  const SandboxSiteConfig& sb = config_.sandbox;
  // Remote jobs always run inside the wrapper; so does any job naming
  // central paths (only the wrapper can put its files there).
  p->set_wrap(!job.rec.origin_site.empty() || sb.wrap_local_jobs || job.profile.NeedsWrapper());
  if (!p->wrap()) return;
  p->set_memory(sb.memory_bytes);
  p->set_processes(sb.processes);
  p->set_cpu_seconds(sb.cpu_seconds);
  p->set_wall_ms(sb.wall_ms);
  p->set_output_bytes(sb.output_bytes);
  p->set_file_bytes(sb.file_bytes);
  p->set_tmp_bytes(sb.tmp_bytes);
  for (const CentralPath& c : job.profile.central) {
    pb::CentralMount* m = p->add_central();
    m->set_path(c.path);
    m->set_source(c.source);
  }
  p->set_output_dir(job.profile.OutputCentralDir());
}

std::string Scheduler::SandboxTextLocked(const Job& job) const {
  pb::SandboxPolicy p;
  FillSandboxPolicyLocked(job, &p);
  if (!p.wrap()) return "plain, no I/O wrapper (sandbox.local_jobs = \"plain\")";
  auto size = [](int64_t bytes) { return FormatBytes(bytes); };
  std::string out = std::string("I/O wrapper (") +
                    (!job.rec.origin_site.empty() ? "remote job" : "local job") +
                    "); mounts: /job <- the job's files (read-only)";
  for (const auto& c : p.central()) out += ", " + c.path() + " <- " + c.source() + " (read-only)";
  out += ", " + (p.output_dir().empty() ? std::string("/out") : p.output_dir()) + " (writable, " +
         size(p.output_bytes()) + ")";
  out += ", /tmp (" + size(p.tmp_bytes()) + "); limits: memory " +
         (p.memory() > 0 ? size(p.memory()) : std::string("the slot's")) + ", processes " +
         (p.processes() > 0 ? std::to_string(p.processes()) : "none") + ", cpu time " +
         (p.cpu_seconds() > 0 ? std::to_string(p.cpu_seconds()) + " s" : "none") + ", wall time " +
         (p.wall_ms() > 0 ? std::to_string(p.wall_ms() / 1000) + " s" : "none") + ", file size " +
         (p.file_bytes() > 0 ? size(p.file_bytes()) : "none");
  return out;
}

}  // namespace ff
