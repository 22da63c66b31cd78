// One chunk on a render slot (RenderServer::RenderChunk and the slot's
// loop): prepare the directories, fetch the job's files, run the package's
// commands (inside the I/O wrapper when the policy says so), check every
// frame, upload frames and log, and report.
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

#include "render/image_check.h"
#include "render/render_server.h"
#include "rpc/blob_client.h"
#include "sandbox/cgroup.h"
#include "sandbox/wrapper.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

constexpr size_t kMaxLogBytes = 8 << 20;   // per chunk attempt, in memory
constexpr int64_t kProgressEveryMs = 250;  // progress messages per chunk
constexpr int64_t kCancelGraceMs = 2000;   // SIGTERM -> SIGKILL on cancel

// A filesystem with less than this left counts as full: a renderer that
// failed there most likely failed for want of space.
constexpr int64_t kFullBelowBytes = 1 << 20;

// The one of `dirs` whose filesystem is (nearly) full — preferably one the
// error names; if `error` says ENOSPC, the one with the least space left.
// Empty when none is.
std::string FullFilesystem(const std::vector<std::string>& dirs, const std::string& error) {
  const bool said_enospc = error.find(std::strerror(ENOSPC)) != std::string::npos;
  std::string full, least;
  int64_t least_free = INT64_MAX;
  for (const std::string& d : dirs) {
    auto free = FreeBytes(d);
    if (!free.ok()) continue;
    if (*free < kFullBelowBytes) {
      if (error.find(d + "/") != std::string::npos) return d;
      if (full.empty()) full = d;
    }
    if (*free < least_free) {
      least_free = *free;
      least = d;
    }
  }
  if (!full.empty()) return full;
  return said_enospc ? least : "";
}

// Names for path components, cgroups and logs: [A-Za-z0-9._-] only, never
// ".", ".." or hidden.
std::string SafeName(const std::string& s) {
  std::string out = s.empty() ? "_" : s;
  for (char& c : out) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) c = '_';
  }
  if (out[0] == '.') out[0] = '_';
  return out;
}

}  // namespace

std::string RenderServer::RunName(const SlotWorker* w, const pb::Assignment& a, int index) {
  return SafeName(w->config.name + "-j" + std::to_string(a.job_id()) + "-c" +
                  std::to_string(a.chunk()) + "-a" + std::to_string(a.attempt()) + "-" +
                  std::to_string(index));
}

std::string RenderServer::CgroupParent() const {
  // The uid block is this server's alone on the host (claimed or
  // configured), so two render servers never share run names.
  return config_.sandbox.cgroup_parent + "/" + SafeName(config_.name) + "-" +
         std::to_string(uid_base_);
}

Status RenderServer::PrepareSecureDir(SlotWorker* w, const pb::Assignment& a) {
  if (::geteuid() != 0) {
    return FailedPrecondition(
        "the site runs this job inside the I/O wrapper, which needs the "
        "render server to run as root");
  }
  if (w->uid == 0)
    return FailedPrecondition("no uid for slot " + w->id + " (set sandbox.uid_base)");
  const std::string client = a.client().empty() ? "local" : SafeName(a.client());
  std::lock_guard<std::mutex> lock(secure_mu_);
  std::string dir = config_.secure_dir();
  for (const std::string& part : {client, std::to_string(a.job_id())}) {
    dir = JoinPath(dir, part);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return ErrnoError("cannot create", dir, errno);
  }
  dir = JoinPath(dir, SafeName(w->config.name));
  FF_RETURN_IF_ERROR(RemoveAll(dir));
  if (::mkdir(dir.c_str(), 0700) != 0) return ErrnoError("cannot create", dir, errno);
  if (::chown(dir.c_str(), w->uid, w->uid) != 0)
    return ErrnoError("cannot give to the slot's uid", dir, errno);
  FF_RETURN_IF_ERROR(MakeDirs(JoinPath(dir, "input"), 0755));
  w->secure_dir = dir;
  return Status::Ok();
}

Result<ProcessSpec> RenderServer::WrapCommand(SlotWorker* w, const pb::Assignment& a,
                                              const ProcessSpec& ps, const std::string& out_dir,
                                              const std::vector<std::string>& dirs, int index,
                                              int64_t used_ms, int64_t used_cpu_ms,
                                              std::string* summary) {
  WrapSlot slot;
  slot.run_name = RunName(w, a, index);
  slot.uid = w->uid;
  slot.secure_dir = w->secure_dir;
  slot.memory_bytes = w->config.memory_bytes;
  for (const auto& path : system_paths_) slot.system.push_back({path, path});
  for (const auto& b : sandbox_binds_) slot.system.push_back({b.first, b.second});
  slot.cgroup_parent = CgroupParent();
  slot.landlock_min_abi = config_.sandbox.landlock_min_abi;
  FF_ASSIGN_OR_RETURN(sandbox::WrapSpec ws,
                      WrapSpecOf(a, slot, ps, out_dir, dirs, index, used_ms, used_cpu_ms));
  if (summary) {
    summary->clear();
    for (const auto& line : sandbox::SummaryLines(ws))
      *summary += (summary->empty() ? "" : "; ") + line;
  }
  FF_RETURN_IF_ERROR(sandbox::ValidateSpec(ws).WithContext("I/O wrapper"));
  ProcessSpec out;
  out.argv.push_back(wrapper_);
  for (auto& arg : sandbox::ToArgs(ws)) out.argv.push_back(std::move(arg));
  return out;
}

void RenderServer::SlotLoop(SlotWorker* w) {
  while (true) {
    pb::Assignment a;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && w->next.empty()) w->cv.Wait(lock);
      if (stopping_) return;
      a = std::move(w->next.front());
      w->next.pop_front();
      w->current = a;
      w->cancel_reason.clear();
    }
    pb::ChunkResult result = RenderChunk(w, a);
    bool stopping;
    {
      MutexLock lock(&mu_);
      w->current.reset();
      stopping = stopping_;
    }
    // A killed chunk is not reported: it is requeued. The work directory is
    // emptied after the result went out, off the path to the next chunk.
    if (stopping) return;
    DeliverResult(result);
    CleanWorkDir(w);
  }
}

Status RenderServer::FetchFiles(const pb::Assignment& a, const std::string& job_dir) {
  for (const auto& f : a.files()) {
    if (!cache_->Has(f.sha256())) {
      Status st = WithScheduleServer([&](pb::ScheduleServer::Stub* stub) {
        return DownloadBlobToFile(stub, f.sha256(), cache_->PathOf(f.sha256()));
      });
      FF_RETURN_IF_ERROR(st.WithContext("fetching job file '" + f.path() + "'"));
      ::chmod(cache_->PathOf(f.sha256()).c_str(), 0444);  // cache entries are immutable
    }
    std::string dest = JoinPath(job_dir, f.path());
    if (f.path().find('/') != std::string::npos) FF_RETURN_IF_ERROR(MakeDirs(DirName(dest)));
    // The work directory starts empty and is emptied after the chunk: a
    // plain hard link does (no temp name, no directory sync). LinkOrCopy
    // covers what link() cannot do (another filesystem, a path named twice).
    if (::link(cache_->PathOf(f.sha256()).c_str(), dest.c_str()) != 0) {
      FF_RETURN_IF_ERROR(LinkOrCopy(cache_->PathOf(f.sha256()), dest));
    }
  }
  return Status::Ok();
}

Status RenderServer::MakeOutputDirs(SlotWorker* w, const std::string& out_dir,
                                    const std::vector<std::string>& dirs) {
  for (const auto& rel : dirs) {
    for (size_t i = 0; i <= rel.size(); ++i) {
      if (i != rel.size() && rel[i] != '/') continue;
      const std::string path = JoinPath(out_dir, rel.substr(0, i));
      if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) {
        return ErrnoError("cannot create output directory", path, errno);
      }
      if (w->uid != 0 && ::geteuid() == 0) ::lchown(path.c_str(), w->uid, w->uid);
    }
  }
  return Status::Ok();
}

Status RenderServer::PrepareWorkDir(SlotWorker* w) {
  if (w->work_ready) return Status::Ok();
  // First chunk of the slot, or emptying after the last one failed: start
  // over, in a new directory if the old one cannot be removed.
  if (!w->work_dir.empty() && !RemoveAll(w->work_dir).ok()) ++w->work_generation;
  w->work_dir =
      JoinPath(config_.work_dir(), w->config.name + "." + std::to_string(w->work_generation));
  FF_RETURN_IF_ERROR(RemoveAll(w->work_dir));
  FF_RETURN_IF_ERROR(MakeDirs(JoinPath(w->work_dir, "job")));
  FF_RETURN_IF_ERROR(MakeDirs(JoinPath(w->work_dir, "out")));
  // Plain chunks run as the slot's uid too (render server as root): out/
  // and job/ are the renderer's, as they are a plain renderer's working
  // directories. The job's files in job/ stay root's read-only cache
  // inodes: it may remove or add names, never change their contents.
  if (w->uid != 0 && ::geteuid() == 0) {
    for (const char* sub : {"out", "job"}) {
      const std::string d = JoinPath(w->work_dir, sub);
      if (::chown(d.c_str(), w->uid, w->uid) != 0) {
        return ErrnoError("cannot give to the slot's uid", d, errno);
      }
    }
  }
  w->work_ready = true;
  return Status::Ok();
}

void RenderServer::CleanWorkDir(SlotWorker* w) {
  if (!w->secure_dir.empty()) {
    std::lock_guard<std::mutex> lock(secure_mu_);
    (void)RemoveAll(w->secure_dir);
    // The job's and the client's directories go with their last chunk.
    const std::string job_dir = DirName(w->secure_dir);
    if (::rmdir(job_dir.c_str()) == 0) ::rmdir(DirName(job_dir).c_str());
    w->secure_dir.clear();
  }
  if (!w->work_ready) return;
  const std::string log = JoinPath(w->work_dir, "chunk.log");
  w->work_ready = RemoveContents(JoinPath(w->work_dir, "job")).ok() &&
                  RemoveContents(JoinPath(w->work_dir, "out")).ok() &&
                  (::unlink(log.c_str()) == 0 || errno == ENOENT);
}

// One attempt of one chunk, stage by stage: Prepare() (directories, the
// job's files), RunCommands() (each of the package's commands, wrapped or
// plain, with progress and cancels), CheckFrames() (every expected frame a
// valid image), Upload() (frames the site lacks), Finish() (disk-full
// diagnosis, the log, the result). A stage does nothing once an earlier
// one failed; the first failure is the chunk's error.
class ChunkRun {
 public:
  ChunkRun(RenderServer* rs, RenderServer::SlotWorker* w, const pb::Assignment& a)
      : rs_(rs), w_(w), a_(a), name_(ChunkName(a)), wrap_(a.sandbox().wrap()) {
    result_.set_job_id(a.job_id());
    result_.set_chunk(a.chunk());
    result_.set_attempt(a.attempt());
    result_.set_started_ms(rs_->clock_->UnixMillis());
  }

  // False (and the result says why) when the assignment fails its checks.
  bool Accept() {
    if (Status valid = CheckAssignment(a_); !valid.ok()) {
      spdlog::error("{}: refused: {}", name_, valid.message());
      result_.set_ok(false);
      result_.set_error(valid.message());
      return false;
    }
    spdlog::info("{}: rendering frames {}..{} ({} frame(s)) on slot {}", name_, a_.frames(0),
                 a_.frames(a_.frames_size() - 1), a_.frames_size(), w_->id);
    return true;
  }

  // The adapter, the chunk's directories (secure location or work
  // directory) and its files.
  void Prepare() {
    spec_ = ChunkSpecOf(a_, w_->config.cores);
    auto it = rs_->adapters_.find(a_.package());
    Status st = it == rs_->adapters_.end()
                    ? FailedPrecondition("package '" + a_.package() + "' is not installed here")
                    : Status::Ok();
    if (st.ok()) adapter_ = it->second.get();
    // Inside the I/O wrapper the renderer sees the job at /job and writes
    // to its output area; the render server finds them in the chunk's
    // secure location (host_spec_).
    spec_.renderer_home = wrap_ ? RenderServer::kSandboxRendererHome : rs_->renderer_home_;
    if (wrap_) {
      if (st.ok()) st = rs_->PrepareSecureDir(w_, a_);
      spec_.job_dir = sandbox::kInputPath;
      spec_.out_dir = a_.sandbox().output_dir().empty() ? "/out" : a_.sandbox().output_dir();
      host_spec_ = spec_;
      host_spec_.job_dir = JoinPath(w_->secure_dir, "input");
      host_spec_.out_dir = JoinPath(w_->secure_dir, "output");
    } else {
      if (st.ok() && !rs_->plain_blocked_.empty()) st = FailedPrecondition(rs_->plain_blocked_);
      if (st.ok()) st = rs_->PrepareWorkDir(w_);
      spec_.job_dir = JoinPath(w_->work_dir, "job");
      spec_.out_dir = JoinPath(w_->work_dir, "out");
      host_spec_ = spec_;
    }
    if (st.ok()) st = rs_->FetchFiles(a_, host_spec_.job_dir);
    if (!st.ok()) FailStatus(st);
  }

  // Every command of the package, in order, until one fails.
  void RunCommands() {
    if (!ok()) return;
    auto commands = adapter_->Commands(spec_);
    if (!commands.ok()) Fail(-1, commands.status().message());
    commands_start_ms_ = rs_->clock_->MonotonicMillis();
    // Output sub-directories: made once in the plain work directory; in
    // each wrapped command's fresh output area by the wrapper.
    dirs_ = OutputSubdirs(spec_);
    if (commands.ok() && !wrap_) {
      Status made = rs_->MakeOutputDirs(w_, spec_.out_dir, dirs_);
      if (!made.ok()) FailStatus(made);
    }
    // One command per frame (a per-frame template, or POV-Ray's runs of
    // single frames): each command that succeeded is one frame done, which
    // progress reports even when the renderer prints nothing about it.
    const bool one_per_frame = commands.ok() && commands->size() == spec_.frames.size();
    for (size_t i = 0; commands.ok() && i < commands->size() && ok(); ++i) {
      RunCommand((*commands)[i], static_cast<int>(i));
      if (one_per_frame && ok()) {
        std::lock_guard<std::mutex> lock(progress_mu_);
        progress_.frames_done = std::max(progress_.frames_done, static_cast<int>(i) + 1);
        progress_.current_frame = -1;  // the next command's output names its frame
      }
    }
  }

  // Every expected frame must exist and be a valid image. A job without an
  // output pattern writes no files: its chunk is done when the commands
  // exited 0. Of a cancelled chunk, the frames finished before the cancel
  // are kept (those that pass the same checks); the rest are dropped.
  void CheckFrames() {
    if ((!ok() && !cancelled_) || !collects()) return;
    auto outputs = adapter_->FindOutputs(host_spec_);
    if (!outputs.ok()) {
      if (!cancelled_) Fail(-1, outputs.status().message());
      return;
    }
    for (int64_t f : spec_.frames) {
      auto it = outputs->find(f);
      Result<pb::FrameOutput> out =
          it == outputs->end()
              ? Result<pb::FrameOutput>(FailedPrecondition("the renderer wrote no output file"))
              : CheckFrame(f, it->second);
      if (out.ok()) {
        *result_.add_outputs() = std::move(*out);
      } else if (!cancelled_) {
        Fail(out.status().code() == StatusCode::kIoError ? -1 : 0,
             "frame " + std::to_string(f) + ": " + out.status().message());
        break;
      }
    }
    if (cancelled_ && result_.outputs_size() > 0) {
      AppendLog("frameflow: keeping " + std::to_string(result_.outputs_size()) +
                " frame(s) finished before the cancel");
    }
  }

  // Frames the site lacks go to its file service.
  void Upload() {
    if (ok()) result_.set_ok(true);
    if ((!result_.ok() && !cancelled_) || !collects()) return;
    auto outputs = adapter_->FindOutputs(host_spec_);
    if (!outputs.ok()) Fail(-1, outputs.status().message());
    for (int i = 0; outputs.ok() && i < result_.outputs_size(); ++i) {
      const int64_t frame = result_.outputs(i).frame();
      Status up =
          UploadBlob((*outputs)[frame], result_.outputs(i).sha256(), result_.outputs(i).size());
      if (!up.ok()) {
        result_.clear_outputs();
        if (cancelled_) {
          AppendLog("frameflow: cannot upload frame " + std::to_string(frame) + ": " +
                    up.message() + "; no frame of the cancelled chunk is kept");
        } else {
          FailStatus(up, "cannot upload frame " + std::to_string(frame) + ": ");
        }
        break;
      }
    }
  }

  // The result of an assignment Accept() refused: nothing ran.
  pb::ChunkResult Refused() { return std::move(result_); }

  // The disk-full diagnosis, the last progress, the log; the result.
  pb::ChunkResult Finish() {
    // A renderer or the I/O wrapper that failed while one of this host's
    // filesystems is full most likely failed for that (a renderer's message
    // seldom says so): name the full filesystem and let the chunk wait for
    // space instead of burning its attempts.
    if (!result_.ok() && !result_.disk_full() && result_.limit().empty() &&
        result_.error().rfind("cancelled: ", 0) != 0) {
      const RenderServerConfig& c = rs_->config_;
      const std::string full =
          FullFilesystem({c.cache_dir(), c.work_dir(), c.secure_dir()}, result_.error());
      if (!full.empty()) {
        result_.set_error("render server disk full (" + full + "): " + result_.error());
        result_.set_disk_full(true);
        AppendLog("frameflow: " + full + " is full; the chunk is retried once there is space");
      }
    }
    // The live log of a chunk that already reported progress gets its last
    // lines; a chunk shorter than kProgressEveryMs reports only its result.
    if (sent_any_progress_) SendProgress(true);
    // A short log rides inside the result (no file, no upload RPC); a longer
    // one is uploaded to the file service as a blob.
    if (log_.size() <= kInlineLogBytes) {
      result_.set_log_text(log_);
    } else {
      std::string log_path = JoinPath(wrap_ ? w_->secure_dir : w_->work_dir, "chunk.log");
      if (WriteFileAtomic(log_path, log_).ok()) {
        int64_t size = 0;
        auto sha = Sha256File(log_path, &size);
        if (sha.ok() && UploadBlob(log_path, *sha, size).ok()) result_.set_log_sha256(*sha);
      }
    }
    result_.set_ended_ms(rs_->clock_->UnixMillis());
    if (result_.ok()) {
      spdlog::info("{}: done, {} frame(s) in {} ms", name_, result_.outputs_size(),
                   result_.ended_ms() - result_.started_ms());
    } else {
      spdlog::warn("{}: failed: {}", name_, result_.error());
    }
    return std::move(result_);
  }

 private:
  bool ok() const { return result_.error().empty(); }

  // Frame `f`'s output at `path`, checked: a regular file holding a valid
  // image. kIoError when it cannot be read, kFailedPrecondition when bad.
  Result<pb::FrameOutput> CheckFrame(int64_t f, const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
      return FailedPrecondition("the output is not a regular file (" + BaseName(path) + ")");
    }
    auto img = CheckImage(path);
    if (!img.ok()) return FailedPrecondition(img.status().message());
    int64_t size = 0;
    auto sha = Sha256File(path, &size);
    if (!sha.ok()) return IoError(sha.status().message());
    pb::FrameOutput o;
    o.set_frame(f);
    o.set_sha256(*sha);
    o.set_size(size);
    o.set_name(ExpandOutputPattern(spec_.output_pattern, f));
    AppendLog("frameflow: frame " + std::to_string(f) + " ok (" + img->format + " " +
              std::to_string(img->width) + "x" + std::to_string(img->height) + ", sha256 " + *sha +
              ")");
    return o;
  }
  bool collects() const { return !spec_.output_pattern.empty(); }

  void AppendLog(const std::string& line) {
    if (log_.size() < kMaxLogBytes) log_ += line + "\n";
  }
  void Fail(int exit_code, const std::string& error) {
    result_.set_ok(false);
    result_.set_exit_code(exit_code);
    result_.set_error(error);
    AppendLog("frameflow: " + error);
  }
  // A step that stopped on a full filesystem: retried by the schedule
  // server once there is space, not counted as the chunk's failure.
  void FailStatus(const Status& status, const std::string& context = "") {
    Fail(-1, context + status.message());
    if (IsDiskFull(status)) result_.set_disk_full(true);
  }

  Status UploadBlob(const std::string& path, const std::string& sha, int64_t size) {
    return rs_->WithScheduleServer([&](pb::ScheduleServer::Stub* stub) -> Status {
      FF_ASSIGN_OR_RETURN(auto missing, MissingBlobs(stub, {sha}));
      if (missing.empty()) return Status::Ok();
      return UploadFileBlob(stub, path, sha, size);
    });
  }

  // Progress at most every kProgressEveryMs (always when `force`).
  void SendProgress(bool force) {
    pb::RenderServerMessage msg;
    {
      std::lock_guard<std::mutex> lock(progress_mu_);
      int64_t now = rs_->clock_->MonotonicMillis();
      if (!force && now - last_sent_ < kProgressEveryMs) return;
      last_sent_ = now;
      sent_any_progress_ = true;
      auto* p = msg.mutable_progress();
      p->set_job_id(a_.job_id());
      p->set_chunk(a_.chunk());
      p->set_attempt(a_.attempt());
      p->set_frame(progress_.current_frame);
      p->set_frames_done(progress_.frames_done);
      for (auto& l : pending_lines_) p->add_log_lines(std::move(l));
      pending_lines_.clear();
    }
    rs_->Send(msg);
  }

  // Command `i`: launched (through the I/O wrapper when the policy says
  // so), watched until it exits, and judged.
  void RunCommand(const ProcessSpec& ps, int i) {
    std::string cmdline;
    for (const auto& arg : ps.argv) cmdline += (cmdline.empty() ? "" : " ") + arg;
    AppendLog("frameflow: running " + cmdline.substr(0, 2000) +
              (wrap_ ? " (in the I/O wrapper as uid " + std::to_string(w_->uid) + ")" : ""));
    std::string summary;
    Result<ProcessSpec> run = ps;
    if (wrap_) {
      run = rs_->WrapCommand(w_, a_, ps, spec_.out_dir, dirs_, i,
                             rs_->clock_->MonotonicMillis() - commands_start_ms_, used_cpu_ms_,
                             i == 0 ? &summary : nullptr);
    } else if (w_->uid != 0 && ::geteuid() == 0) {
      // The renderer never runs as root: a plain chunk runs as the slot's uid.
      run->uid = run->gid = w_->uid;
      const bool has_home = std::any_of(run->env.begin(), run->env.end(), [](const std::string& e) {
        return e.rfind("HOME=", 0) == 0;
      });
      if (!has_home) run->env.push_back("HOME=/tmp");  // not root's home
    }
    if (!run.ok()) {
      FailStatus(run.status());
      return;
    }
    if (i == 0 && wrap_) result_.set_sandbox(summary);
    auto proc = rs_->launcher_->Start(*run, [&](const std::string& line) {
      std::lock_guard<std::mutex> lock(progress_mu_);
      adapter_->ObserveLine(line, &progress_);
      if (log_.size() < kMaxLogBytes) log_ += line + "\n";
      if (pending_lines_.size() < 2000) pending_lines_.push_back(line);
    });
    if (!proc.ok()) {
      Fail(-1, proc.status().message());
      return;
    }
    const int code = Watch(proc->get());
    std::string cancel_reason;
    {
      MutexLock lock(&rs_->mu_);
      w_->process = nullptr;
      cancel_reason = w_->cancel_reason;
    }
    const sandbox::WrapReport report = wrap_ ? ReadWrapReport(i) : sandbox::WrapReport();
    if (!cancel_reason.empty()) {
      cancelled_ = true;
      Fail(code, "cancelled: " + cancel_reason);
    } else if (report.limit == "wall_time" && a_.sandbox().wall_ms() > 0) {
      // The limit is the chunk's, over all its commands.
      Fail(code, "wall-time limit: still running after " +
                     sandbox::FormatSeconds(a_.sandbox().wall_ms()) + ", killed");
    } else if (report.limit == "cpu_time" && a_.sandbox().cpu_seconds() > 0) {
      Fail(code, "CPU-time limit: used " + std::to_string(a_.sandbox().cpu_seconds()) +
                     " s of CPU, killed");
    } else if (!report.limit.empty()) {
      Fail(code, report.reason);
    } else if (!report.setup_error.empty()) {
      Fail(code, "I/O wrapper: " + report.setup_error);
    } else if (code != 0) {
      std::string why = progress_.last_error_line.empty() ? "" : ": " + progress_.last_error_line;
      Fail(code, BaseName(ps.argv[0]) + " exited with code " + std::to_string(code) + why);
      // The package's own error line (rank 2) is about the scene.
      if (progress_.last_error_rank >= 2) result_.set_scene_error(true);
    }
  }

  // While the renderer runs, this thread sends progress every
  // kProgressEveryMs and turns a cancel's SIGTERM into SIGKILL after the
  // grace period; a renderer that exits sooner is collected at once.
  // Returns its exit code.
  int Watch(RunningProcess* proc) {
    {
      MutexLock lock(&rs_->mu_);
      w_->process = proc;
      if (!w_->cancel_reason.empty()) proc->KillTree(0);
    }
    while (true) {
      int64_t wait_ms = kProgressEveryMs;
      {
        MutexLock lock(&rs_->mu_);
        if (!w_->cancel_reason.empty()) {
          const int64_t left = w_->cancel_at_ms + kCancelGraceMs - rs_->clock_->MonotonicMillis();
          if (left <= 0) {
            proc->KillTree(0);
          } else {
            wait_ms = std::min(wait_ms, left);
          }
        }
      }
      if (auto exited = proc->WaitFor(static_cast<int>(wait_ms))) return *exited;
      SendProgress(false);
    }
  }

  // The wrapper's report says which limit, if any, ended the program, and
  // which output files it refused.
  sandbox::WrapReport ReadWrapReport(int i) {
    sandbox::WrapReport report;
    const std::string report_path = JoinPath(w_->secure_dir, "report.json");
    auto text = ReadFile(report_path);
    auto parsed =
        text.ok() ? sandbox::ReportFromJson(*text) : Result<sandbox::WrapReport>(text.status());
    if (parsed.ok()) {
      report = std::move(*parsed);
      used_cpu_ms_ += report.cpu_ms;
    } else {
      // The wrapper was killed (cancel, shutdown) before it cleaned up.
      sandbox::RemoveRunCgroup(rs_->CgroupParent(), RenderServer::RunName(w_, a_, i));
    }
    ::unlink(report_path.c_str());
    for (const auto& r : report.collection.refused) {
      AppendLog("frameflow: refused output '" + sandbox::PrintableName(r.path) + "': " + r.why);
    }
    if (!report.limit.empty()) result_.set_limit(report.limit);
    if (!report.collection.collected.empty()) {
      AppendLog("frameflow: collected " + std::to_string(report.collection.collected.size()) +
                " file(s) written to " + spec_.out_dir + " into the secure location " +
                host_spec_.out_dir);
    }
    return report;
  }

  RenderServer* const rs_;
  RenderServer::SlotWorker* const w_;
  const pb::Assignment& a_;
  const std::string name_;
  const bool wrap_;
  pb::ChunkResult result_;
  std::string log_;  // written by this thread, or under progress_mu_ while a command runs
  PackageAdapter* adapter_ = nullptr;
  ChunkSpec spec_;       // as the renderer sees it
  ChunkSpec host_spec_;  // as the render server sees it (differs when wrapped)
  std::vector<std::string> dirs_;
  int64_t commands_start_ms_ = 0;
  int64_t used_cpu_ms_ = 0;  // by the chunk's wrapped commands so far
  std::mutex progress_mu_;
  ChunkProgressState progress_;
  std::vector<std::string> pending_lines_;
  int64_t last_sent_ = 0;
  bool sent_any_progress_ = false;
  bool cancelled_ = false;  // a cancel stopped the commands
};

pb::ChunkResult RenderServer::RenderChunk(SlotWorker* w, const pb::Assignment& a) {
  ChunkRun run(this, w, a);
  if (!run.Accept()) return run.Refused();
  run.Prepare();
  run.RunCommands();
  run.CheckFrames();
  run.Upload();
  return run.Finish();
}

}  // namespace ff
