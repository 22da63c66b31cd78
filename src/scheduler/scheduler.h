// Scheduler: the dispatch core of a schedule server.
//
// It keeps the site's dispatch state in memory (jobs ordered by priority then
// submit time, render servers, render slots) and makes every state change
// durable in the resource database before acknowledging it or acting on it:
// a job is committed before Submit() returns its id, an assignment before it
// is sent, a chunk result before the slot gets its next chunk. A schedule
// server killed at any moment resumes from the database (Open()).
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
// mutex guards the state. RenderServerLink::Send is called with that mutex
// held and must not block.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "core/job_profile.h"
#include "core/status.h"
#include "rpc/frameflow.pb.h"
#include "scheduler/notifier.h"
#include "scheduler/site_config.h"
#include "store/resource_db.h"
#include "transfer/blob_store.h"
#include "util/clock.h"

namespace ff {

// The schedule server's end of one render server's stream.
class RenderServerLink {
 public:
  virtual ~RenderServerLink() = default;
  // Queues a message for the render server; never blocks. Messages are
  // delivered in the order of Send() calls.
  virtual void Send(const frameflow::v1::ScheduleServerMessage& msg) = 0;
  // Ends the stream (the render server is considered gone).
  virtual void Close() = 0;
};

class Scheduler {
 public:
  // Opens the site root (creating db/, storage/), migrates the database and
  // resumes every unfinished job from it.
  static Result<std::unique_ptr<Scheduler>> Open(const SiteConfig& config, Clock* clock);
  ~Scheduler();

  // Starts the background timeout checker (heartbeats, reconnect grace).
  void Start();
  void Stop();

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

  // Marks down render servers silent past the heartbeat timeout (or
  // disconnected past the reconnect grace) and requeues their chunks.
  // Called by the background checker; public for tests.
  void CheckTimeouts();

  BlobStore* blobs() { return blobs_.get(); }
  const SiteConfig& config() const { return config_; }

 private:
  struct Chunk {
    ChunkRecord rec;
    std::vector<int64_t> frames;
    int frames_done = 0;  // progress of the running attempt
    int64_t current_frame = -1;
    std::vector<frameflow::v1::FrameOutput> outputs;  // when done
  };
  struct Job {
    JobRecord rec;
    JobProfile profile;
    std::vector<Chunk> chunks;
    std::deque<int> pending;  // queued chunk indices; retries go to the front
    int running = 0;
    int final_chunks = 0;
    bool notified = false;  // notify targets fired for the final state
  };
  struct Slot {
    SlotRecord rec;
    int attempt = 0;
  };
  struct Server {
    RenderServerRecord rec;
    HostRecord hardware;
    std::vector<PackageRecord> packages;
    std::vector<std::string> slot_ids;
    std::shared_ptr<RenderServerLink> link;  // null while disconnected
    int64_t disconnected_ms = 0;             // monotonic, when link became null
    int64_t grace_ms = 0;                    // how long it may stay disconnected
  };
  using RunKey = std::tuple<int, int64_t, int64_t>;  // (-priority, submit, id)

  Scheduler(SiteConfig config, Clock* clock, std::unique_ptr<ResourceDatabase> db,
            std::unique_ptr<BlobStore> blobs);
  Status Resume();

  // REQUIRES: mu_ held. Each commits its batch; a failed commit of a state
  // change the server already acted on is fatal (see CommitOrDie).
  void DispatchLocked();
  void CommitOrDie(const WriteBatch& batch, const char* what);
  void MarkServerDownLocked(Server& s, const std::string& why, WriteBatch& batch);
  void RequeueChunkLocked(Job& job, Chunk& c, WriteBatch& batch, const std::string& why);
  // A running chunk whose render server went away: requeued, or failed once
  // it has lost kMaxServerLosses render servers (a frame that crashes hosts
  // must not take the whole farm down one host at a time).
  void LoseChunkLocked(Job& job, Chunk& c, WriteBatch& batch, const std::string& why);
  static constexpr int kMaxServerLosses = 5;
  void FinishChunkLocked(Job& job, Chunk& c, ChunkState state, WriteBatch& batch);
  void MaybeFinishJobLocked(Job& job, WriteBatch& batch);
  void UpdateRunnableLocked(Job& job);
  void FreeSlotLocked(const std::string& server, int64_t job_id, int chunk);
  // Why `s` cannot run `job` on `slot` (empty when it can).
  std::string CannotRunReason(const Server& s, const Slot* slot, const JobProfile& p) const;
  bool OtherCapableHostUp(const Job& job, const Chunk& c) const;
  std::string WaitingReasonLocked(const Job& job) const;
  frameflow::v1::JobInfo SummaryLocked(const Job& job) const;
  std::string JobDir(int64_t id) const;
  void BumpLocked();
  // Records that `render_server` was heard from. Takes only seen_mu_, so
  // heartbeats are never held up by slow work under mu_ (and a server is
  // not judged silent because the schedule server itself was busy).
  void Touch(const std::string& render_server);
  // Fires the job's notify targets once it is final. REQUIRES: the final
  // state is committed.
  void NotifyIfEndedLocked(Job& job);
  void TimeoutLoop();

  const SiteConfig config_;
  Clock* const clock_;
  std::unique_ptr<ResourceDatabase> db_;
  std::unique_ptr<BlobStore> blobs_;

  std::mutex mu_;
  std::condition_variable changed_cv_;
  uint64_t version_ = 0;                   // GUARDED_BY(mu_)
  int64_t next_job_id_ = 1;                // GUARDED_BY(mu_)
  std::map<int64_t, Job> jobs_;            // GUARDED_BY(mu_)
  std::set<RunKey> runnable_;              // GUARDED_BY(mu_) jobs with pending chunks
  std::map<std::string, Server> servers_;  // GUARDED_BY(mu_)
  std::map<std::string, Slot> slots_;      // GUARDED_BY(mu_)

  std::mutex seen_mu_;  // acquired after mu_ when both are held
  std::map<std::string, std::pair<int64_t, int64_t>> last_seen_;  // GUARDED_BY(seen_mu_)
                                                                  // (monotonic, unix) ms
  Notifier notifier_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread timeout_thread_;
};

}  // namespace ff
