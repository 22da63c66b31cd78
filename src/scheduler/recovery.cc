// Recovery: a schedule server started on a site root resumes every job,
// render server and slot from the resource database (Scheduler::Resume).
#include <spdlog/spdlog.h>

#include <map>

#include "scheduler/scheduler.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

// Everything is read from the database and storage into local maps first,
// without mu_ (no I/O under the dispatch mutex), then moved into the
// scheduler under it. Moving a std::map keeps its elements where they are,
// so the Slot <-> Server pointers built here stay valid.
Status Scheduler::Resume() {
  FF_ASSIGN_OR_RETURN(int64_t max_id, db_->MaxJobId());
  const int64_t now = clock_->MonotonicMillis();
  std::map<std::string, Server> servers_in;
  std::map<std::string, Slot> slots_in;
  std::map<int64_t, Job> jobs_in;

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
    s.disconnected_ms = now;
    s.grace_ms = config_.heartbeat_timeout_ms;
    servers_in[r.name] = std::move(s);
  }
  for (auto& sr : slots) {
    auto it = servers_in.find(sr.render_server);
    if (it == servers_in.end()) continue;
    it->second.slot_ids.push_back(sr.id);
    Slot& slot = slots_in[sr.id];
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
          auto st = slots_in.find(c.rec.slot);
          if (st != slots_in.end()) {
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
          // A cancelled chunk keeps the frames it finished before the cancel.
          job.frames_done += static_cast<int64_t>(c.outputs.size());
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
    jobs_in[jr.id] = std::move(job);
  }

  {
    MutexLock seen_lock(&seen_mu_);
    for (const auto& [name, s] : servers_in) last_seen_[name] = {now, clock_->UnixMillis()};
  }
  MutexLock lock(&mu_);
  next_job_id_ = max_id + 1;
  servers_ = std::move(servers_in);
  slots_ = std::move(slots_in);
  jobs_ = std::move(jobs_in);
  for (auto& [id, job] : jobs_) {
    const JobRecord& jr = job.rec;
    if (!jr.origin_site.empty()) remote_index_[{jr.origin_site, jr.origin_job_id}] = id;
    if (ExchangeWorkDue(jr.exchange)) exchange_due_.insert(id);
    // A job that ended but was not announced (the server stopped first) is
    // announced once the committer runs.
    if (JobStateFinal(jr.state) && !jr.notified) committer_.AnnounceWhenDurable(id);
    UpdateRunnableLocked(job);
  }
  spdlog::info("resumed {} unfinished job(s) from {}", resumed, config_.db_path());
  return Status::Ok();
}

}  // namespace ff
