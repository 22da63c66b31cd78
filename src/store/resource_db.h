// The resource database: the durable record of one site's hosts, render
// servers, render slots, installed packages, jobs, chunks and frames.
//
// The schedule server keeps its dispatch state in memory and makes every
// change durable here through WriteBatch: a batch commits atomically (one
// transaction) and Commit() returns only once the change is durable, so a
// caller may acknowledge a state change as soon as Commit() returns ok.
//
// ResourceDatabase is an interface so that a PostgreSQL implementation can
// replace the embedded SQLite one (OpenSqliteResourceDatabase) without
// touching the scheduler; every backend passes the conformance suite in
// resource_db_conformance_test.cc. Implementations must be safe to call from
// several threads (they serialise internally).
//
// Single writer. The schedule server that opened a database is its only
// writer, and the scheduler relies on it:
//   - job ids are assigned in memory from MaxJobId() + 1 read at start;
//   - after Scheduler::Resume() memory is authoritative: the database is
//     written, never read back to decide anything;
//   - writes are blind upserts of whole rows (the last writer wins), with
//     no compare-and-set.
// A backend shared by several schedule servers (PostgreSQL with standbys)
// must therefore fence writers so that only one is active at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "core/host_record.h"
#include "core/job_states.h"

namespace ff {

// Wall-clock milliseconds since the Unix epoch.
using UnixMillis = int64_t;

enum class ServerStatus { kUp, kDown, kDraining };
const char* ServerStatusName(ServerStatus s);

struct RenderServerRecord {
  std::string name;  // unique within the site
  std::string host;
  ServerStatus status = ServerStatus::kUp;
  UnixMillis registered_at = 0;
  UnixMillis last_heartbeat = 0;
};

enum class SlotState { kIdle, kBusy, kDown };
const char* SlotStateName(SlotState s);

struct SlotRecord {
  std::string id;  // "<render server>/<slot name>"
  std::string render_server;
  int cores = 1;
  int64_t memory_bytes = 0;
  int gpus = 0;
  // In memory: what the slot runs. In the database only `down` or `idle`:
  // what runs where is durable in the chunk rows (state, slot, attempt), so a
  // dispatch writes one row, and a stale "busy" can never outlive its chunk.
  SlotState state = SlotState::kIdle;
  int64_t current_job = 0;  // 0 when idle
  int current_chunk = -1;   // chunk index within current_job, -1 when idle
};

enum class JobState { kQueued, kRunning, kDone, kFailed, kCancelled };
const char* JobStateName(JobState s);
// The state a JobStateName() names; nullopt for any other text.
std::optional<JobState> ParseJobState(std::string_view name);
bool JobStateFinal(JobState s);

struct JobFile {
  std::string path;    // relative path inside the job
  std::string sha256;  // lower-case hex
  int64_t size = 0;
};

struct JobRecord {
  int64_t id = 0;  // > 0, assigned by the schedule server
  std::string name;
  JobState state = JobState::kQueued;
  JobQueue queue = JobQueue::kActive;
  int priority = 50;
  UnixMillis submit_time = 0;
  UnixMillis finish_time = 0;
  std::string profile_toml;  // normalised description (ProfileToToml)
  std::vector<JobFile> files;
  std::string error;  // why it failed / was cancelled

  // Outsourcing (docs/outsourcing.md). A job is either local, outsourced
  // by this site (remote_site set) or a remote job accepted from a peer
  // (origin_site set).
  std::string client;         // who owns the job; for remote jobs the origin site
  std::string placement;      // why it renders where it does, for `show`
  std::string origin_site;    // remote job: the peer that sent it
  int64_t origin_job_id = 0;  // remote job: its id at the origin site
  std::string remote_site;    // outsourced job: the peer rendering it
  int64_t remote_job_id = 0;  // outsourced job: its id at that peer, once known
  // Where the job stands in the hot-folder exchange; kNone for local jobs.
  ExchangeState exchange = ExchangeState::kNone;
  bool notified = false;  // notify targets fired for the final state
};

// One step of a job through the queues (new -> active | outsourced -> ...),
// kept for `show` and audits.
struct JobEventRecord {
  int64_t job_id = 0;
  UnixMillis time = 0;
  JobQueue queue = JobQueue::kNone;  // queue after the step
  std::string state;                 // job state after the step
  std::string note;  // what happened, e.g. "outsourced to render-co: no local render server..."
};

enum class ChunkState { kQueued, kRunning, kDone, kFailed, kCancelled };
const char* ChunkStateName(ChunkState s);

struct ChunkRecord {
  int64_t job_id = 0;
  int index = 0;       // 0-based, order of frames
  std::string frames;  // FrameSet text of this chunk
  ChunkState state = ChunkState::kQueued;
  int attempts = 0;  // assignments so far (a running chunk counts its current one)
  std::string slot;  // last slot it ran on
  std::string render_server;
  UnixMillis started_at = 0;
  UnixMillis ended_at = 0;
  int exit_code = 0;
  std::string log_path;  // relative to the site storage root
  std::string error;
  std::vector<std::string> failed_hosts;  // hosts where an attempt failed
};

enum class FrameState { kQueued, kRunning, kDone, kFailed, kCancelled };
const char* FrameStateName(FrameState s);

struct FrameRecord {
  int64_t job_id = 0;
  int64_t frame = 0;
  int chunk = 0;
  FrameState state = FrameState::kQueued;
  std::string render_server;
  std::string output_path;  // relative to the site storage root
  std::string sha256;
  int64_t size = 0;
};

// A set of changes applied atomically by ResourceDatabase::Commit().
// Later operations in a batch win over earlier ones on the same row.
struct WriteBatch {
  struct SlotsOf {
    std::string render_server;
    std::vector<SlotRecord> slots;  // replaces all slots of the server
  };
  struct PackagesOf {
    std::string host;
    std::vector<PackageRecord> packages;  // replaces all packages of the host
  };
  struct NewJob {
    JobRecord job;
    std::vector<ChunkRecord> chunks;
    std::vector<FrameRecord> frames;
  };

  std::vector<HostRecord> hosts;
  std::vector<PackagesOf> packages;
  std::vector<RenderServerRecord> render_servers;
  std::vector<SlotsOf> slot_sets;
  std::vector<SlotRecord> slot_updates;  // update state/current of existing slots
  std::vector<NewJob> new_jobs;
  std::vector<JobRecord> job_updates;  // state, queue, finish_time, error
  std::vector<ChunkRecord> chunk_updates;
  std::vector<FrameRecord> frame_updates;
  std::vector<JobEventRecord> job_events;                 // appended
  std::vector<std::pair<std::string, std::string>> meta;  // key/value settings

  bool empty() const;
  void Append(WriteBatch&& other);
};

class ResourceDatabase {
 public:
  virtual ~ResourceDatabase() = default;

  // Applies the batch in one transaction; durable when it returns ok.
  virtual Status Commit(const WriteBatch& batch) = 0;
  // Applies the batches in order in one transaction (one fsync for all of
  // them: group commit); durable when it returns ok, nothing applied when it
  // fails.
  virtual Status CommitGroup(const std::vector<WriteBatch>& batches) = 0;

  virtual Result<std::vector<HostRecord>> LoadHosts() = 0;
  virtual Result<std::vector<PackageRecord>> LoadPackages() = 0;
  virtual Result<std::vector<RenderServerRecord>> LoadRenderServers() = 0;
  virtual Result<std::vector<SlotRecord>> LoadSlots() = 0;
  // Every job, in id order.
  virtual Result<std::vector<JobRecord>> LoadJobs() = 0;
  virtual Result<std::optional<JobRecord>> LoadJob(int64_t job_id) = 0;
  // Chunks of one job in index order.
  virtual Result<std::vector<ChunkRecord>> LoadChunks(int64_t job_id) = 0;
  // Frames of one job in frame order.
  virtual Result<std::vector<FrameRecord>> LoadFrames(int64_t job_id) = 0;
  // Queue history of one job, oldest first.
  virtual Result<std::vector<JobEventRecord>> LoadJobEvents(int64_t job_id) = 0;
  virtual Result<std::optional<std::string>> GetMeta(const std::string& key) = 0;
  // Largest job id ever stored, 0 if none.
  virtual Result<int64_t> MaxJobId() = 0;
  // Schema version after migrations.
  virtual Result<int> SchemaVersion() = 0;
};

// Opens (creating if needed) a SQLite database at `path` in WAL mode with
// synchronous=FULL and applies pending migrations.
Result<std::unique_ptr<ResourceDatabase>> OpenSqliteResourceDatabase(const std::string& path);

// Opens the resource database a site's `[database] url` names:
//   ""  or "sqlite:"   the embedded SQLite database at `default_sqlite_path`
//   "sqlite:PATH"      a SQLite database at the absolute PATH
// Any other scheme is refused with a message saying what is supported.
Result<std::unique_ptr<ResourceDatabase>> OpenResourceDatabase(
    const std::string& url, const std::string& default_sqlite_path);
// Ok when OpenResourceDatabase knows the url's form (checked when the site
// configuration is loaded, before anything is opened).
Status CheckResourceDatabaseUrl(const std::string& url);

}  // namespace ff
