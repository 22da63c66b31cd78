// RenderServer: the per-host daemon. It probes its host, creates render
// slots from its config, keeps one long-lived stream to its schedule server
// (register, heartbeats, progress and results up; assignments and cancels
// down), and renders each assigned chunk in its slot through the package's
// adapter.
//
// Per chunk: job files are fetched by SHA-256 into the host cache (verified),
// laid out in the slot's emptied work directory, the renderer runs in its own process
// group, every expected frame is checked to be a valid image, then frames and
// the log are uploaded to the site's file service and the result is reported.
// A job without an output pattern (command-template packages) collects and
// uploads no files: its chunk is done when the commands exit 0.
//
// A lost stream does not stop rendering: the server reconnects with backoff,
// re-registers listing the chunks it still runs (and results it may not have
// delivered), and reports them on the new stream.
//
// Thread-safety: Run() drives everything; RequestStop() may be called from
// any thread (or a signal handler via the stop flag).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "core/host_record.h"
#include "render/assignment.h"
#include "render/package_adapter.h"
#include "render/render_config.h"
#include "rpc/services.h"
#include "sandbox/spec.h"
#include "store/blob_store.h"
#include "util/process.h"

namespace ff {

class RenderServer {
 public:
  RenderServer(RenderServerConfig config, ProcessLauncher* launcher, Clock* clock);
  ~RenderServer();

  // Probes hardware and packages, prepares root/cache and root/work.
  Status Init();
  // Connects and serves until `stop` becomes true, or until it has drained
  // after `drain` (optional) became true: no new chunks (waiting ones and any
  // later assignment are handed back), running ones finish and their results
  // reach the schedule server — for at most drain_timeout. Then the chunks
  // still held are handed back (when connected), their process trees are
  // killed, and it returns. Both flags may be set from a signal handler.
  Status Run(const std::atomic<bool>* stop, const std::atomic<bool>* drain = nullptr);

 private:
  friend class ChunkRun;  // chunk_runner.cc: one chunk attempt, stage by stage
  struct SlotWorker {
    SlotConfig config;
    std::string id;
    std::thread thread;
    CondVar cv;  // work for this slot, or stopping_; waits on mu_
    // Assignments not started yet, in arrival order: normally at most one,
    // after a schedule server lost track of the slot (restart) or when it
    // sends the next chunk before the current one ends.
    std::deque<frameflow::v1::Assignment> next;        // GUARDED_BY(mu_)
    std::optional<frameflow::v1::Assignment> current;  // GUARDED_BY(mu_)
    RunningProcess* process = nullptr;                 // GUARDED_BY(mu_)
    std::string cancel_reason;                         // GUARDED_BY(mu_)
    int64_t cancel_at_ms = 0;                          // GUARDED_BY(mu_)
    // The slot's work directory (job/ and out/ inside), reused from chunk to
    // chunk and emptied after each: creating and removing directories per
    // chunk costs more than a 1 ms renderer. A new one is taken when
    // emptying fails. Used by the slot's thread only.
    std::string work_dir;
    bool work_ready = false;  // job/ and out/ exist and are empty
    int work_generation = 0;
    // The slot's unprivileged uid/gid inside the I/O wrapper, and the secure
    // location of its current wrapped chunk (removed after the result).
    uint32_t uid = 0;
    std::string secure_dir;
  };

  void SlotLoop(SlotWorker* w);
  // Renders one chunk in the slot's work directory; the caller empties it.
  frameflow::v1::ChunkResult RenderChunk(SlotWorker* w, const frameflow::v1::Assignment& a);
  // Makes the slot's work directory hold empty job/ and out/ directories.
  Status PrepareWorkDir(SlotWorker* w);
  // Empties the slot's work directory after a chunk (off the path between a
  // result and the next chunk), and removes a wrapped chunk's secure location.
  void CleanWorkDir(SlotWorker* w);
  // Finds the wrapper, claims the slots' uids, sweeps cgroups of a previous
  // life and secure locations it left behind.
  Status InitSandbox();
  // Where this server's per-run cgroups live: <cgroup_parent>/<name>-<uid base>.
  std::string CgroupParent() const;
  // The wrapper's run name (its cgroup's) for command `index` of a chunk.
  static std::string RunName(const SlotWorker* w, const frameflow::v1::Assignment& a, int index);
  // Creates the chunk's secure location secure/<client>/<job>/<slot>/
  // (0700 at every level; the last owned by the slot's uid) with an empty
  // input/ for the job's files.
  Status PrepareSecureDir(SlotWorker* w, const frameflow::v1::Assignment& a);
  // The command that runs `ps` inside the I/O wrapper for slot `w`, with
  // the output sub-directories `dirs` made in its output area. Fails when
  // the wrapper would refuse the arguments (e.g. a central path inside a
  // system path). The wall- and CPU-time limits are the chunk's: `used_ms`
  // and `used_cpu_ms` of them went to its earlier commands.
  Result<ProcessSpec> WrapCommand(SlotWorker* w, const frameflow::v1::Assignment& a,
                                  const ProcessSpec& ps, const std::string& out_dir,
                                  const std::vector<std::string>& dirs, int index, int64_t used_ms,
                                  int64_t used_cpu_ms, std::string* summary);
  // Makes `dirs` under the plain work directory's out/, owned by the slot's uid.
  Status MakeOutputDirs(SlotWorker* w, const std::string& out_dir,
                        const std::vector<std::string>& dirs);
  // Runs `call` with the current stub, retrying while the schedule server is
  // unreachable (restarting) for up to a couple of minutes.
  Status WithScheduleServer(
      const std::function<Status(frameflow::v1::ScheduleServer::Stub*)>& call);
  Status FetchFiles(const frameflow::v1::Assignment& a, const std::string& job_dir);
  // Stops every slot thread (after its current chunk) and joins them.
  void StopSlots();
  void HandleAssignment(const frameflow::v1::Assignment& a);
  // Starts draining: hands back the chunks waiting in slots (and from now on
  // every assignment that arrives).
  void BeginDrain();
  // Hands back every chunk held (running or waiting) before a stop.
  void HandBackAll(const std::string& reason);
  // Waits until no chunk runs or waits and every result was sent on a live
  // stream, or until drain_timeout; false on timeout or `stop`.
  bool WaitDrained(const std::atomic<bool>* stop);
  void HandleCancel(const frameflow::v1::CancelChunk& c);
  // Sends on the current stream; false when there is none or it broke.
  bool Send(const frameflow::v1::RenderServerMessage& msg);
  void DeliverResult(const frameflow::v1::ChunkResult& r);
  std::string ResolveAddress();
  frameflow::v1::Register MakeRegister();

  RenderServerConfig config_;
  ProcessLauncher* launcher_;
  Clock* clock_;
  // Sent in every registration: the schedule server tells a reconnect of this
  // process (same instance) from another process using the same name.
  const std::string instance_;
  HostRecord hardware_;
  std::vector<PackageRecord> packages_;
  std::map<std::string, std::unique_ptr<PackageAdapter>> adapters_;
  std::unique_ptr<BlobStore> cache_;
  UniqueFd root_lock_;  // LockRoot(config_.root), taken first thing in Init

  // The I/O wrapper: its path, the read-only system paths present on this
  // host, the first slot uid, and the lock that holds the uid block.
  std::string wrapper_;
  std::vector<std::string> system_paths_;
  std::vector<std::pair<std::string, std::string>> sandbox_binds_;  // host file -> sandbox path
  // <root>/renderer-home: HOME for renderers with per-user configuration
  // (ChunkSpec::renderer_home); bound read-only at kSandboxRendererHome.
  std::string renderer_home_;
  static constexpr const char* kSandboxRendererHome = "/etc/frameflow-home";
  int64_t uid_base_ = 0;
  int uid_lock_fd_ = -1;
  std::string plain_blocked_;  // why plain chunks cannot run here, if so
  std::mutex secure_mu_;       // creating and removing secure location directories

  Mutex mu_;
  bool stopping_ FF_GUARDED_BY(mu_) = false;
  bool draining_ FF_GUARDED_BY(mu_) = false;
  // A result could not be sent (no stream); cleared when all were re-sent.
  bool undelivered_ FF_GUARDED_BY(mu_) = false;
  std::atomic<bool> drained_{false};  // drain over: Run returns
  // A new stream registered, or stopping_; waits on mu_ (file transfers
  // waiting for the schedule server in WithScheduleServer).
  CondVar stream_cv_;
  std::vector<std::unique_ptr<SlotWorker>> slots_;
  // Results not known to have reached the schedule server.
  std::deque<std::pair<int64_t, frameflow::v1::ChunkResult>> unconfirmed_ FF_GUARDED_BY(mu_);

  Mutex stream_mu_ FF_ACQUIRED_AFTER(mu_);  // serialises writes on the stream
  grpc::ClientReaderWriter<frameflow::v1::RenderServerMessage,
                           frameflow::v1::ScheduleServerMessage>* stream_ = nullptr;
  std::shared_ptr<frameflow::v1::ScheduleServer::Stub> stub_ FF_GUARDED_BY(stream_mu_);
};

}  // namespace ff
