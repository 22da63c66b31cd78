// What render servers tell the schedule server: registrations, heartbeats,
// progress, results, drains and disconnects, and the chunk and job state
// changes they cause.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "scheduler/register_check.h"
#include "scheduler/scheduler.h"
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

}  // namespace

Status Scheduler::Register(const pb::Register& reg, std::shared_ptr<RenderServerLink> link) {
  // Validate everything before touching state.
  FF_RETURN_IF_ERROR(CheckRegister(reg));
  MutexLock lock(&mu_);
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
        MutexLock seen_lock(&seen_mu_);
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
      if (!JobStateFinal(job.rec.state) && offered_slots.count(c.rec.slot) &&
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
  MutexLock lock(&seen_mu_);
  last_seen_[render_server] = {clock_->MonotonicMillis(), clock_->UnixMillis()};
}

void Scheduler::OnHeartbeat(const std::string& render_server) { Touch(render_server); }

void Scheduler::OnDisconnect(const std::string& render_server, const RenderServerLink* link) {
  MutexLock lock(&mu_);
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
  MutexLock lock(&mu_);
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
  MutexLock lock(&mu_);
  const int64_t now = clock_->MonotonicMillis();
  WriteBatch batch;
  bool stale = false;
  const int64_t now_unix = clock_->UnixMillis();
  for (auto& [name, s] : servers_) {
    if (s.rec.status == ServerStatus::kDown) continue;
    int64_t seen_ms = 0, seen_unix = 0;
    {
      MutexLock seen_lock(&seen_mu_);
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
  if (!JobStateFinal(job.rec.state) && losses >= kMaxServerLosses) {
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
  if (JobStateFinal(job.rec.state)) {
    // Nothing runs a chunk of a cancelled (or failed-fast) job again: it ends here.
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
  bool new_log = false;  // its directory is made after mu_ is released
  {
    MutexLock lock(&mu_);
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
        new_log = true;
      }
    }
    BumpLocked();
  }
  if (new_log) (void)MakeDirs(DirName(log_path));
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
    MutexLock lock(&mu_);
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
    cancelled = JobStateFinal(job.rec.state);  // cancelled, or failed fast
    collects = !job.profile.output.empty();
    log_rel = ChunkLogRel(job.rec.id, c.rec.index, c.rec.attempts);
    // A cancelled job keeps the frames its chunks finished before the cancel.
    if ((r.ok() || cancelled) && collects) {
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
  std::vector<std::string> dests;  // placed[i] goes to dests[i]
  // Every frame of a chunk must come back as a verified blob; of a chunk
  // cancelled mid-way, those that came back are kept and the rest dropped.
  const bool partial = cancelled && !(r.ok() && error.empty());
  if ((error.empty() || partial) && collects) {
    std::map<int64_t, const pb::FrameOutput*> by_frame;
    for (const auto& o : r.outputs()) by_frame[o.frame()] = &o;
    for (const auto& [f, dest] : wanted) {
      auto ot = by_frame.find(f);
      std::string missing;
      if (ot == by_frame.end()) {
        missing = "frame " + std::to_string(f) + " produced no output";
      } else if (!blobs_->Has(ot->second->sha256())) {
        missing = "output of frame " + std::to_string(f) + " was not uploaded";
      }
      if (!missing.empty()) {
        if (partial) continue;
        error = missing;
        break;
      }
      placed.push_back(*ot->second);
      dests.push_back(dest);
    }
  }
  if ((error.empty() || partial) && collects) {
    // Place frames on site storage: link from the verified blob under a temp
    // name, then rename, so a frame file is either absent or complete.
    for (size_t i = 0; i < placed.size(); ++i) {
      const std::string& dest = dests[i];
      Status st = MakeDirs(DirName(dest));
      if (st.ok()) st = LinkOrCopy(blobs_->PathOf(placed[i].sha256()), dest, DirSync::kByCaller);
      if (!st.ok()) {
        const std::string why = "cannot place frame " + std::to_string(placed[i].frame()) +
                                " on storage: " + st.message();
        placed.resize(i);  // what was placed before is kept
        if (partial) {
          spdlog::warn("job {}: {}", r.job_id(), why);
        } else {
          error = why;
          disk_full = IsDiskFull(st);
        }
        break;
      }
      dirs.insert(DirName(dest));
    }
  }

  MutexLock lock(&mu_);
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
  for (const std::string& d : dirs) committer_.SyncDirWhenDurable(d);
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

  if (JobStateFinal(job.rec.state) && !(r.ok() && error.empty())) {
    // Frames finished before the cancel stay the job's (and fetchable).
    c.outputs = placed;
    RecordFinishedFramesLocked(render_server, job, c, placed, batch);
    job.frames_done += static_cast<int64_t>(placed.size());
    FinishChunkLocked(job, c, ChunkState::kCancelled, batch);
  } else if (error.empty()) {
    c.outputs = placed;
    if (placed.empty()) {
      // A job that collects no files: every frame is done when the chunk is.
      for (int64_t f : c.frames) {
        FrameRecord fr;
        fr.job_id = job.rec.id;
        fr.frame = f;
        fr.chunk = c.rec.index;
        fr.state = FrameState::kDone;
        fr.render_server = render_server;
        batch.frame_updates.push_back(std::move(fr));
      }
    }
    RecordFinishedFramesLocked(render_server, job, c, placed, batch);
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
  } else if (r.scene_error() &&
             SceneErrorFailsJob(job, c, servers_[render_server].rec.host, error)) {
    // The scene fails the same way on two hosts (or in two chunks): every
    // other chunk would too. The job fails now, with that reason.
    c.rec.error = error;
    c.rec.failed_hosts.push_back(servers_[render_server].rec.host);
    FinishChunkLocked(job, c, ChunkState::kFailed, batch);
    const auto& seen = job.scene_errors[error];
    std::string where;
    for (const auto& h : seen.hosts) where += (where.empty() ? "" : " and ") + h;
    const std::string why = "the scene fails the same way " +
                            (seen.hosts.size() >= 2 ? "on " + where
                                                    : "in " + std::to_string(seen.chunks.size()) +
                                                          " chunks on " + where) +
                            ", so no chunk is retried: " + error;
    spdlog::warn("job {} failed: {}", job.rec.id, why);
    auto cancels = EndJobLocked(job, JobState::kFailed, why, batch);
    AppendLocked(std::move(batch));
    for (auto& [link, msg] : cancels) SendWhenDurableLocked(link, std::move(msg));
    DispatchLocked();
    return;
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

bool Scheduler::SceneErrorFailsJob(Job& job, const Chunk& c, const std::string& host,
                                   const std::string& error) {
  auto& seen = job.scene_errors[error];
  seen.hosts.insert(host);
  seen.chunks.insert(c.rec.index);
  return seen.hosts.size() >= 2 || seen.chunks.size() >= 2;
}

void Scheduler::RecordFinishedFramesLocked(const std::string& render_server, const Job& job,
                                           const Chunk& c,
                                           const std::vector<pb::FrameOutput>& placed,
                                           WriteBatch& batch) {
  // Frame rows are written once, when the frame is final.
  for (const auto& o : placed) {
    FrameRecord fr;
    fr.job_id = job.rec.id;
    fr.frame = o.frame();
    fr.chunk = c.rec.index;
    fr.state = FrameState::kDone;
    fr.render_server = render_server;
    fr.output_path = "jobs/" + std::to_string(job.rec.id) + "/" + job.profile.OutputName(o.frame());
    fr.sha256 = o.sha256();
    fr.size = o.size();
    batch.frame_updates.push_back(std::move(fr));
  }
}

void Scheduler::FinishChunkLocked(Job& job, Chunk& c, ChunkState state, WriteBatch& batch) {
  SetChunkStateLocked(job, c, state);
  ++job.final_chunks;
  batch.chunk_updates.push_back(c.rec);
  if (state != ChunkState::kDone) {
    std::set<int64_t> kept;  // frames a cancelled chunk finished: done, not cancelled
    for (const auto& o : c.outputs) kept.insert(o.frame());
    for (int64_t f : c.frames) {
      if (kept.count(f) != 0) continue;
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
  // A cancelled job ended (and was recorded so) when it was cancelled; its
  // running chunks ending later change nothing of that.
  if (JobStateFinal(job.rec.state)) return;
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
    if (auto x = ExchangeTransition(job.rec.exchange, ExchangeEvent::kRemoteEnded)) {
      job.rec.exchange = *x;
    }
    exchange_due_.insert(job.rec.id);
    if (peers_) peers_->Kick();
    RecordEventLocked(
        job,
        std::string(JobStateName(job.rec.state)) + "; returning results to " + job.rec.origin_site,
        batch);
  } else {
    const std::string left = JobQueueName(job.rec.queue);
    job.rec.queue = *QueueTransition(job.rec.queue, QueueEvent::kLeft);
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
  committer_.AnnounceWhenDurable(job.rec.id);  // notified once this is durable
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

}  // namespace ff
