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
#include "sandbox/mounts.h"
#include "sandbox/spec.h"
#include "sandbox/wrapper.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

// pid and 64 random bits: unique among the processes that may share a name.
std::string NewInstanceId() {
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(r));
  return std::to_string(::getpid()) + "-" + buf;
}

}  // namespace

RenderServer::RenderServer(RenderServerConfig config, ProcessLauncher* launcher, Clock* clock)
    : config_(std::move(config)), launcher_(launcher), clock_(clock), instance_(NewInstanceId()) {}

RenderServer::~RenderServer() { StopSlots(); }

void RenderServer::StopSlots() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& w : slots_) w->cv.SignalAll();
    stream_cv_.SignalAll();
  }
  for (auto& w : slots_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

Status RenderServer::Init() {
  // Before anything touches the root: a refused duplicate must leave the
  // running render server's work, secure locations and cgroups alone.
  FF_RETURN_IF_ERROR(MakeDirs(config_.root));
  FF_ASSIGN_OR_RETURN(root_lock_, LockRoot(config_.root, "render server"));
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
  if (slots.empty()) slots.push_back(SlotConfig{"s0", std::max(1, hardware_.cores), 0, 0});
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

Status RenderServer::InitSandbox() {
  const SandboxHostConfig& sb = config_.sandbox;
  // Refused here, once and clearly, rather than by every wrapped chunk.
  if (::geteuid() == 0) FF_RETURN_IF_ERROR(sandbox::CheckRootIsMountPoint());
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
  // A home with an (empty) POV-Ray user configuration, readable by every
  // slot uid: POV-Ray warns of a missing one in every log otherwise.
  renderer_home_ = JoinPath(config_.root, "renderer-home");
  const std::string user_conf = JoinPath(renderer_home_, ".povray/3.7/povray.conf");
  FF_RETURN_IF_ERROR(MakeDirs(DirName(user_conf), 0755));
  FF_RETURN_IF_ERROR(WriteFileAtomic(
      user_conf, "; frameflow: an empty POV-Ray user configuration (the site's is in /etc)\n"));
  sandbox_binds_.push_back({renderer_home_, kSandboxRendererHome});
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
  if (const int swept = sandbox::RemoveRunCgroups(CgroupParent()); swept > 0) {
    spdlog::warn(
        "removed {} cgroup(s) a previous life of this render server left (and killed "
        "what still ran in them)",
        swept);
  }
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

}  // namespace ff
