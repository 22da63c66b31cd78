// The read side of the scheduler: what `jobs`, `show`, `logs`, `outputs`
// and `hosts` see. Built from memory only under the dispatch mutex; any
// file or database read happens after the mutex is released.
#include <algorithm>
#include <map>

#include "scheduler/placement_policy.h"
#include "scheduler/scheduler.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

bool ContainsFrame(const std::vector<int64_t>& frames, int64_t f) {
  return std::binary_search(frames.begin(), frames.end(), f);
}

}  // namespace

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
    if (job.rec.exchange == ExchangeState::kPackaging) {
      return "writing the job package for " + peer;
    }
    if (job.rec.exchange == ExchangeState::kShipping) {
      return "in hotfolders/out, being sent to " + peer;
    }
    if (job.remote.job_id() == 0) return "delivered to " + peer + ", waiting for it to ingest";
    if (job.remote.position() > 0) {
      return "in " + peer + "'s active queue, position " + std::to_string(job.remote.position());
    }
    if (auto st = ParseJobState(job.remote.state()); st && JobStateFinal(*st)) {
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
  info.set_queue(JobQueueName(job.rec.queue));
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
  info.set_exchange(ExchangeStateName(job.rec.exchange));
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
  if (job.rec.queue == JobQueue::kOutsourced) {
    // Order of the outsourced queue: the order jobs were outsourced in.
    int pos = 1;
    for (const auto& [id, other] : jobs_) {
      if (id >= job.rec.id) break;
      if (other.rec.queue == JobQueue::kOutsourced && !JobStateFinal(other.rec.state)) ++pos;
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
  pb::JobInfo info;
  {
    MutexLock lock(&mu_);
    auto jt = jobs_.find(job_id);
    if (jt == jobs_.end()) return NotFound("job " + std::to_string(job_id) + " does not exist");
    const Job& job = jt->second;
    info = SummaryLocked(job);
    if (!detail) return info;
    info.set_description(job.rec.profile_toml);
    FillChunksLocked(job, &info);
  }
  // The queue history is read from the database, after the mutex is released.
  auto events = db_->LoadJobEvents(job_id);
  if (events.ok()) {
    for (const auto& e : *events) {
      pb::QueueEvent* qe = info.add_history();
      qe->set_time_ms(e.time);
      qe->set_queue(JobQueueName(e.queue));
      qe->set_state(e.state);
      qe->set_note(e.note);
    }
  }
  return info;
}

void Scheduler::FillChunksLocked(const Job& job, pb::JobInfo* out) const {
  pb::JobInfo& info = *out;
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
      auto ot = outs.find(f);
      if ((c.rec.state == ChunkState::kRunning && static_cast<int>(i) < c.frames_done) ||
          ot != outs.end()) {
        state = "done";  // rendered in a running chunk, or kept from a cancelled one
      }
      fi->set_state(state);
      if (c.rec.state != ChunkState::kQueued) fi->set_render_server(c.rec.render_server);
      if (ot != outs.end()) {
        fi->set_output(JoinPath(JobDir(job.rec.id), job.profile.OutputName(f)));
        fi->set_sha256(ot->second->sha256());
        fi->set_size(ot->second->size());
      }
    }
  }
}

std::vector<pb::JobInfo> Scheduler::ListJobs(bool include_finished) {
  MutexLock lock(&mu_);
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
    MutexLock lock(&mu_);
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
  MutexLock lock(&mu_);
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
  MutexLock lock(&mu_);
  pb::ListHostsResponse resp;
  for (const auto& [name, s] : servers_) {
    pb::HostInfo* h = resp.add_hosts();
    h->set_render_server(name);
    h->set_host(s.rec.host);
    std::string status = ServerStatusName(s.rec.status);
    if (s.rec.status == ServerStatus::kUp && !s.link) status = "reconnecting";
    h->set_status(status);
    // The in-memory time of the last message, not the row (written every
    // few seconds only): `hosts` never shows an up server as long silent.
    int64_t heard = s.rec.last_heartbeat;
    {
      MutexLock seen_lock(&seen_mu_);
      auto it = last_seen_.find(name);
      if (it != last_seen_.end()) heard = std::max(heard, it->second.second);
    }
    h->set_last_heartbeat_ms(heard);
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

std::vector<std::string> Scheduler::SubmitWarnings(int64_t job_id) {
  MutexLock lock(&mu_);
  std::vector<std::string> out;
  auto jt = jobs_.find(job_id);
  if (jt == jobs_.end() || !jt->second.rec.remote_site.empty()) return out;
  const Job& job = jt->second;
  if (job.profile.placement != Placement::kLocal) return out;  // auto may outsource it
  std::string have;
  for (const auto& [name, s] : servers_) {
    if (PackageMismatch(s.packages, job.profile).empty()) return out;
    for (const auto& p : s.packages) {
      const std::string entry = p.name + " " + p.version;
      if (have.find(entry) == std::string::npos) have += (have.empty() ? "" : ", ") + entry;
    }
  }
  const std::string wanted =
      "'" + job.profile.package + "'" +
      (job.profile.package_version.text().empty() ? "" : " " + job.profile.package_version.text());
  out.push_back(
      "no render server of this site has package " + wanted +
      (have.empty() ? " (no render server has registered yet)" : " (the site has: " + have + ")") +
      ": job " + std::to_string(job_id) + " waits until one registers");
  return out;
}

}  // namespace ff
