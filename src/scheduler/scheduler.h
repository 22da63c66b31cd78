// Scheduler: the dispatch core of a schedule server.
//
// It keeps the site's dispatch state in memory (jobs ordered by priority then
// submit time, render servers, render slots) and makes every state change
// durable in the resource database before acknowledging it or acting on it:
// a job is committed before Submit() returns its id, an assignment before it
// is sent, a chunk result before the slot gets its next chunk, a cancel
// before Cancel() returns, a final job state before its notify targets fire
// and before watchers hear of it. A schedule server killed at any moment
// resumes from the database (Open()).
//
// Group commit: state changes made under the dispatch mutex are appended to
// a pending group together with the messages that may only leave once they
// are durable. One committer thread writes each group in one transaction
// (one fsync, after one fsync per directory that received frames) and then
// sends its messages, while the dispatch mutex is already free for the next
// results. Under load many results and assignments share one fsync.
//
// Dispatch is push: whenever a slot frees, a job arrives or a render server
// registers, Dispatch() matches idle slots to queued chunks at once and sends
// the assignments down the render servers' links.
//
// Matching: a chunk goes only to a slot whose host has the job's rendering
// package in a version satisfying the job's constraint and whose slot spec
// has at least the job's cores, memory and GPUs. Jobs are served by priority
// (higher first), then submit time, then id. Idle slots are visited
// round-robin across render servers, least-loaded server first, so the
// chunks of one job spread over different render servers. A chunk that
// failed on a host is retried on another capable host where one is up.
//
// Thread-safety: every public method may be called from any thread; one
// mutex (mu_) guards the dispatch state, and clang checks that it is held
// wherever that state is touched (FF_GUARDED_BY / FF_REQUIRES). RenderServerLink::
// Send may be called with mu_ held and must not block.
//
// No database or file I/O under mu_: dispatch must never wait for a disk.
// Reads of the resource database (a job's history, a repeated submit) and
// of storage (logs) happen before mu_ is taken or after it is released;
// writes go through the GroupCommitter, whose thread writes without mu_.
// The views (`jobs`, `show`, `hosts`) are built from memory.
//
// Single writer: a Scheduler assumes it is the only writer of its resource
// database (see resource_db.h): job ids come from MaxJobId() + 1 at start,
// memory is authoritative after Resume(), and rows are written blind.
//
// The implementation is split by responsibility: scheduler.cc (lifecycle,
// submit, dispatch, cancel), render_server_events.cc (registrations,
// results, timeouts), job_views.cc (read side), recovery.cc (Resume),
// scheduler_outsourcing.cc (placement on peers, hot-folder exchange),
// sandbox_policy.cc; the policies it applies are pure functions in
// placement_policy.h, chunk_planner.h and register_check.h, and group
// commit is a class of its own (group_committer.h).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/clock.h"
#include "base/mutex.h"
#include "base/status.h"
#include "base/unique_fd.h"
#include "core/job_profile.h"
#include "rpc/protocol.h"
#include "scheduler/group_committer.h"
#include "scheduler/notifier.h"
#include "scheduler/render_server_link.h"
#include "scheduler/site_config.h"
#include "store/blob_store.h"
#include "store/resource_db.h"
#include "transfer/job_package.h"

namespace ff {

// One peer's answer to "can you render this job, and by when?".
struct PeerQuote {
  std::string peer;
  bool reachable = false;
  std::string error;  // when not reachable
  frameflow::v1::QuoteResponse quote;
};

// What the scheduler needs from the site exchange (scheduler/site_exchange.h)
// to place jobs on peers. Implementations are thread-safe.
class PeerDirectory {
 public:
  virtual ~PeerDirectory() = default;
  // Asks each named peer for a quote, in parallel, bounded by the site's
  // quote_timeout. Called without scheduler locks held.
  virtual std::vector<PeerQuote> Quote(const std::string& profile_toml,
                                       const std::vector<std::string>& peers) = 0;
  // Wakes the exchange: there is hot-folder work (ExchangeTasks) to do.
  virtual void Kick() = 0;
};

// Hot-folder work the site exchange does on behalf of the scheduler; each
// is idempotent, so after a crash it is simply done again.
struct ExchangeTask {
  enum Kind {
    kSendJob,       // write the job package of an outsourced job to hotfolders/out
    kSendCancel,    // write a cancel package for an outsourced job
    kReturnResult,  // a remote job ended: store results, write the result package
  };
  Kind kind = kSendJob;
  JobRecord job;
  std::string description;  // kSendJob: the job description (normalised TOML)
  // kReturnResult: frames and chunk logs to return.
  struct Frame {
    int64_t frame = 0;
    std::string file;  // absolute path on storage
    std::string name;  // file name
    std::string render_server;
    int chunk = 0;
    std::string sha256;
    int64_t size = 0;
  };
  std::vector<Frame> frames;
  std::vector<ChunkRecord> chunks;
};

class Scheduler {
 public:
  // Opens the site root (creating db/, storage/), claims it (LockRoot: a
  // second schedule server on the same root is refused before it opens or
  // touches anything), opens the resource database `config.database_url`
  // names (OpenResourceDatabase), and resumes every unfinished job from it.
  static Result<std::unique_ptr<Scheduler>> Open(const SiteConfig& config, Clock* clock);
  // The same on an open, migrated database `db` (any backend); claims the
  // root itself unless `root_lock` already holds it.
  static Result<std::unique_ptr<Scheduler>> Create(const SiteConfig& config, Clock* clock,
                                                   std::unique_ptr<ResourceDatabase> db,
                                                   UniqueFd root_lock = UniqueFd());
  ~Scheduler();

  // Why job `job_id` may wait though it was accepted (one sentence each):
  // a local job whose package no render server known to the site has.
  std::vector<std::string> SubmitWarnings(int64_t job_id) FF_EXCLUDES(mu_);

  // Starts the background timeout checker (heartbeats, reconnect grace).
  void Start();
  // Stops the timeout checker and the committer, after writing (and
  // sending) everything pending.
  void Stop();
  // Returns once every state change made before the call is durable and its
  // messages are handed to their links.
  void Flush();

  // ---- client API -------------------------------------------------------
  Result<int64_t> Submit(const frameflow::v1::SubmitRequest& request);
  Result<frameflow::v1::JobInfo> GetJob(int64_t job_id, bool detail);
  std::vector<frameflow::v1::JobInfo> ListJobs(bool include_finished);
  Result<frameflow::v1::JobInfo> Cancel(int64_t job_id);
  Result<frameflow::v1::LogsResponse> GetLogs(int64_t job_id, int64_t frame);
  Result<frameflow::v1::OutputsResponse> ListOutputs(int64_t job_id);
  frameflow::v1::ListHostsResponse ListHosts();

  // Change counter for watchers: returns the current value once it differs
  // from `seen` or `timeout_ms` passed.
  uint64_t WaitForChange(uint64_t seen, int64_t timeout_ms);

  // ---- render server link ----------------------------------------------
  Status Register(const frameflow::v1::Register& reg, std::shared_ptr<RenderServerLink> link);
  void OnHeartbeat(const std::string& render_server);
  void OnProgress(const std::string& render_server, const frameflow::v1::ChunkProgress& p);
  void OnResult(const std::string& render_server, const frameflow::v1::ChunkResult& r);
  // The stream of `link` ended. Ignored if the server has a newer link.
  void OnDisconnect(const std::string& render_server, const RenderServerLink* link);
  // The render server is stopping: no more chunks go to it, and the chunks
  // it hands back are queued again at once, not counted as lost. Once its
  // stream closes it is down at once (no reconnect window).
  void OnDrain(const std::string& render_server, const frameflow::v1::Drain& d);

  // Marks down render servers silent past the heartbeat timeout (or
  // disconnected past the reconnect grace) and requeues their chunks.
  // Called by the background checker; public for tests.
  void CheckTimeouts();

  // ---- outsourcing (docs/outsourcing.md) -------------------------------
  // Connects the site exchange. Call before Start(); `peers` outlives this.
  void SetPeerDirectory(PeerDirectory* peers);

  // Work for the exchange: jobs whose hot-folder step is due and not handed
  // out yet. A task stays handed out until its Mark* call (or a restart).
  std::vector<ExchangeTask> TakeExchangeTasks();
  // The exchange gave up on a task for now (it will be handed out again).
  void ReleaseExchangeTask(int64_t job_id);
  // kSendJob done: the package is in hotfolders/out.
  Status MarkJobPackaged(int64_t job_id, const std::string& package);
  // kSendCancel done.
  Status MarkCancelSent(int64_t job_id);
  // kReturnResult done: the result package is in hotfolders/out; the job
  // leaves the active queue.
  Status MarkResultReturned(int64_t job_id, const std::string& package);

  // Courier events at the origin: the peer holds the job package / refused it.
  void OnJobDelivered(int64_t job_id, const std::string& peer);
  void OnJobRejected(int64_t job_id, const std::string& peer, const std::string& reason);
  // Progress of an outsourced job, polled from its peer.
  void OnRemoteStatus(int64_t job_id, const frameflow::v1::RemoteJobStatus& status);
  // Outsourced jobs whose progress should be polled, by peer.
  std::map<std::string, std::vector<int64_t>> PollableOutsourcedJobs();

  // Ingest at the remote site: a verified job package from `manifest.from_site`
  // becomes a job in the active queue, its files in the secure location
  // secure/<client>/<job>/. Idempotent (by origin site and job id).
  Result<int64_t> AcceptRemoteJob(const JobPackageManifest& m, const std::string& package_dir);
  // Ingest at the origin: a verified result package of an outsourced job.
  Status CompleteOutsourcedJob(const JobPackageManifest& m, const std::string& package_dir);
  // A cancel package from the origin of a remote job.
  Status CancelFromOrigin(const JobPackageManifest& m);
  // A rejection package: the peer quarantined our job package.
  Status RejectedByPeer(const JobPackageManifest& m);
  // Whether a job package from origin `site` for its job `origin_job_id` was
  // already accepted.
  bool HasRemoteJob(const std::string& site, int64_t origin_job_id);

  // The SiteLink answers of this site.
  frameflow::v1::QuoteResponse Quote(const std::string& profile_toml);
  frameflow::v1::RemoteJobsResponse RemoteJobs(const std::string& peer,
                                               const frameflow::v1::RemoteJobsRequest& req);

  // Secure location of a job: secure/<client>/<job id>/ (0700).
  std::string SecureDir(const std::string& client, int64_t job_id) const;

  BlobStore* blobs() { return blobs_.get(); }
  const SiteConfig& config() const { return config_; }

 private:
  struct Chunk {
    ChunkRecord rec;
    std::vector<int64_t> frames;
    int frames_done = 0;  // progress of the running attempt
    int64_t current_frame = -1;
    std::vector<frameflow::v1::FrameOutput> outputs;  // when done
    // Attempts handed back by a draining render server: neither lost nor
    // failed (in memory only; a restart forgets them, erring towards giving up).
    int returned = 0;
    // Attempts that stopped on a full filesystem (not the chunk's failure,
    // not a lost server) and when the chunk may be dispatched again
    // (monotonic ms). In memory only: a restart forgets the backoff.
    int disk_full_retries = 0;
    int64_t not_before_ms = 0;
  };
  struct Server;
  struct Job {
    JobRecord rec;
    JobProfile profile;
    std::vector<Chunk> chunks;
    std::deque<int> pending;  // queued chunk indices; retries go to the front
    int running = 0;
    int final_chunks = 0;
    bool notified = false;  // notify targets handed to the notifier
    // Outsourced jobs: the last progress polled from the peer.
    frameflow::v1::RemoteJobStatus remote;
    bool task_out = false;  // an ExchangeTask for it is with the exchange
    // Frame counts by chunk state, kept current by SetChunkStateLocked so a
    // summary costs O(1) however many frames the job has.
    int64_t frames_running = 0;   // frames of running chunks
    int64_t frames_progress = 0;  // of those, reported rendered so far
    int64_t frames_done = 0;
    int64_t frames_failed = 0;
    // Whether a render server's packages can render this job, cached per
    // server registration (Server::generation).
    std::map<const Server*, std::pair<uint64_t, bool>> package_ok;
    // Scene errors (ChunkResult.scene_error) by error text: the hosts and
    // chunks that reported each. The same one from two hosts, or from two
    // chunks, fails the job at once (SceneErrorFailsJob).
    struct SceneErrorSeen {
      std::set<std::string> hosts;
      std::set<int> chunks;
    };
    std::map<std::string, SceneErrorSeen> scene_errors;
  };
  struct Slot {
    SlotRecord rec;
    int attempt = 0;
    Server* server = nullptr;
  };
  struct Server {
    RenderServerRecord rec;
    HostRecord hardware;
    std::vector<PackageRecord> packages;
    std::vector<std::string> slot_ids;
    std::vector<Slot*> slots;                // the same slots, in slots_
    uint64_t generation = 0;                 // changes at every registration
    std::string instance;                    // the process that registered last
    std::shared_ptr<RenderServerLink> link;  // null while disconnected
    int64_t disconnected_ms = 0;             // monotonic, when link became null
    int64_t grace_ms = 0;                    // how long it may stay disconnected
  };
  // (-priority, deadline (max when none), submit time, id): the active queue
  // order — priority, then the description's deadline, then arrival.
  using RunKey = std::tuple<int, int64_t, int64_t, int64_t>;
  static RunKey RunKeyOf(const Job& job);

  Scheduler(SiteConfig config, Clock* clock, std::unique_ptr<ResourceDatabase> db,
            std::unique_ptr<BlobStore> blobs);
  static Status MakeSiteDirs(const SiteConfig& config);
  // Loads the durable state (recovery.cc). Called once, before the committer
  // starts.
  Status Resume() FF_EXCLUDES(mu_);

  // ---- group commit (group_committer.h) ----
  // Appends a state change to the pending group; returns its sequence number.
  uint64_t AppendLocked(WriteBatch&& batch) FF_REQUIRES(mu_);
  // Queues a message that may leave only after everything appended so far
  // is durable.
  void SendWhenDurableLocked(const std::shared_ptr<RenderServerLink>& link,
                             frameflow::v1::ScheduleServerMessage msg) FF_REQUIRES(mu_);
  // Waits, with mu_ released, until everything appended so far is durable;
  // mu_ is held again when it returns (state may have changed meanwhile).
  void WaitDurableLocked() FF_REQUIRES(mu_);
  // The committer made a group durable: announce the jobs it ended, wake
  // watchers.
  void OnGroupDurable(const std::vector<int64_t>& ended_jobs) FF_EXCLUDES(mu_);

  // ---- dispatch (scheduler.cc) ----
  void DispatchLocked() FF_REQUIRES(mu_);
  // Keeps `s`'s membership of idle_servers_ in step with its slots.
  void RefreshIdleLocked(Server& s) FF_REQUIRES(mu_);
  void SetSlotStateLocked(Slot& slot, SlotState state, int64_t job = 0, int chunk = -1)
      FF_REQUIRES(mu_);
  // Moves `c` to `state`, keeping the job's frame counters.
  void SetChunkStateLocked(Job& job, Chunk& c, ChunkState state) FF_REQUIRES(mu_);
  bool CanRunLocked(const Server& s, const Slot& slot, Job& job) const FF_REQUIRES(mu_);
  // Why `s` cannot run `job` on `slot` (any of its slots when null; empty
  // when it can).
  std::string CannotRunReason(const Server& s, const Slot* slot, const JobProfile& p) const
      FF_REQUIRES(mu_);
  bool OtherCapableHostUp(const Job& job, const Chunk& c) const FF_REQUIRES(mu_);
  void UpdateRunnableLocked(Job& job) FF_REQUIRES(mu_);
  Result<frameflow::v1::JobInfo> CancelJob(int64_t job_id, const std::string& why) FF_EXCLUDES(mu_);
  // Ends an unfinished job now as `state` (cancelled, or failed) with `why`:
  // queued chunks are cancelled, running ones are told to stop (the
  // messages are returned: send each once `batch` is durable), an
  // outsourced job's peer is told. Frames already rendered are kept.
  std::vector<std::pair<std::shared_ptr<RenderServerLink>, frameflow::v1::ScheduleServerMessage>>
  EndJobLocked(Job& job, JobState state, const std::string& why, WriteBatch& batch)
      FF_REQUIRES(mu_);
  // Builds a job (chunks, frames) from a profile; shared by Submit and
  // AcceptRemoteJob.
  Result<int64_t> CreateJob(JobProfile profile, std::vector<JobFile> files,
                            const std::string& meta_key, JobRecord rec_template,
                            const std::vector<std::string>& notes, bool runnable) FF_EXCLUDES(mu_);
  std::string JobDir(int64_t id) const;
  void BumpLocked() FF_REQUIRES(mu_);
  // Fires the job's notify targets once it is final. REQUIRES: the final
  // state is committed.
  void NotifyIfEndedLocked(Job& job) FF_REQUIRES(mu_);
  void TimeoutLoop() FF_EXCLUDES(mu_);

  // ---- render server events (render_server_events.cc) ----
  void MarkServerDownLocked(Server& s, const std::string& why, WriteBatch& batch) FF_REQUIRES(mu_);
  void RequeueChunkLocked(Job& job, Chunk& c, WriteBatch& batch, const std::string& why)
      FF_REQUIRES(mu_);
  // A running chunk whose render server went away: requeued, or failed once
  // it has lost kMaxServerLosses render servers (a frame that crashes hosts
  // must not take the whole farm down one host at a time).
  void LoseChunkLocked(Job& job, Chunk& c, WriteBatch& batch, const std::string& why)
      FF_REQUIRES(mu_);
  static constexpr int kMaxServerLosses = 5;
  // Backoff of a chunk that stopped on a full disk: 250 ms doubling to 5 s.
  static constexpr int64_t kDiskFullMinBackoffMs = 250;
  static constexpr int64_t kDiskFullMaxBackoffMs = 5000;
  void FinishChunkLocked(Job& job, Chunk& c, ChunkState state, WriteBatch& batch) FF_REQUIRES(mu_);
  void MaybeFinishJobLocked(Job& job, WriteBatch& batch) FF_REQUIRES(mu_);
  // The job just became final: leaves its queue (remote jobs: once their
  // results are returned), history row, notification once durable.
  void JobEndedLocked(Job& job, WriteBatch& batch) FF_REQUIRES(mu_);
  void FreeSlotLocked(const std::string& server, int64_t job_id, int chunk) FF_REQUIRES(mu_);
  // Records that `render_server` was heard from. Takes only seen_mu_, so
  // heartbeats are never held up by slow work under mu_ (and a server is
  // not judged silent because the schedule server itself was busy).
  void Touch(const std::string& render_server) FF_EXCLUDES(seen_mu_);
  // Adds a queue-history row for the job's current queue and state.
  void RecordEventLocked(const Job& job, const std::string& note, WriteBatch& batch)
      FF_REQUIRES(mu_);
  // Records the current attempt's result (its files already placed), frees
  // the slot and dispatches. `log_rel` is empty when no log was stored.
  // `disk_full`: the attempt stopped on a full filesystem; the chunk is
  // requeued after a backoff and the attempt does not count as failed.
  // Records a scene error of chunk `c` on `host`; true once the same error
  // came from two hosts or two chunks of the job (fail it now).
  bool SceneErrorFailsJob(Job& job, const Chunk& c, const std::string& host,
                          const std::string& error) FF_REQUIRES(mu_);
  // The frame rows of `placed` (done, with their output), for `batch`.
  void RecordFinishedFramesLocked(const std::string& render_server, const Job& job, const Chunk& c,
                                  const std::vector<frameflow::v1::FrameOutput>& placed,
                                  WriteBatch& batch) FF_REQUIRES(mu_);
  void RecordResultLocked(const std::string& render_server, const frameflow::v1::ChunkResult& r,
                          Job& job, Chunk& c, std::string error,
                          const std::vector<frameflow::v1::FrameOutput>& placed,
                          const std::string& log_rel, bool disk_full) FF_REQUIRES(mu_);
  // Storage-relative path of a chunk attempt's log.
  static std::string ChunkLogRel(int64_t job, int chunk, int attempt);

  // ---- views (job_views.cc) ----
  std::string WaitingReasonLocked(const Job& job) const FF_REQUIRES(mu_);
  // Why no connected render server can render `p` ("" when one can); the
  // number of capable servers goes to `capable_servers`.
  std::string NoCapableReasonLocked(const JobProfile& p, int* capable_servers) const
      FF_REQUIRES(mu_);
  frameflow::v1::JobInfo SummaryLocked(const Job& job) const FF_REQUIRES(mu_);
  // The chunks and frames of `job`, for GetJob(detail).
  void FillChunksLocked(const Job& job, frameflow::v1::JobInfo* info) const FF_REQUIRES(mu_);
  // Position (1-based) of an unfinished job in its queue, 0 if not queued.
  int QueuePositionLocked(const Job& job) const FF_REQUIRES(mu_);

  // ---- I/O wrapper policy (sandbox_policy.cc) ----
  // The I/O wrapper policy of the job's chunks (site config + job).
  void FillSandboxPolicyLocked(const Job& job, frameflow::v1::SandboxPolicy* policy) const
      FF_REQUIRES(mu_);
  // The policy in words, for `show`.
  std::string SandboxTextLocked(const Job& job) const FF_REQUIRES(mu_);

  // ---- placement on peers (scheduler_outsourcing.cc) ----
  // Placement of a new job: where it goes and why. Called without mu_.
  struct PlacementDecision {
    std::string peer;  // empty: render locally
    std::string reason;
  };
  Result<PlacementDecision> DecidePlacement(const JobProfile& profile,
                                            const std::string& profile_toml,
                                            const std::string& source) FF_EXCLUDES(mu_);
  // Local capacity for `p`: slots up that can run it, and an estimate (unix
  // ms) of when it would finish if queued now; finish 0 when no slot can.
  std::pair<int, int64_t> EstimateLocked(const JobProfile& p) const FF_REQUIRES(mu_);
  // Render slots up now (server up and connected, package and version
  // matching, slot meeting the requirements) that could run `p`.
  int CapableSlotsLocked(const JobProfile& p) const FF_REQUIRES(mu_);
  // Measured seconds per frame of a package on this site (or a default).
  double FrameSecondsLocked(const std::string& package) const FF_REQUIRES(mu_);

  const SiteConfig config_;
  Clock* const clock_;
  UniqueFd root_lock_;  // LockRoot(config_.root): this process owns the root
  std::unique_ptr<ResourceDatabase> db_;
  std::unique_ptr<BlobStore> blobs_;

  mutable Mutex mu_;
  CondVar changed_cv_;
  uint64_t version_ FF_GUARDED_BY(mu_) = 0;
  int64_t next_job_id_ FF_GUARDED_BY(mu_) = 1;
  std::map<int64_t, Job> jobs_ FF_GUARDED_BY(mu_);
  std::set<RunKey> runnable_ FF_GUARDED_BY(mu_);  // jobs with pending chunks
  std::map<std::string, Server> servers_ FF_GUARDED_BY(mu_);
  std::map<std::string, Slot> slots_ FF_GUARDED_BY(mu_);
  // Up, connected render servers with at least one idle slot.
  std::set<std::string> idle_servers_ FF_GUARDED_BY(mu_);
  uint64_t next_generation_ FF_GUARDED_BY(mu_) = 1;
  // Queued chunks waiting out a disk-full backoff.
  int deferred_chunks_ FF_GUARDED_BY(mu_) = 0;
  // Submit request ids being recorded, and those recorded by this process
  // (request id -> job id; earlier ones are in the database).
  std::set<std::string> submitting_ FF_GUARDED_BY(mu_);
  std::map<std::string, int64_t> submitted_ FF_GUARDED_BY(mu_);
  PeerDirectory* peers_ = nullptr;  // set before Start(), then read-only
  // Remote jobs by (origin site, origin job id).
  std::map<std::pair<std::string, int64_t>, int64_t> remote_index_ FF_GUARDED_BY(mu_);
  // Jobs with a hot-folder step due (ExchangeTask).
  std::set<int64_t> exchange_due_ FF_GUARDED_BY(mu_);
  // Measured seconds per frame by package: (sum, count) of recent chunks.
  std::map<std::string, std::pair<double, int64_t>> frame_seconds_ FF_GUARDED_BY(mu_);

  // Liveness; acquired after mu_ when both are held.
  Mutex seen_mu_ FF_ACQUIRED_AFTER(mu_);
  // (monotonic, unix) ms of the last message of each render server.
  std::map<std::string, std::pair<int64_t, int64_t>> last_seen_ FF_GUARDED_BY(seen_mu_);
  Notifier notifier_;

  Mutex stop_mu_;
  CondVar stop_cv_;
  bool stopping_ FF_GUARDED_BY(stop_mu_) = false;
  std::thread timeout_thread_;

  // Declared last: its thread calls back into the members above, so it is
  // stopped (by Stop() or its destructor) before they are destroyed.
  GroupCommitter committer_;
};

}  // namespace ff
