// Fuzz target: what render servers (and clients) send a schedule server,
// as ff::Scheduler handles it (scheduler/scheduler.h): Register, heartbeats,
// ChunkProgress, ChunkResult and stream ends, with Submit, Cancel and the
// read calls in between.
//
// A real Scheduler per input, on a real SQLite resource database and blob
// store in a fresh site root (copied from a template made once per
// process, in /dev/shm when there is one: fsync is free there), with a
// FakeClock and links that record what the scheduler sends: inputs do not
// share state, so a crash replays from its input alone, and an input's
// allocations are all freed (leaks are real). Every input starts by
// submitting two jobs (povray, frames 1-6 in chunks of 2; a command
// package, frames -2..2, no output files), then runs its records:
//
//   record = op (1 byte) | arg (1 byte) | length (2 bytes, little endian) | payload
//
// Message payloads are serialized protobuf merged (MergeFrom) over a valid
// baseline, so a few bytes reach deep states: the baseline of a result or
// progress is the arg-th assignment the current stream received, that of a
// registration a render server with two slots and povray 3.7 + "sim". Job
// ids 1..16 in a payload mean this input's jobs (base + id - 1); any other
// id is sent as is. Bytes that are not a valid message skip the record.
// Ops: 0 register, 1 heartbeat, 2 progress, 3 result (ok), 4 result
// (failed), 5 stream end, 6 clock +arg*250 ms and timeout check, 7 submit
// (payload: SubmitRequest merged over job a, or b when arg is odd),
// 8 cancel, 9 read calls (GetJob, ListJobs, ListHosts, GetLogs,
// ListOutputs, Quote, RemoteJobs), 10 switch stream, 11 re-register the
// last stream with the chunks it holds.
//
// After every record the jobs' counters must be sane; at the end every
// stream is closed, the clock passes the reconnect grace, every job is
// cancelled, and then no chunk may still run, no slot be busy, and every
// job must be final.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "core/job_profile.h"
#include "fuzz_common.h"
#include "rpc/protocol.h"
#include "scheduler/recording_link.h"
#include "scheduler/scheduler.h"
#include "store/blob_store.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace {

namespace pb = frameflow::v1;

constexpr size_t kMaxRecords = 64;
constexpr size_t kMaxFrames = 2000;  // a larger submitted job is skipped (slow, not wrong)

enum Op : uint8_t {
  kRegister,
  kHeartbeat,
  kProgress,
  kResult,
  kFailResult,
  kDisconnect,
  kTime,
  kSubmit,
  kCancel,
  kQuery,
  kSwitch,
  kReregister,
  kOpCount,
};

constexpr char kJobA[] = R"(name = "a"
frames = "1-6"
chunk_size = 2
max_attempts = 2
files = ["inc/parts.inc"]

[package]
name = "povray"
version = ">=3.7"

[render]
scene = "scene.pov"
output = "out/a_####.png"
)";

constexpr char kJobB[] = R"(name = "b"
priority = 60
frames = "-2-2"

[package]
name = "sim"

[render]
scene = "scene.pov"
)";

// The schedule server's end of one stream: keeps the first 256 messages.
using ff::RecordingLink;

struct Stream {
  std::string name;
  std::shared_ptr<RecordingLink> link;
};

struct World {
  ff::FakeClock clock;
  ff::SiteConfig config;
  std::unique_ptr<ff::Scheduler> sched;
  std::string template_root;
  std::string scene_sha, inc_sha, image_sha, log_sha;
  uint64_t submits = 0;
};

World* g = nullptr;

std::string Upload(const std::string& data) {
  const std::string sha = ff::Sha256Hex(data);
  if (g->sched->blobs()->Has(sha)) return sha;
  auto w = g->sched->blobs()->BeginWrite(sha, static_cast<int64_t>(data.size()));
  FUZZ_CHECK(w.ok(), w.status().message());
  FUZZ_CHECK((*w)->Append(data).ok(), "append");
  FUZZ_CHECK((*w)->Commit().ok(), "commit");
  return sha;
}

ff::SiteConfig ConfigAt(const std::string& root) {
  ff::SiteConfig c;
  c.site_name = "fuzzsite";
  c.root = root;
  c.heartbeat_timeout_ms = 5000;
  c.heartbeat_interval_ms = 1000;
  c.reconnect_grace_ms = 2000;
  c.max_attempts = 3;
  return c;
}

std::string TempDir() {
  auto dir = ff::MakeTempDir("ff-scheduler-fuzz");
  FUZZ_CHECK(dir.ok(), dir.status().message());
  return *dir;
}

// A site root with its database created and the job files and outputs in
// its blob store, copied for every input (cheaper than creating it).
void MakeTemplate() {
  if (::access("/dev/shm", W_OK) == 0) ::setenv("TMPDIR", "/dev/shm", 1);
  g->template_root = TempDir();
  g->config = ConfigAt(g->template_root);
  auto s = ff::Scheduler::Open(g->config, &g->clock);
  FUZZ_CHECK(s.ok(), s.status().message());
  g->sched = std::move(s).value();
  g->scene_sha = Upload("#include \"inc/parts.inc\"\nsphere { 0, 1 }\n");
  g->inc_sha = Upload("#declare R = 1;\n");
  g->image_sha = Upload(std::string("\x89PNG\r\n\x1a\n fuzz frame", 19));
  g->log_sha = Upload("renderer log\n");
  g->sched.reset();
}

void Open() {
  const std::string root = TempDir();
  std::error_code ec;
  std::filesystem::copy(g->template_root, root, std::filesystem::copy_options::recursive, ec);
  FUZZ_CHECK(!ec, ec.message());
  g->config = ConfigAt(root);
  auto s = ff::Scheduler::Open(g->config, &g->clock);
  FUZZ_CHECK(s.ok(), s.status().message());
  g->sched = std::move(s).value();
}

void Close() {
  g->sched.reset();
  (void)ff::RemoveAll(g->config.root);
}

pb::SubmitRequest BaseRequest(const char* toml, const std::string& name) {
  pb::SubmitRequest req;
  req.set_description(toml);
  req.set_description_name(name);
  auto* f = req.add_files();
  f->set_path("scene.pov");
  f->set_sha256(g->scene_sha);
  f->set_size(40);
  if (std::string(toml).find("inc/parts.inc") != std::string::npos) {
    f = req.add_files();
    f->set_path("inc/parts.inc");
    f->set_sha256(g->inc_sha);
    f->set_size(16);
  }
  return req;
}

pb::Register BaseRegister(const std::string& name) {
  pb::Register reg;
  reg.set_render_server(name);
  reg.set_host("host-" + name);
  reg.mutable_hardware()->set_cpu_model("Fuzz CPU");
  reg.mutable_hardware()->set_cores(8);
  reg.mutable_hardware()->set_memory_bytes(int64_t{32} << 30);
  reg.mutable_hardware()->set_os("FuzzOS");
  for (const auto& [pkg, version, kind] :
       {std::tuple<const char*, const char*, const char*>{"povray", "3.7.0.10", "povray"},
        {"sim", "1.0", "command"}}) {
    pb::Package* p = reg.add_packages();
    p->set_name(pkg);
    p->set_version(version);
    p->set_executable(std::string("/usr/bin/") + pkg);
    p->set_kind(kind);
  }
  pb::SlotSpec* s = reg.add_slots();
  s->set_name("s0");
  s->set_cores(4);
  s->set_memory_bytes(int64_t{16} << 30);
  s = reg.add_slots();
  s->set_name("s1");
  s->set_cores(1);
  s->set_memory_bytes(int64_t{1} << 30);
  return reg;
}

// One input's view: its jobs, its streams.
class Run {
 public:
  Run() { streams_.reserve(kMaxRecords); }

  void Start() {
    for (const auto& [toml, name] : {std::pair{kJobA, "a.toml"}, std::pair{kJobB, "b.toml"}}) {
      auto id = g->sched->Submit(BaseRequest(toml, name));
      FUZZ_CHECK(id.ok(), id.status().message());
      jobs_.push_back(*id);
    }
    base_ = jobs_.front();
  }

  void Do(uint8_t op, uint8_t arg, const std::string& payload) {
    switch (op % kOpCount) {
      case kRegister: {
        pb::Register reg = BaseRegister("rs-a");
        if (!reg.MergeFromString(payload)) return;
        RemapRunning(&reg);
        Connect(reg);
        return;
      }
      case kReregister: {
        // A render server reconnecting: the chunks it still runs listed.
        if (!last_) return;
        pb::Register reg = BaseRegister(last_->name);
        for (const pb::Assignment& a : Held(*last_)) {
          pb::RunningChunk* r = reg.add_running();
          r->set_job_id(a.job_id());
          r->set_chunk(a.chunk());
          r->set_attempt(a.attempt());
          r->set_slot(a.slot().substr(a.slot().find('/') + 1));
          if (arg & 1) r->set_slot(a.slot());
        }
        pb::Register extra;
        if (!extra.ParseFromString(payload)) return;
        RemapRunning(&extra);
        reg.MergeFrom(extra);
        Connect(reg);
        return;
      }
      case kHeartbeat:
        if (current_) g->sched->OnHeartbeat(current_->name);
        return;
      case kProgress: {
        if (!current_) return;
        pb::ChunkProgress p;
        if (const pb::Assignment* a = Pick(arg)) {
          p.set_job_id(a->job_id());
          p.set_chunk(a->chunk());
          p.set_attempt(a->attempt());
          p.set_frame(a->frames_size() ? a->frames(0) : -1);
          p.set_frames_done(1);
          p.add_log_lines("rendering");
        }
        pb::ChunkProgress extra;
        if (!extra.ParseFromString(payload)) return;
        extra.set_job_id(Remap(extra.job_id()));
        p.MergeFrom(extra);
        g->sched->OnHeartbeat(current_->name);
        g->sched->OnProgress(current_->name, p);
        return;
      }
      case kResult:
      case kFailResult: {
        if (!current_) return;
        pb::ChunkResult r;
        if (const pb::Assignment* a = Pick(arg)) r = BaseResult(*a, op % kOpCount == kResult, arg);
        pb::ChunkResult extra;
        if (!extra.ParseFromString(payload)) return;
        extra.set_job_id(Remap(extra.job_id()));
        r.MergeFrom(extra);
        g->sched->OnResult(current_->name, r);
        return;
      }
      case kDisconnect:
        if (!current_) return;
        g->sched->OnDisconnect(current_->name, current_->link.get());
        current_ = nullptr;
        return;
      case kTime:
        g->clock.Advance(int64_t{arg} * 250);
        g->sched->CheckTimeouts();
        return;
      case kSubmit: {
        pb::SubmitRequest req = BaseRequest(arg & 1 ? kJobB : kJobA, "fuzz.toml");
        pb::SubmitRequest extra;
        if (!extra.ParseFromString(payload)) return;
        req.MergeFrom(extra);
        Submit(req);
        return;
      }
      case kCancel:
        if (arg & 0x80) {
          (void)g->sched->Cancel(Remap(arg & 0x7f));
        } else {
          (void)g->sched->Cancel(jobs_[arg % jobs_.size()]);
        }
        return;
      case kQuery:
        Query(arg, payload);
        return;
      case kSwitch:
        if (!streams_.empty()) current_ = last_ = &streams_[arg % streams_.size()];
        return;
    }
  }

  // Counters every summary must keep, whatever the messages.
  void CheckJobs() {
    for (int64_t id : jobs_) {
      auto info = g->sched->GetJob(id, false);
      FUZZ_CHECK(info.ok(), info.status().message());
      CheckCounts(*info);
    }
  }

  // Every stream gone, past the grace, every job cancelled: nothing runs.
  void Finish() {
    for (Stream& s : streams_) g->sched->OnDisconnect(s.name, s.link.get());
    g->clock.Advance(g->config.reconnect_grace_ms + g->config.heartbeat_timeout_ms + 1);
    g->sched->CheckTimeouts();
    for (int64_t id : jobs_) {
      auto info = g->sched->Cancel(id);
      FUZZ_CHECK(info.ok(), info.status().message());
    }
    g->sched->Flush();
    for (int64_t id : jobs_) {
      auto info = g->sched->GetJob(id, true);
      FUZZ_CHECK(info.ok(), info.status().message());
      CheckCounts(*info);
      const std::string& st = info->state();
      FUZZ_CHECK(st == "done" || st == "failed" || st == "cancelled",
                 "job " + std::to_string(id) + " is " + st + " with no render server");
      FUZZ_CHECK(info->frames_running() == 0, "job " + std::to_string(id) + " still has " +
                                                  std::to_string(info->frames_running()) +
                                                  " frames running");
      for (const auto& c : info->chunks()) {
        FUZZ_CHECK(c.state() == "done" || c.state() == "failed" || c.state() == "cancelled",
                   "job " + std::to_string(id) + " chunk " + std::to_string(c.index()) + " is " +
                       c.state() + " with no render server");
      }
    }
    const pb::ListHostsResponse hosts = g->sched->ListHosts();
    for (const auto& h : hosts.hosts()) {
      FUZZ_CHECK(h.status() == "down", h.render_server() + " is " + h.status());
      for (const auto& s : h.slots()) {
        FUZZ_CHECK(s.state() != "busy", s.id() + " is busy on a server that is down");
      }
    }
  }

 private:
  int64_t Remap(int64_t id) const { return id >= 1 && id <= 16 ? base_ + id - 1 : id; }

  void RemapRunning(pb::Register* reg) const {
    for (auto& r : *reg->mutable_running()) r.set_job_id(Remap(r.job_id()));
  }

  void Connect(const pb::Register& reg) {
    auto link = std::make_shared<RecordingLink>(256);
    if (!g->sched->Register(reg, link).ok()) return;
    streams_.push_back(Stream{reg.render_server(), link});
    current_ = last_ = &streams_.back();
  }

  // The assignments of the current stream not yet answered here.
  std::vector<pb::Assignment> Held(const Stream& s) {
    g->sched->Flush();
    return s.link->Assignments();
  }

  const pb::Assignment* Pick(uint8_t arg) {
    picked_ = Held(*current_);
    if (picked_.empty()) return nullptr;
    return &picked_[(arg >> 1) % picked_.size()];
  }

  pb::ChunkResult BaseResult(const pb::Assignment& a, bool ok, uint8_t arg) {
    pb::ChunkResult r;
    r.set_job_id(a.job_id());
    r.set_chunk(a.chunk());
    r.set_attempt(a.attempt());
    r.set_ok(ok);
    r.set_exit_code(ok ? 0 : 1);
    if (!ok) r.set_error("renderer crashed");
    if (ok && !a.output().empty()) {
      for (int64_t f : a.frames()) {
        pb::FrameOutput* o = r.add_outputs();
        o->set_frame(f);
        o->set_sha256(g->image_sha);
        o->set_size(19);
        o->set_name("frame");
      }
    }
    if (arg & 1) {
      r.set_log_sha256(g->log_sha);
    } else {
      r.set_log_text("inline log\n");
    }
    r.set_started_ms(g->clock.UnixMillis() - 1000);
    r.set_ended_ms(g->clock.UnixMillis());
    return r;
  }

  void Submit(pb::SubmitRequest req) {
    auto profile = ff::ParseJobDescription(req.description(), "fuzz");
    // Notify targets would run commands and call URLs; huge jobs are slow.
    if (profile.ok() && (!profile->notify.empty() || profile->frames.size() > kMaxFrames)) return;
    // A request id names one job for good: make it this input's.
    if (!req.request_id().empty() && req.request_id().size() <= 48) {
      req.set_request_id(req.request_id() + "_" + std::to_string(g->submits));
    }
    ++g->submits;
    auto id = g->sched->Submit(req);
    if (id.ok() && *id >= base_) {
      bool known = false;
      for (int64_t j : jobs_) known = known || j == *id;
      if (!known) jobs_.push_back(*id);
    }
  }

  void Query(uint8_t arg, const std::string& payload) {
    const int64_t id = jobs_[(arg >> 3) % jobs_.size()];
    switch (arg % 8) {
      case 0:
        (void)g->sched->GetJob(id, true);
        break;
      case 1:
        (void)g->sched->ListJobs(arg & 0x40);
        break;
      case 2:
        (void)g->sched->ListHosts();
        break;
      case 3: {
        int64_t frame = 0;
        for (size_t i = 0; i < payload.size() && i < 8; ++i) {
          frame |= int64_t{static_cast<uint8_t>(payload[i])} << (8 * i);
        }
        (void)g->sched->GetLogs(id, payload.empty() ? 1 : frame);
        break;
      }
      case 4:
        (void)g->sched->ListOutputs(id);
        break;
      case 5:
        (void)g->sched->Quote(payload);
        break;
      case 6:
        (void)g->sched->RemoteJobs("peer", pb::RemoteJobsRequest());
        break;
      default:
        (void)g->sched->GetJob(Remap(arg >> 3), false);
    }
  }

  static void CheckCounts(const pb::JobInfo& info) {
    const std::string what =
        "job " + std::to_string(info.job_id()) + ": done " + std::to_string(info.frames_done()) +
        ", running " + std::to_string(info.frames_running()) + ", failed " +
        std::to_string(info.frames_failed()) + " of " + std::to_string(info.frames_total());
    FUZZ_CHECK(info.frames_done() >= 0 && info.frames_running() >= 0 && info.frames_failed() >= 0,
               what);
    FUZZ_CHECK(
        info.frames_done() + info.frames_running() + info.frames_failed() <= info.frames_total(),
        what);
  }

  std::vector<int64_t> jobs_;
  int64_t base_ = 0;
  std::vector<Stream> streams_;  // reserved: current_ points into it
  Stream* current_ = nullptr;
  Stream* last_ = nullptr;  // the stream a reconnect re-registers
  std::vector<pb::Assignment> picked_;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogging();
  g = new World();
  MakeTemplate();
  std::atexit([] { (void)ff::RemoveAll(g->template_root); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Open();
  Run run;
  run.Start();
  size_t pos = 0;
  for (size_t n = 0; n < kMaxRecords && pos + 4 <= size; ++n) {
    const uint8_t op = data[pos], arg = data[pos + 1];
    size_t len = data[pos + 2] | (size_t{data[pos + 3]} << 8);
    pos += 4;
    if (len > size - pos) len = size - pos;
    const std::string payload(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    run.Do(op, arg, payload);
    run.CheckJobs();
  }
  run.Finish();
  Close();
  return 0;
}
