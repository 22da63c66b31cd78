#include "render/render_server.h"

#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "core/frame_set.h"
#include "core/job_profile.h"
#include "render/host_probe.h"
#include "render/image_check.h"
#include "render/reconnect.h"
#include "rpc/blob_client.h"
#include "sandbox/cgroup.h"
#include "sandbox/spec.h"
#include "sandbox/wrapper.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {
constexpr size_t kMaxLogBytes = 8 << 20;   // per chunk attempt, in memory
constexpr int64_t kProgressEveryMs = 250;  // progress messages per chunk
constexpr int64_t kUnconfirmedKeepMs = 60'000;
constexpr int64_t kCancelGraceMs = 2000;     // SIGTERM -> SIGKILL on cancel
constexpr int kHandshakeTimeoutMs = 10'000;  // register -> registered
// After a refusal because another live render server uses the same name.
constexpr int64_t kRefusedRetryDelayMs = 2'000;
// How long file transfers wait for a schedule server that is away.
constexpr int64_t kScheduleServerWaitMs = 120'000;
// A schedule server that hangs, or whose host vanishes, closes no connection:
// without pings the stream would wait forever (hung) or for TCP's ~15 min of
// retransmissions (host gone). The peer's gRPC transport answers the pings,
// so a schedule server merely busy dispatching still does.
constexpr int kKeepaliveTimeMs = 2000;
constexpr int kKeepaliveTimeoutMs = 5000;

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

// pid and 64 random bits: unique among the processes that may share a name.
std::string NewInstanceId() {
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(r));
  return std::to_string(::getpid()) + "-" + buf;
}

std::string ChunkName(const pb::Assignment& a) {
  return "job " + std::to_string(a.job_id()) + " chunk " + std::to_string(a.chunk()) + " attempt " +
         std::to_string(a.attempt());
}
}  // namespace

RenderServer::RenderServer(RenderServerConfig config, ProcessLauncher* launcher, Clock* clock)
    : config_(std::move(config)), launcher_(launcher), clock_(clock), instance_(NewInstanceId()) {}

RenderServer::~RenderServer() { StopSlots(); }

void RenderServer::StopSlots() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    for (auto& w : slots_) w->cv.notify_all();
    stream_cv_.notify_all();
  }
  for (auto& w : slots_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

Status RenderServer::Init() {
  FF_RETURN_IF_ERROR(MakeDirs(config_.work_dir()));
  FF_ASSIGN_OR_RETURN(cache_, BlobStore::Open(config_.cache_dir()));
  // Work directories of a previous life are abandoned attempts.
  auto old = ListDir(config_.work_dir());
  if (old.ok()) {
    for (const auto& d : *old) (void)RemoveAll(JoinPath(config_.work_dir(), d));
  }
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  hardware_ = ProbeHardware(host);
  for (const auto& name : config_.probe) {
    Result<PackageRecord> pkg =
        name == "povray"    ? ProbePovray()
        : name == "blender" ? ProbeBlender()
                            : Result<PackageRecord>(InvalidArgument(
                                  "probe: unknown package '" + name + "' (povray or blender)"));
    if (!pkg.ok()) {
      if (pkg.status().code() == StatusCode::kInvalidArgument &&
          pkg.status().message().rfind("probe:", 0) == 0) {
        return pkg.status();
      }
      spdlog::info("package {} not available: {}", name, pkg.status().message());
      continue;
    }
    pkg->host = hardware_.name;
    adapters_[pkg->name] = pkg->kind == "povray" ? MakePovrayAdapter(pkg->executable)
                                                 : MakeBlenderAdapter(pkg->executable);
    packages_.push_back(*pkg);
  }
  for (const auto& c : config_.packages) {
    PackageRecord p;
    p.host = hardware_.name;
    p.name = c.name;
    p.version = c.version;
    p.executable = c.command;
    p.kind = "command";
    adapters_[c.name] = MakeCommandAdapter(c);
    packages_.erase(std::remove_if(packages_.begin(), packages_.end(),
                                   [&](const PackageRecord& r) { return r.name == c.name; }),
                    packages_.end());
    packages_.push_back(p);
  }
  std::vector<SlotConfig> slots = config_.slots;
  if (slots.empty()) slots.push_back(SlotConfig{"0", std::max(1, hardware_.cores), 0, 0});
  for (const auto& sc : slots) {
    auto w = std::make_unique<SlotWorker>();
    w->config = sc;
    // Unspecified memory: an equal share of the host's.
    if (w->config.memory_bytes == 0) {
      w->config.memory_bytes = hardware_.memory_bytes / static_cast<int64_t>(slots.size());
    }
    w->id = config_.name + "/" + sc.name;
    slots_.push_back(std::move(w));
  }
  FF_RETURN_IF_ERROR(InitSandbox());
  for (auto& w : slots_) {
    SlotWorker* raw = w.get();
    w->thread = std::thread([this, raw] { SlotLoop(raw); });
  }
  std::string pkgs;
  for (const auto& p : packages_) pkgs += " " + p.name + "-" + p.version;
  spdlog::info("render server '{}' on {}: {} core(s), {} slot(s), packages:{}", config_.name,
               hardware_.name, hardware_.cores, slots_.size(), pkgs.empty() ? " none" : pkgs);
  return Status::Ok();
}

namespace {

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

constexpr int64_t kFirstSlotUid = 2000000000;
constexpr int64_t kUidBlock = 1000;

// Locks the uid block starting at `base` for the render server's life
// (/run/frameflow/uid-blocks/<base>.lock, root-only); false when another
// render server on the host holds it.
Result<bool> LockUidBlock(int64_t base, int* lock_fd) {
  const std::string dir = "/run/frameflow/uid-blocks";
  FF_RETURN_IF_ERROR(MakeDirs(dir, 0700));
  const std::string path = JoinPath(dir, std::to_string(base) + ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return ErrnoError("cannot open", path, errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
    *lock_fd = fd;
    return true;
  }
  ::close(fd);
  return false;
}

// Claims the first free block of kUidBlock uids, so render servers sharing
// a host never share a uid.
Result<int64_t> ClaimUidBlock(int* lock_fd) {
  for (int64_t k = 0; k < 2000; ++k) {
    const int64_t base = kFirstSlotUid + k * kUidBlock;
    FF_ASSIGN_OR_RETURN(bool locked, LockUidBlock(base, lock_fd));
    if (locked) return base;
  }
  return FailedPrecondition(
      "no free uid block under /run/frameflow/uid-blocks (set sandbox.uid_base)");
}

}  // namespace

namespace {

// A clean relative job path: what NormaliseJobPath leaves unchanged.
bool CleanJobPath(const std::string& p) {
  auto n = NormaliseJobPath(p, "");
  return n.ok() && *n == p;
}

bool CleanCentralPath(const std::string& p) {
  auto n = NormaliseCentralPath(p, "");
  return n.ok() && *n == p;
}

// Limits in seconds are multiplied by 1000 on the way: bounded well below
// int64 (a thousand years).
constexpr int64_t kMaxLimitSeconds = int64_t{1000} * 366 * 86400;

}  // namespace

Status CheckAssignment(const pb::Assignment& a) {
  if (a.frames_size() == 0) return InvalidArgument("assignment has no frames");
  auto bad = [&](const std::string& field, const std::string& problem) {
    return InvalidArgument("assignment " + ChunkName(a) + ": " + field + ": " + problem);
  };
  auto in_range = [](int64_t f) { return f >= FrameSet::kMinFrame && f <= FrameSet::kMaxFrame; };
  for (int i = 0; i < a.frames_size(); ++i) {
    if (!in_range(a.frames(i))) return bad("frames", "frame outside the frame range");
    if (i > 0 && a.frames(i) <= a.frames(i - 1)) return bad("frames", "not ascending");
  }
  if (!in_range(a.job_first_frame()) || !in_range(a.job_last_frame())) {
    return bad("job_first_frame, job_last_frame", "outside the frame range");
  }
  if (!CleanJobPath(a.scene())) return bad("scene", "not a clean relative path");
  for (int i = 0; i < a.files_size(); ++i) {
    const pb::JobFile& f = a.files(i);
    const std::string field = "files[" + std::to_string(i) + "]";
    if (!CleanJobPath(f.path())) return bad(field + ".path", "not a clean relative path");
    if (!IsSha256Hex(f.sha256())) return bad(field + ".sha256", "not a SHA-256 digest");
    if (f.size() < 0) return bad(field + ".size", "negative");
  }
  const std::string& out = a.output();
  if (!out.empty()) {
    if (out.find('#') == std::string::npos) return bad("output", "has no '#'");
    if (out[0] == '/' ? !CleanCentralPath(out) : !CleanJobPath(out)) {
      return bad("output", "not a clean relative or central path");
    }
  }
  if (a.width() < 1 || a.width() > 65536 || a.height() < 1 || a.height() > 65536) {
    return bad("width, height", "outside 1..65536");
  }
  const pb::SandboxPolicy& p = a.sandbox();
  if (!p.wrap()) return Status::Ok();
  for (int i = 0; i < p.central_size(); ++i) {
    const std::string field = "sandbox.central[" + std::to_string(i) + "]";
    if (!CleanCentralPath(p.central(i).path())) return bad(field + ".path", "not a central path");
    if (p.central(i).source() != "." && !CleanJobPath(p.central(i).source())) {
      return bad(field + ".source", "not '.' or a clean relative path");
    }
  }
  if (!p.output_dir().empty() && !CleanCentralPath(p.output_dir())) {
    return bad("sandbox.output_dir", "not a central path");
  }
  for (int64_t v :
       {p.memory(), p.processes(), p.wall_ms(), p.output_bytes(), p.file_bytes(), p.tmp_bytes()}) {
    if (v < 0) return bad("sandbox", "a negative limit");
  }
  if (p.cpu_seconds() < 0 || p.cpu_seconds() > kMaxLimitSeconds) {
    return bad("sandbox.cpu_seconds", "outside 0.." + std::to_string(kMaxLimitSeconds));
  }
  return Status::Ok();
}

ChunkSpec ChunkSpecOf(const pb::Assignment& a, int threads) {
  ChunkSpec spec;
  spec.job_id = a.job_id();
  spec.chunk = a.chunk();
  spec.frames.assign(a.frames().begin(), a.frames().end());
  spec.job_first_frame = a.job_first_frame();
  spec.job_last_frame = a.job_last_frame();
  spec.scene = a.scene();
  spec.width = a.width();
  spec.height = a.height();
  spec.threads = threads;
  // An absolute (central) output names its directory as the output area;
  // the pattern proper is its file name.
  spec.output_pattern = a.output().empty() || a.output()[0] != '/'
                            ? a.output()
                            : a.output().substr(a.output().rfind('/') + 1);
  spec.args.assign(a.args().begin(), a.args().end());
  return spec;
}

Result<sandbox::WrapSpec> WrapSpecOf(const pb::Assignment& a, const WrapSlot& slot,
                                     const ProcessSpec& ps, const std::string& out_dir,
                                     const std::vector<std::string>& dirs, int index,
                                     int64_t used_ms, int64_t used_cpu_ms) {
  const pb::SandboxPolicy& p = a.sandbox();
  // What earlier commands of the chunk left of its time limits.
  if (p.wall_ms() > 0 && used_ms >= p.wall_ms()) {
    return FailedPrecondition("wall-time limit: the chunk's earlier commands used its " +
                              std::to_string(p.wall_ms() / 1000) + " s");
  }
  if (p.cpu_seconds() > 0 && used_cpu_ms >= p.cpu_seconds() * 1000) {
    return FailedPrecondition("CPU-time limit: the chunk's earlier commands used its " +
                              std::to_string(p.cpu_seconds()) + " s of CPU");
  }
  sandbox::WrapSpec ws;
  ws.name = slot.run_name;
  ws.uid = slot.uid;
  ws.gid = slot.uid;
  ws.system = slot.system;
  ws.input = JoinPath(slot.secure_dir, "input");
  for (const auto& c : p.central()) {
    ws.central.push_back({c.source() == "." ? ws.input : JoinPath(ws.input, c.source()), c.path()});
  }
  ws.output = out_dir;
  ws.output_dirs = dirs;
  ws.collect_to = JoinPath(slot.secure_dir, "output");
  ws.cwd = ps.cwd;
  ws.env = ps.env;
  ws.limits.memory_bytes = p.memory() > 0 ? p.memory() : slot.memory_bytes;
  ws.limits.processes = p.processes();
  ws.limits.cpu_seconds =
      p.cpu_seconds() > 0 ? (p.cpu_seconds() * 1000 - used_cpu_ms + 999) / 1000 : 0;
  ws.limits.wall_ms = p.wall_ms() > 0 ? p.wall_ms() - used_ms : 0;
  if (p.output_bytes() > 0) ws.limits.output_bytes = p.output_bytes();
  ws.limits.file_bytes = p.file_bytes();
  if (p.tmp_bytes() > 0) ws.limits.tmp_bytes = p.tmp_bytes();
  ws.landlock_min_abi = slot.landlock_min_abi;
  ws.cgroup_parent = slot.cgroup_parent;
  ws.report = JoinPath(slot.secure_dir, "report.json");
  ws.summary = index == 0;  // once per chunk, at the top of its log
  ws.argv = ps.argv;
  return ws;
}

Status RenderServer::InitSandbox() {
  const SandboxHostConfig& sb = config_.sandbox;
  wrapper_ = sb.wrapper;
  if (wrapper_.empty()) {
    char self[4096];
    ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
      self[n] = '\0';
      wrapper_ = JoinPath(DirName(self), "frameflow-wrap");
    }
  }
  for (const auto& p : sb.system_paths) {
    if (PathExists(p)) system_paths_.push_back(p);
  }
  for (const auto& p : sb.extra_paths) system_paths_.push_back(p);
  // POV-Ray's own file I/O restrictions would refuse the central paths a
  // scene names; inside the wrapper the sandbox decides what it may read
  // and write, so wrapped POV-Ray gets a farm configuration without them.
  const std::string povray_conf = "/etc/povray/3.7/povray.conf";
  if (PathExists(povray_conf)) {
    const std::string farm_conf = JoinPath(config_.root, "sandbox/povray.conf");
    FF_RETURN_IF_ERROR(MakeDirs(DirName(farm_conf)));
    FF_RETURN_IF_ERROR(WriteFileAtomic(
        farm_conf,
        "; frameflow: POV-Ray inside the I/O wrapper. The wrapper's mounts, Landlock rules and\n"
        "; seccomp filter decide what the renderer may read and write.\n"
        "[File I/O Security]\nnone\n[Shellout Security]\nforbidden\n"));
    sandbox_binds_.push_back({farm_conf, povray_conf});
  }
  if (sb.uid_base > 0) {
    uid_base_ = sb.uid_base;
    if (::geteuid() == 0) {
      FF_ASSIGN_OR_RETURN(bool locked, LockUidBlock(uid_base_, &uid_lock_fd_));
      if (!locked) {
        return FailedPrecondition("sandbox.uid_base: uids from " + std::to_string(uid_base_) +
                                  " are in use by another render server on this host");
      }
    }
  } else if (::geteuid() == 0) {
    FF_ASSIGN_OR_RETURN(uid_base_, ClaimUidBlock(&uid_lock_fd_));
  }
  if (static_cast<int64_t>(slots_.size()) > kUidBlock) {
    return InvalidArgument("at most " + std::to_string(kUidBlock) + " slots per render server");
  }
  for (size_t i = 0; i < slots_.size(); ++i) {
    slots_[i]->uid = static_cast<uint32_t>(uid_base_ + static_cast<int64_t>(i));
  }
  // Plain chunks run as the slot's uid in work/: every directory above it
  // must let that uid through.
  if (uid_base_ > 0) {
    for (std::string d = config_.work_dir(); d != "/" && d != "."; d = DirName(d)) {
      struct stat st {};
      if (::stat(d.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
        plain_blocked_ = "plain chunks run as the slot's uid, which cannot reach '" + d +
                         "' (mode " + mode +
                         "): make it searchable (chmod o+x) or let the site wrap local jobs";
        spdlog::warn("{}", plain_blocked_);
        break;
      }
    }
  }
  // Secure locations and cgroups of a previous life belong to chunks that
  // will be assigned again.
  (void)RemoveAll(config_.secure_dir());
  FF_RETURN_IF_ERROR(MakeDirs(config_.secure_dir(), 0700));
  ::chmod(config_.secure_dir().c_str(), 0700);
  sandbox::RemoveEmptyCgroups(CgroupParent());
  if (::access(wrapper_.c_str(), X_OK) != 0) {
    spdlog::warn(
        "I/O wrapper '{}' not found: chunks the site wraps will fail (set sandbox.wrapper)",
        wrapper_);
  } else {
    spdlog::info("I/O wrapper {}; slot uids from {}; system paths {}", wrapper_, uid_base_,
                 system_paths_.size());
  }
  return Status::Ok();
}

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

std::string RenderServer::ResolveAddress() {
  if (!config_.schedule_server_file.empty()) {
    auto text = ReadFile(config_.schedule_server_file);
    if (text.ok()) {
      std::string a = *text;
      while (!a.empty() && (a.back() == '\n' || a.back() == ' ')) a.pop_back();
      if (!a.empty()) return a;
    }
  }
  return config_.schedule_server;
}

pb::Register RenderServer::MakeRegister() {
  pb::Register reg;
  reg.set_render_server(config_.name);
  reg.set_host(hardware_.name);
  reg.set_instance(instance_);
  auto* hw = reg.mutable_hardware();
  hw->set_cpu_model(hardware_.cpu_model);
  hw->set_cores(hardware_.cores);
  hw->set_memory_bytes(hardware_.memory_bytes);
  for (const auto& g : hardware_.gpus) hw->add_gpus(g);
  hw->set_os(hardware_.os);
  for (const auto& p : packages_) {
    auto* pk = reg.add_packages();
    pk->set_name(p.name);
    pk->set_version(p.version);
    pk->set_executable(p.executable);
    pk->set_kind(p.kind);
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& w : slots_) {
    auto* s = reg.add_slots();
    s->set_name(w->config.name);
    s->set_cores(w->config.cores);
    s->set_memory_bytes(w->config.memory_bytes);
    s->set_gpus(w->config.gpus);
    std::vector<const pb::Assignment*> held;
    if (w->current) held.push_back(&*w->current);
    for (const auto& a : w->next) held.push_back(&a);
    for (const pb::Assignment* a : held) {
      auto* r = reg.add_running();
      r->set_job_id(a->job_id());
      r->set_chunk(a->chunk());
      r->set_attempt(a->attempt());
      r->set_slot(w->id);
    }
  }
  // Results that may not have arrived are still "running" from the schedule
  // server's point of view; they are re-sent right after registering.
  for (const auto& [t, res] : unconfirmed_) {
    auto* r = reg.add_running();
    r->set_job_id(res.job_id());
    r->set_chunk(res.chunk());
    r->set_attempt(res.attempt());
  }
  return reg;
}

bool RenderServer::Send(const pb::RenderServerMessage& msg) {
  std::lock_guard<std::mutex> lock(stream_mu_);
  if (!stream_) return false;
  return stream_->Write(msg);
}

void RenderServer::DeliverResult(const pb::ChunkResult& r) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const int64_t now = clock_->MonotonicMillis();
    bool connected;
    {
      std::lock_guard<std::mutex> stream_lock(stream_mu_);
      connected = stream_ != nullptr;
    }
    // While connected, results sent long ago have arrived (the stream is
    // ordered); while disconnected nothing is dropped.
    while (connected && !unconfirmed_.empty() &&
           now - unconfirmed_.front().first > kUnconfirmedKeepMs) {
      unconfirmed_.pop_front();
    }
    unconfirmed_.emplace_back(now, r);
  }
  pb::RenderServerMessage msg;
  *msg.mutable_result() = r;
  if (!Send(msg)) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      undelivered_ = true;
    }
    spdlog::warn("result of job {} chunk {} kept until the schedule server is back", r.job_id(),
                 r.chunk());
  }
}

namespace {
void AddHeld(const pb::Assignment& a, const std::string& slot, pb::Drain* d) {
  auto* r = d->add_returned();
  r->set_job_id(a.job_id());
  r->set_chunk(a.chunk());
  r->set_attempt(a.attempt());
  r->set_slot(slot);
}
}  // namespace

void RenderServer::BeginDrain() {
  pb::RenderServerMessage msg;
  int running = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    for (auto& w : slots_) {
      for (const auto& a : w->next) AddHeld(a, w->id, msg.mutable_drain());
      w->next.clear();
      if (w->current) ++running;
    }
  }
  msg.mutable_drain()->set_reason("stopping (SIGTERM): running chunks finish, no new ones");
  spdlog::info("draining: {} running chunk(s) finish (at most {} s), {} waiting handed back",
               running, config_.drain_timeout_ms / 1000, msg.drain().returned_size());
  // Without a stream the waiting ones are simply not listed at the next
  // registration; the Drain is repeated then (Run).
  Send(msg);
}

void RenderServer::HandBackAll(const std::string& reason) {
  pb::RenderServerMessage msg;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& w : slots_) {
      if (w->current) AddHeld(*w->current, w->id, msg.mutable_drain());
      for (const auto& a : w->next) AddHeld(a, w->id, msg.mutable_drain());
    }
  }
  if (msg.drain().returned_size() == 0) return;
  msg.mutable_drain()->set_reason(reason);
  if (Send(msg)) {
    spdlog::info("handed back {} chunk(s): {}", msg.drain().returned_size(), reason);
  }
}

bool RenderServer::WaitDrained(const std::atomic<bool>* stop) {
  const int64_t deadline = clock_->MonotonicMillis() + config_.drain_timeout_ms;
  while (!stop->load()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool busy = undelivered_;
      for (const auto& w : slots_) busy = busy || w->current || !w->next.empty();
      if (!busy) return true;
    }
    if (clock_->MonotonicMillis() >= deadline) {
      spdlog::warn("drain timeout ({} s) passed with chunks still running",
                   config_.drain_timeout_ms / 1000);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

Status RenderServer::Run(const std::atomic<bool>* stop, const std::atomic<bool>* drain) {
  const std::string& address_file = config_.schedule_server_file;
  int failures = 0;               // consecutive failed attempts to register
  int refusals = 0;               // consecutive registrations refused: the name is in use
  Status fatal;                   // a refusal retrying cannot cure: Run ends with it
  std::atomic<bool> quit{false};  // set with `fatal`
  bool waiting_logged = false;    // for the address file, since it was last read
  // Signal handlers cannot notify: the drain request is looked for every 20 ms.
  std::thread drain_watch([&] {
    if (!drain) return;
    while (!stop->load() && !drain->load() && !quit.load()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (stop->load() || quit.load()) return;
    BeginDrain();
    if (WaitDrained(stop)) spdlog::info("drained: every chunk finished and was reported");
    drained_ = true;
  });
  auto ending = [&] { return stop->load() || drained_.load(); };
  while (!ending()) {
    // Taken before the file is read: a rewrite after this ends the wait below.
    const std::string address_version = FileVersion(address_file);
    std::string address = ResolveAddress();
    if (address.empty()) {
      if (address_file.empty()) {
        return InvalidArgument(
            "no schedule server address: set schedule_server or "
            "schedule_server_file in the render server config");
      }
      // The schedule server is (re)starting and has not written its address
      // yet: keep rendering and look again as soon as the file appears.
      if (!waiting_logged) {
        spdlog::info("waiting for the schedule server's address in {} (schedule_server_file)",
                     address_file);
        waiting_logged = true;
      }
      WaitForRetry(kReconnectMaxDelayMs, stop, address_file, address_version);
      continue;
    }
    waiting_logged = false;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    auto stub = std::shared_ptr<pb::ScheduleServer::Stub>(pb::ScheduleServer::NewStub(channel));
    grpc::ClientContext ctx;
    auto stream = stub->Connect(&ctx);
    pb::RenderServerMessage hello;
    *hello.mutable_register_() = MakeRegister();
    pb::ScheduleServerMessage in;
    // The handshake is bounded: a schedule server that accepts but never
    // answers (or a stop request) cancels it instead of blocking forever.
    // The guard is woken when the handshake ends, so it never delays it.
    std::mutex handshake_mu;
    std::condition_variable handshake_cv;
    bool handshake_done = false;       // GUARDED_BY(handshake_mu)
    bool handshake_cancelled = false;  // GUARDED_BY(handshake_mu)
    std::thread handshake_guard([&] {
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::milliseconds(kHandshakeTimeoutMs);
      std::unique_lock<std::mutex> lock(handshake_mu);
      // `stop` is set from a signal handler, which cannot notify: look every 20 ms.
      while (!handshake_done && !stop->load() && std::chrono::steady_clock::now() < deadline) {
        handshake_cv.wait_for(lock, std::chrono::milliseconds(20));
      }
      if (!handshake_done) {
        handshake_cancelled = true;
        ctx.TryCancel();
      }
    });
    const bool wrote = stream->Write(hello);
    // A failed Write means the stream ended; Read then returns false as well.
    const bool got_reply = stream->Read(&in);
    const bool registered = wrote && got_reply && in.has_registered();
    bool cancelled;
    {
      std::lock_guard<std::mutex> lock(handshake_mu);
      handshake_done = true;
      cancelled = handshake_cancelled;
    }
    handshake_cv.notify_all();
    handshake_guard.join();
    if (!registered) {
      // When Read failed the server ended the stream (or it never opened):
      // Finish() returns at once with its status, the reason for the refusal.
      // A reply other than `registered` leaves the stream open: cancel, or
      // Finish() would wait for the server to end it.
      if (got_reply && !cancelled) ctx.TryCancel();
      grpc::Status st = stream->Finish();
      if (cancelled && !stop->load()) {
        st = grpc::Status(
            grpc::StatusCode::DEADLINE_EXCEEDED,
            "no answer to register within " + std::to_string(kHandshakeTimeoutMs) + " ms");
      }
      if (st.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        // This render server's own configuration is wrong: retrying cannot help.
        fatal = InvalidArgument("schedule server " + address +
                                " refused the registration: " + st.error_message());
        spdlog::error("{}", fatal.message());
        quit = true;
        break;
      }
      const bool refused = st.error_code() == grpc::StatusCode::ALREADY_EXISTS;
      // The name is in use by a live render server: ask again slowly, in case
      // that one goes away, without disturbing it.
      const int64_t delay_ms = refused ? kRefusedRetryDelayMs : ReconnectDelayMs(++failures);
      const int attempt = refused ? ++refusals : failures;
      // A schedule server away for long would fill the log: after the first
      // few attempts, one line in 30.
      if (attempt <= 5 || attempt % 30 == 0) {
        spdlog::warn("cannot register with schedule server {}: {}; attempt {}, retrying in {} ms{}",
                     address, st.error_message().empty() ? "connection failed" : st.error_message(),
                     attempt, delay_ms,
                     address_file.empty() ? "" : " or when " + address_file + " changes");
      }
      if (WaitForRetry(delay_ms, stop, address_file, address_version)) {
        spdlog::info("{} changed; retrying now", address_file);
      }
      continue;
    }
    failures = 0;
    refusals = 0;
    const int64_t hb_ms = in.registered().heartbeat_interval_ms() > 0
                              ? in.registered().heartbeat_interval_ms()
                              : config_.heartbeat_interval_ms;
    spdlog::info("registered with schedule server {} of site '{}'", address,
                 in.registered().site());
    {
      // Under mu_ too, so a file transfer waiting in WithScheduleServer
      // cannot miss the notification: it goes at once.
      std::lock_guard<std::mutex> lock(mu_);
      std::lock_guard<std::mutex> stream_lock(stream_mu_);
      stream_ = stream.get();
      stub_ = stub;
    }
    stream_cv_.notify_all();
    // Re-send results that may have been lost with the previous stream.
    std::vector<pb::ChunkResult> resend;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& [t, r] : unconfirmed_) resend.push_back(r);
    }
    bool all_sent = true;
    for (const auto& r : resend) {
      pb::RenderServerMessage msg;
      *msg.mutable_result() = r;
      all_sent = Send(msg) && all_sent;
    }
    bool draining;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (all_sent) undelivered_ = false;
      draining = draining_;
    }
    if (draining) {
      // Still stopping: the new stream is told so (no new chunks).
      pb::RenderServerMessage msg;
      msg.mutable_drain()->set_reason("stopping (SIGTERM): running chunks finish, no new ones");
      Send(msg);
    }
    std::atomic<bool> stream_done{false};
    std::thread heartbeat([&] {
      std::mutex m;
      std::unique_lock<std::mutex> lock(m);
      while (!stream_done.load() && !ending()) {
        pb::RenderServerMessage msg;
        msg.mutable_heartbeat()->set_sent_ms(clock_->UnixMillis());
        Send(msg);
        for (int64_t waited = 0; waited < hb_ms && !stream_done.load() && !ending(); waited += 20) {
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      }
      if (ending()) {
        // Whatever is still held is killed below: queued again at once.
        if (!stream_done.load()) HandBackAll("the render server stopped");
        ctx.TryCancel();
      }
    });
    while (stream->Read(&in)) {
      if (in.has_assign()) {
        HandleAssignment(in.assign());
      } else if (in.has_cancel()) {
        HandleCancel(in.cancel());
      }
    }
    stream_done = true;
    heartbeat.join();
    {
      std::lock_guard<std::mutex> lock(stream_mu_);
      stream_ = nullptr;
      stub_.reset();  // file transfers wait for the next registered stream
    }
    grpc::Status st = stream->Finish();
    if (!ending()) {
      spdlog::warn("lost the schedule server stream ({}); reconnecting", st.error_message());
    }
  }
  quit = true;
  drain_watch.join();
  // Shutting down: kill every chunk's process tree.
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stream_cv_.notify_all();
    for (auto& w : slots_) {
      w->next.clear();
      if (w->process) {
        w->cancel_reason = "render server shutting down";
        w->process->KillTree(0);
      }
    }
  }
  StopSlots();
  return fatal;
}

void RenderServer::HandleAssignment(const pb::Assignment& a) {
  std::unique_lock<std::mutex> lock(mu_);
  if (draining_) {
    pb::RenderServerMessage msg;
    AddHeld(a, a.slot(), msg.mutable_drain());
    msg.mutable_drain()->set_reason("stopping (SIGTERM): no new chunks");
    lock.unlock();
    Send(msg);
    return;
  }
  for (auto& w : slots_) {
    if (w->id != a.slot()) continue;
    if (w->current || !w->next.empty()) {
      // Runs after the chunk(s) the slot holds: the schedule server lost
      // track of the slot (restart), or sent the next chunk early.
      spdlog::debug("slot {} got {} while busy; queued behind {} chunk(s)", w->id, ChunkName(a),
                    w->next.size() + (w->current ? 1 : 0));
    }
    w->next.push_back(a);
    w->cv.notify_one();
    return;
  }
  spdlog::error("assignment {} names unknown slot '{}'", ChunkName(a), a.slot());
}

void RenderServer::HandleCancel(const pb::CancelChunk& c) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : slots_) {
    auto matches = [&](const pb::Assignment& a) {
      return a.job_id() == c.job_id() && a.chunk() == c.chunk() && a.attempt() == c.attempt();
    };
    for (auto it = w->next.begin(); it != w->next.end();) {
      it = matches(*it) ? w->next.erase(it) : it + 1;
    }
    if (w->current && matches(*w->current)) {
      w->cancel_reason = c.reason().empty() ? "cancelled" : c.reason();
      w->cancel_at_ms = clock_->MonotonicMillis();
      // SIGTERM now; the slot's own thread escalates to SIGKILL after the
      // grace period, so this reader thread never blocks.
      if (w->process) ::kill(-w->process->pid(), SIGTERM);
      spdlog::info("cancelling {}: {}", ChunkName(*w->current), w->cancel_reason);
    }
  }
}

void RenderServer::SlotLoop(SlotWorker* w) {
  while (true) {
    pb::Assignment a;
    {
      std::unique_lock<std::mutex> lock(mu_);
      w->cv.wait(lock, [&] { return stopping_ || !w->next.empty(); });
      if (stopping_) return;
      a = std::move(w->next.front());
      w->next.pop_front();
      w->current = a;
      w->cancel_reason.clear();
    }
    pb::ChunkResult result = RenderChunk(w, a);
    bool stopping;
    {
      std::lock_guard<std::mutex> lock(mu_);
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

Status RenderServer::WithScheduleServer(
    const std::function<Status(pb::ScheduleServer::Stub*)>& call) {
  const int64_t deadline = clock_->MonotonicMillis() + kScheduleServerWaitMs;
  Status st = Unavailable("not connected to the schedule server");
  for (int attempt = 0; clock_->MonotonicMillis() < deadline; ++attempt) {
    std::shared_ptr<pb::ScheduleServer::Stub> stub;
    {
      std::lock_guard<std::mutex> lock(stream_mu_);
      stub = stub_;
    }
    if (stub) {
      st = call(stub.get());
      // Only an unreachable server is worth waiting for.
      if (st.ok() || st.code() != StatusCode::kUnavailable) return st;
    }
    if (attempt == 0) {
      spdlog::info("the schedule server is away; waiting up to {} s for it to come back",
                   kScheduleServerWaitMs / 1000);
    }
    // Back off, but go again as soon as a new stream registers (Run notifies
    // stream_cv_): a chunk that ended while the schedule server was away reports at once.
    const auto delay = std::chrono::milliseconds(std::min(100 << std::min(attempt, 4), 1000));
    std::unique_lock<std::mutex> lock(mu_);
    stream_cv_.wait_for(lock, delay, [&] {
      std::lock_guard<std::mutex> stream_lock(stream_mu_);  // order: mu_, then stream_mu_
      return stopping_ || (stub_ != nullptr && stub_ != stub);
    });
    if (stopping_) return Cancelled("render server shutting down");
  }
  return st;
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

pb::ChunkResult RenderServer::RenderChunk(SlotWorker* w, const pb::Assignment& a) {
  pb::ChunkResult result;
  result.set_job_id(a.job_id());
  result.set_chunk(a.chunk());
  result.set_attempt(a.attempt());
  result.set_started_ms(clock_->UnixMillis());
  const std::string name = ChunkName(a);
  if (Status valid = CheckAssignment(a); !valid.ok()) {
    spdlog::error("{}: refused: {}", name, valid.message());
    result.set_ok(false);
    result.set_error(valid.message());
    return result;
  }
  spdlog::info("{}: rendering frames {}..{} ({} frame(s)) on slot {}", name, a.frames(0),
               a.frames(a.frames_size() - 1), a.frames_size(), w->id);

  std::string log;
  auto append_log = [&](const std::string& line) {
    if (log.size() < kMaxLogBytes) log += line + "\n";
  };
  auto fail = [&](int exit_code, const std::string& error) {
    result.set_ok(false);
    result.set_exit_code(exit_code);
    result.set_error(error);
    append_log("frameflow: " + error);
  };
  // A step that stopped on a full filesystem: retried by the schedule server
  // once there is space, not counted as the chunk's failure.
  auto fail_status = [&](const Status& status, const std::string& context = "") {
    fail(-1, context + status.message());
    if (IsDiskFull(status)) result.set_disk_full(true);
  };

  ChunkSpec spec = ChunkSpecOf(a, w->config.cores);

  auto adapter_it = adapters_.find(a.package());
  Status st = adapter_it == adapters_.end()
                  ? FailedPrecondition("package '" + a.package() + "' is not installed here")
                  : Status::Ok();
  // Inside the I/O wrapper the renderer sees the job at /job and writes to
  // its output area; the render server finds them in the chunk's secure
  // location (host_spec).
  const bool wrap = a.sandbox().wrap();
  ChunkSpec host_spec;
  if (wrap) {
    if (st.ok()) st = PrepareSecureDir(w, a);
    spec.job_dir = sandbox::kInputPath;
    spec.out_dir = a.sandbox().output_dir().empty() ? "/out" : a.sandbox().output_dir();
    host_spec = spec;
    host_spec.job_dir = JoinPath(w->secure_dir, "input");
    host_spec.out_dir = JoinPath(w->secure_dir, "output");
  } else {
    if (st.ok() && !plain_blocked_.empty()) st = FailedPrecondition(plain_blocked_);
    if (st.ok()) st = PrepareWorkDir(w);
    spec.job_dir = JoinPath(w->work_dir, "job");
    spec.out_dir = JoinPath(w->work_dir, "out");
    host_spec = spec;
  }
  if (st.ok()) st = FetchFiles(a, host_spec.job_dir);
  if (!st.ok()) fail_status(st);

  ChunkProgressState progress;
  std::mutex progress_mu;
  std::vector<std::string> pending_lines;
  int64_t last_sent = 0;
  bool sent_any_progress = false;
  auto send_progress = [&](bool force) {
    pb::RenderServerMessage msg;
    {
      std::lock_guard<std::mutex> lock(progress_mu);
      int64_t now = clock_->MonotonicMillis();
      if (!force && now - last_sent < kProgressEveryMs) return;
      last_sent = now;
      sent_any_progress = true;
      auto* p = msg.mutable_progress();
      p->set_job_id(a.job_id());
      p->set_chunk(a.chunk());
      p->set_attempt(a.attempt());
      p->set_frame(progress.current_frame);
      p->set_frames_done(progress.frames_done);
      for (auto& l : pending_lines) p->add_log_lines(std::move(l));
      pending_lines.clear();
    }
    Send(msg);
  };

  if (result.error().empty()) {
    auto commands = adapter_it->second->Commands(spec);
    if (!commands.ok()) fail(-1, commands.status().message());
    const int64_t commands_start_ms = clock_->MonotonicMillis();
    int64_t used_cpu_ms = 0;  // by the chunk's wrapped commands so far
    // Output sub-directories: made once in the plain work directory; in
    // each wrapped command's fresh output area by the wrapper.
    const std::vector<std::string> dirs = OutputSubdirs(spec);
    if (commands.ok() && !wrap) {
      Status made = MakeOutputDirs(w, spec.out_dir, dirs);
      if (!made.ok()) fail_status(made);
    }
    for (size_t i = 0; commands.ok() && i < commands->size() && result.error().empty(); ++i) {
      const ProcessSpec& ps = (*commands)[i];
      std::string cmdline;
      for (const auto& arg : ps.argv) cmdline += (cmdline.empty() ? "" : " ") + arg;
      append_log("frameflow: running " + cmdline.substr(0, 2000) +
                 (wrap ? " (in the I/O wrapper as uid " + std::to_string(w->uid) + ")" : ""));
      std::string summary;
      Result<ProcessSpec> run = ps;
      if (wrap) {
        run = WrapCommand(w, a, ps, spec.out_dir, dirs, static_cast<int>(i),
                          clock_->MonotonicMillis() - commands_start_ms, used_cpu_ms,
                          i == 0 ? &summary : nullptr);
      } else {
        // The renderer never runs as root: a plain chunk runs as the slot's uid.
        if (w->uid != 0 && ::geteuid() == 0) {
          run->uid = run->gid = w->uid;
          run->env.push_back("HOME=/tmp");  // not root's home
        }
      }
      if (!run.ok()) {
        fail_status(run.status());
        break;
      }
      if (i == 0 && wrap) result.set_sandbox(summary);
      auto proc = launcher_->Start(*run, [&](const std::string& line) {
        std::lock_guard<std::mutex> lock(progress_mu);
        adapter_it->second->ObserveLine(line, &progress);
        if (log.size() < kMaxLogBytes) log += line + "\n";
        if (pending_lines.size() < 2000) pending_lines.push_back(line);
      });
      if (!proc.ok()) {
        fail(-1, proc.status().message());
        break;
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        w->process = proc->get();
        if (!w->cancel_reason.empty()) (*proc)->KillTree(0);
      }
      // While the renderer runs, this thread sends progress every
      // kProgressEveryMs and turns a cancel's SIGTERM into SIGKILL after the
      // grace period; a renderer that exits sooner is collected at once.
      int code;
      while (true) {
        int64_t wait_ms = kProgressEveryMs;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (!w->cancel_reason.empty()) {
            const int64_t left = w->cancel_at_ms + kCancelGraceMs - clock_->MonotonicMillis();
            if (left <= 0) {
              (*proc)->KillTree(0);
            } else {
              wait_ms = std::min(wait_ms, left);
            }
          }
        }
        if (auto exited = (*proc)->WaitFor(static_cast<int>(wait_ms))) {
          code = *exited;
          break;
        }
        send_progress(false);
      }
      std::string cancel_reason;
      {
        std::lock_guard<std::mutex> lock(mu_);
        w->process = nullptr;
        cancel_reason = w->cancel_reason;
      }
      // The wrapper's report says which limit, if any, ended the program,
      // and which output files it refused.
      sandbox::WrapReport report;
      if (wrap) {
        const std::string report_path = JoinPath(w->secure_dir, "report.json");
        auto text = ReadFile(report_path);
        auto parsed =
            text.ok() ? sandbox::ReportFromJson(*text) : Result<sandbox::WrapReport>(text.status());
        if (parsed.ok()) {
          report = std::move(*parsed);
          used_cpu_ms += report.cpu_ms;
        } else {
          // The wrapper was killed (cancel, shutdown) before it cleaned up.
          sandbox::RemoveRunCgroup(CgroupParent(), RunName(w, a, static_cast<int>(i)));
        }
        ::unlink(report_path.c_str());
        for (const auto& r : report.collection.refused) {
          append_log("frameflow: refused output '" + sandbox::PrintableName(r.path) +
                     "': " + r.why);
        }
        if (!report.limit.empty()) result.set_limit(report.limit);
        if (!report.collection.collected.empty()) {
          append_log("frameflow: collected " + std::to_string(report.collection.collected.size()) +
                     " file(s) written to " + spec.out_dir + " into the secure location " +
                     host_spec.out_dir);
        }
      }
      if (!cancel_reason.empty()) {
        fail(code, "cancelled: " + cancel_reason);
      } else if (report.limit == "wall_time" && a.sandbox().wall_ms() > 0) {
        // The limit is the chunk's, over all its commands.
        fail(code, "wall-time limit: still running after " +
                       sandbox::FormatSeconds(a.sandbox().wall_ms()) + ", killed");
      } else if (report.limit == "cpu_time" && a.sandbox().cpu_seconds() > 0) {
        fail(code, "CPU-time limit: used " + std::to_string(a.sandbox().cpu_seconds()) +
                       " s of CPU, killed");
      } else if (!report.limit.empty()) {
        fail(code, report.reason);
      } else if (!report.setup_error.empty()) {
        fail(code, "I/O wrapper: " + report.setup_error);
      } else if (code != 0) {
        std::string why = progress.last_error_line.empty() ? "" : ": " + progress.last_error_line;
        fail(code, BaseName(ps.argv[0]) + " exited with code " + std::to_string(code) + why);
      }
    }
  }

  // Every expected frame must exist and be a valid image. A job without an
  // output pattern writes no files: its chunk is done when the commands
  // exited 0.
  const bool collect_outputs = !spec.output_pattern.empty();
  if (result.error().empty() && collect_outputs) {
    auto outputs = adapter_it->second->FindOutputs(host_spec);
    if (!outputs.ok()) fail(-1, outputs.status().message());
    for (int64_t f : spec.frames) {
      if (!result.error().empty()) break;
      auto it = outputs->find(f);
      if (it == outputs->end()) {
        fail(0, "frame " + std::to_string(f) + ": the renderer wrote no output file");
        break;
      }
      struct stat st {};
      if (::lstat(it->second.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
        fail(0, "frame " + std::to_string(f) + ": the output is not a regular file (" +
                    BaseName(it->second) + ")");
        break;
      }
      auto img = CheckImage(it->second);
      if (!img.ok()) {
        fail(0, "frame " + std::to_string(f) + ": " + img.status().message());
        break;
      }
      int64_t size = 0;
      auto sha = Sha256File(it->second, &size);
      if (!sha.ok()) {
        fail(-1, sha.status().message());
        break;
      }
      pb::FrameOutput* o = result.add_outputs();
      o->set_frame(f);
      o->set_sha256(*sha);
      o->set_size(size);
      o->set_name(ExpandOutputPattern(spec.output_pattern, f));
      append_log("frameflow: frame " + std::to_string(f) + " ok (" + img->format + " " +
                 std::to_string(img->width) + "x" + std::to_string(img->height) + ", sha256 " +
                 *sha + ")");
    }
  }
  if (result.error().empty()) result.set_ok(true);

  // Upload frames (only those the site lacks) and the full log.
  auto upload = [&](const std::string& path, const std::string& sha, int64_t size) -> Status {
    return WithScheduleServer([&](pb::ScheduleServer::Stub* stub) -> Status {
      FF_ASSIGN_OR_RETURN(auto missing, MissingBlobs(stub, {sha}));
      if (missing.empty()) return Status::Ok();
      return UploadFileBlob(stub, path, sha, size);
    });
  };
  if (result.ok() && collect_outputs) {
    auto outputs = adapter_it->second->FindOutputs(host_spec);
    if (!outputs.ok()) fail(-1, outputs.status().message());
    for (int i = 0; outputs.ok() && i < result.outputs_size(); ++i) {
      const int64_t frame = result.outputs(i).frame();
      Status up = upload((*outputs)[frame], result.outputs(i).sha256(), result.outputs(i).size());
      if (!up.ok()) {
        result.clear_outputs();
        fail_status(up, "cannot upload frame " + std::to_string(frame) + ": ");
        break;
      }
    }
  }
  // A renderer or the I/O wrapper that failed while one of this host's
  // filesystems is full most likely failed for that (a renderer's message
  // seldom says so): name the full filesystem and let the chunk wait for
  // space instead of burning its attempts.
  if (!result.ok() && !result.disk_full() && result.limit().empty() &&
      result.error().rfind("cancelled: ", 0) != 0) {
    const std::string full = FullFilesystem(
        {config_.cache_dir(), config_.work_dir(), config_.secure_dir()}, result.error());
    if (!full.empty()) {
      result.set_error("render server disk full (" + full + "): " + result.error());
      result.set_disk_full(true);
      append_log("frameflow: " + full + " is full; the chunk is retried once there is space");
    }
  }
  // The live log of a chunk that already reported progress gets its last
  // lines; a chunk shorter than kProgressEveryMs reports only its result.
  if (sent_any_progress) send_progress(true);
  // A short log rides inside the result (no file, no upload RPC); a longer
  // one is uploaded to the file service as a blob.
  if (log.size() <= kInlineLogBytes) {
    result.set_log_text(log);
  } else {
    std::string log_path = JoinPath(wrap ? w->secure_dir : w->work_dir, "chunk.log");
    if (WriteFileAtomic(log_path, log).ok()) {
      int64_t size = 0;
      auto sha = Sha256File(log_path, &size);
      if (sha.ok() && upload(log_path, *sha, size).ok()) result.set_log_sha256(*sha);
    }
  }
  result.set_ended_ms(clock_->UnixMillis());
  if (result.ok()) {
    spdlog::info("{}: done, {} frame(s) in {} ms", name, result.outputs_size(),
                 result.ended_ms() - result.started_ms());
  } else {
    spdlog::warn("{}: failed: {}", name, result.error());
  }
  return result;
}

}  // namespace ff
