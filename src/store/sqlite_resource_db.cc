// The embedded SQLite implementation of ResourceDatabase.
//
// Long because it is one backend whole: the schema and its migrations, the
// prepared statements, and one writer and one reader per table, which
// must change together when a column does (the conformance suite,
// resource_db_conformance_test.cc, is what a second backend shares).
//
// Thread-safety: each database object owns one sqlite3 connection, opened in
// SQLite's multi-thread mode (SQLITE_OPEN_NOMUTEX). Every public method holds
// mu_ for its whole duration, so calls from several threads are serialised and
// the cached prepared statements are never used by two threads at once. Other
// processes (e.g. an operator's sqlite3 shell or a CLI reading the site root)
// may open the same file: WAL lets their readers run beside our writer, and
// writers wait up to kBusyTimeoutMs for each other.
//
// Durability: journal_mode=WAL with synchronous=FULL syncs the WAL on every
// COMMIT, so Commit() returning ok means the batch survives a crash or power
// loss, which is what the header promises.
//
// Storage conventions: enums are stored as their lower-case names (readable
// in the sqlite3 shell, portable to PostgreSQL); times are Unix milliseconds;
// string lists (hosts.gpus, chunks.failed_hosts) are text in which every entry
// is followed by '\n', so [] and [""] stay distinct. An entry may therefore
// not contain '\n'.
//
// Batch semantics beyond the header: updates (slot_updates, job_updates,
// chunk_updates, frame_updates) of a row that does not exist fail with
// kNotFound, a new job whose id, file, chunk or frame already exists fails with
// kAlreadyExists, and a chunk update overwrites every column but the key
// (job_id, index). Any failure rolls the whole batch back.

#include <sqlite3.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/status.h"
#include "store/resource_db.h"

namespace ff {

namespace {

constexpr int kBusyTimeoutMs = 10'000;

// A 32 MiB page cache (a negative cache_size counts KiB): large enough that
// inserting a million frames in one batch does not thrash.
constexpr const char kPragmaCacheSize[] = "PRAGMA cache_size = -32768";

// SQL for "now" in Unix milliseconds, for audit columns that no record shows.
#define FF_SQL_NOW_MILLIS "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"

struct Migration {
  int version;
  const char* sql;
};

// Ordered, append-only: a step that has shipped is never edited; change the
// schema by adding a step. Each step runs in its own transaction together with
// the row that records it in schema_migrations.
//
// CHECKs spell enums as OR chains: SQLite evaluates `x IN (...)` in a CHECK by
// building a temporary table per row, which made inserting a million frames
// take over twice as long.
constexpr Migration kMigrations[] = {
    {1, R"sql(
CREATE TABLE hosts (
  name          TEXT PRIMARY KEY NOT NULL,
  cpu_model     TEXT NOT NULL DEFAULT '',
  cores         INTEGER NOT NULL DEFAULT 0,
  memory_bytes  INTEGER NOT NULL DEFAULT 0,
  gpus          TEXT NOT NULL DEFAULT '',
  os            TEXT NOT NULL DEFAULT '',
  updated_at    INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE packages (
  host        TEXT NOT NULL,
  name        TEXT NOT NULL,
  version     TEXT NOT NULL DEFAULT '',
  executable  TEXT NOT NULL DEFAULT '',
  kind        TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (host, name)
) WITHOUT ROWID;

CREATE TABLE render_servers (
  name            TEXT PRIMARY KEY NOT NULL,
  host            TEXT NOT NULL DEFAULT '',
  status          TEXT NOT NULL
                  CHECK (status = 'up' OR status = 'down' OR status = 'draining'),
  registered_at   INTEGER NOT NULL DEFAULT 0,
  last_heartbeat  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE slots (
  id             TEXT PRIMARY KEY NOT NULL,
  render_server  TEXT NOT NULL REFERENCES render_servers (name) ON DELETE CASCADE,
  cores          INTEGER NOT NULL DEFAULT 1,
  memory_bytes   INTEGER NOT NULL DEFAULT 0,
  gpus           INTEGER NOT NULL DEFAULT 0,
  state          TEXT NOT NULL CHECK (state = 'idle' OR state = 'busy' OR state = 'down'),
  current_job    INTEGER NOT NULL DEFAULT 0,
  current_chunk  INTEGER NOT NULL DEFAULT -1
) WITHOUT ROWID;

-- AUTOINCREMENT makes sqlite_sequence remember the largest id ever inserted,
-- which is what MaxJobId() reports even if jobs are purged one day.
CREATE TABLE jobs (
  id            INTEGER PRIMARY KEY AUTOINCREMENT CHECK (id > 0),
  name          TEXT NOT NULL DEFAULT '',
  state         TEXT NOT NULL
                CHECK (state = 'queued' OR state = 'running' OR state = 'done' OR
                       state = 'failed' OR state = 'cancelled'),
  queue         TEXT NOT NULL DEFAULT '',
  priority      INTEGER NOT NULL DEFAULT 50,
  submit_time   INTEGER NOT NULL DEFAULT 0,
  finish_time   INTEGER NOT NULL DEFAULT 0,
  profile_toml  TEXT NOT NULL DEFAULT '',
  error         TEXT NOT NULL DEFAULT ''
);

CREATE TABLE job_files (
  job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  path    TEXT NOT NULL,
  sha256  TEXT NOT NULL DEFAULT '',
  size    INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, path)
) WITHOUT ROWID;

CREATE TABLE chunks (
  job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  idx            INTEGER NOT NULL,
  frames         TEXT NOT NULL DEFAULT '',
  state          TEXT NOT NULL
                 CHECK (state = 'queued' OR state = 'running' OR state = 'done' OR
                        state = 'failed' OR state = 'cancelled'),
  attempts       INTEGER NOT NULL DEFAULT 0,
  slot           TEXT NOT NULL DEFAULT '',
  render_server  TEXT NOT NULL DEFAULT '',
  started_at     INTEGER NOT NULL DEFAULT 0,
  ended_at       INTEGER NOT NULL DEFAULT 0,
  exit_code      INTEGER NOT NULL DEFAULT 0,
  log_path       TEXT NOT NULL DEFAULT '',
  error          TEXT NOT NULL DEFAULT '',
  failed_hosts   TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (job_id, idx)
) WITHOUT ROWID;

CREATE TABLE frames (
  job_id         INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  frame          INTEGER NOT NULL,
  chunk          INTEGER NOT NULL,
  state          TEXT NOT NULL
                 CHECK (state = 'queued' OR state = 'running' OR state = 'done' OR
                        state = 'failed' OR state = 'cancelled'),
  render_server  TEXT NOT NULL DEFAULT '',
  output_path    TEXT NOT NULL DEFAULT '',
  sha256         TEXT NOT NULL DEFAULT '',
  size           INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (job_id, frame)
) WITHOUT ROWID;

CREATE TABLE meta (
  key    TEXT PRIMARY KEY NOT NULL,
  value  TEXT NOT NULL
) WITHOUT ROWID;
)sql"},
    {2, R"sql(
CREATE INDEX jobs_by_state_priority ON jobs (state, priority DESC, submit_time, id);
CREATE INDEX chunks_by_state ON chunks (state);
CREATE INDEX slots_by_render_server ON slots (render_server);
CREATE INDEX render_servers_by_host ON render_servers (host);
)sql"},
    {3, R"sql(
ALTER TABLE jobs ADD COLUMN client TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN placement TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN origin_site TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN origin_job_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN remote_site TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN remote_job_id INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN exchange TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN notified INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_by_origin ON jobs (origin_site, origin_job_id);

CREATE TABLE job_events (
  id      INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id  INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  time    INTEGER NOT NULL DEFAULT 0,
  queue   TEXT NOT NULL DEFAULT '',
  state   TEXT NOT NULL DEFAULT '',
  note    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);
)sql"},
};

constexpr int kLatestSchemaVersion = kMigrations[std::size(kMigrations) - 1].version;

// Every statement below is a named constant: the statement cache is keyed by
// the constant's address.
constexpr const char kBegin[] = "BEGIN";
constexpr const char kBeginImmediate[] = "BEGIN IMMEDIATE";
constexpr const char kCommit[] = "COMMIT";
constexpr const char kRollback[] = "ROLLBACK";

constexpr const char kCreateMigrationsTable[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY NOT NULL, applied_at INTEGER NOT NULL)";
constexpr const char kSelectSchemaVersion[] =
    "SELECT COALESCE(MAX(version), 0) FROM schema_migrations";
constexpr const char kInsertMigration[] =
    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, " FF_SQL_NOW_MILLIS ")";

constexpr const char kUpsertHost[] =
    "INSERT INTO hosts (name, cpu_model, cores, memory_bytes, gpus, os, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, " FF_SQL_NOW_MILLIS
    ") ON CONFLICT (name) DO UPDATE SET cpu_model = excluded.cpu_model,"
    " cores = excluded.cores, memory_bytes = excluded.memory_bytes, gpus = excluded.gpus,"
    " os = excluded.os, updated_at = excluded.updated_at";
constexpr const char kDeletePackagesOfHost[] = "DELETE FROM packages WHERE host = ?1";
constexpr const char kUpsertPackage[] =
    "INSERT INTO packages (host, name, version, executable, kind) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (host, name) DO UPDATE SET version = excluded.version,"
    " executable = excluded.executable, kind = excluded.kind";
// DO UPDATE, never INSERT OR REPLACE: a replace deletes the row first, and the
// cascade would delete the server's slots with it.
constexpr const char kUpsertRenderServer[] =
    "INSERT INTO render_servers (name, host, status, registered_at, last_heartbeat)"
    " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET host = excluded.host,"
    " status = excluded.status, registered_at = excluded.registered_at,"
    " last_heartbeat = excluded.last_heartbeat";
constexpr const char kDeleteSlotsOfServer[] = "DELETE FROM slots WHERE render_server = ?1";
constexpr const char kUpsertSlot[] =
    "INSERT INTO slots (id, render_server, cores, memory_bytes, gpus, state, current_job,"
    " current_chunk) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO UPDATE SET"
    " render_server = excluded.render_server, cores = excluded.cores,"
    " memory_bytes = excluded.memory_bytes, gpus = excluded.gpus, state = excluded.state,"
    " current_job = excluded.current_job, current_chunk = excluded.current_chunk";
constexpr const char kUpdateSlot[] =
    "UPDATE slots SET state = ?2, current_job = ?3, current_chunk = ?4 WHERE id = ?1";
constexpr const char kInsertJob[] =
    "INSERT INTO jobs (id, name, state, queue, priority, submit_time, finish_time, profile_toml,"
    " error, client, placement, origin_site, origin_job_id, remote_site, remote_job_id, exchange,"
    " notified) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, "
    "?17)";
constexpr const char kInsertJobFile[] =
    "INSERT INTO job_files (job_id, path, sha256, size) VALUES (?1, ?2, ?3, ?4)";
constexpr const char kInsertChunk[] =
    "INSERT INTO chunks (job_id, idx, frames, state, attempts, slot, render_server, started_at,"
    " ended_at, exit_code, log_path, error, failed_hosts)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";
constexpr const char kInsertFrame[] =
    "INSERT INTO frames (job_id, frame, chunk, state, render_server, output_path, sha256, size)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
constexpr const char kUpdateJob[] =
    "UPDATE jobs SET state = ?2, queue = ?3, priority = ?4, finish_time = ?5, error = ?6,"
    " client = ?7, placement = ?8, origin_site = ?9, origin_job_id = ?10, remote_site = ?11,"
    " remote_job_id = ?12, exchange = ?13, notified = ?14 WHERE id = ?1";
constexpr const char kInsertJobEvent[] =
    "INSERT INTO job_events (job_id, time, queue, state, note) VALUES (?1, ?2, ?3, ?4, ?5)";
constexpr const char kSelectJobEvents[] =
    "SELECT job_id, time, queue, state, note FROM job_events WHERE job_id = ?1 ORDER BY id";
constexpr const char kUpdateChunk[] =
    "UPDATE chunks SET frames = ?3, state = ?4, attempts = ?5, slot = ?6, render_server = ?7,"
    " started_at = ?8, ended_at = ?9, exit_code = ?10, log_path = ?11, error = ?12,"
    " failed_hosts = ?13 WHERE job_id = ?1 AND idx = ?2";
constexpr const char kUpdateFrame[] =
    "UPDATE frames SET state = ?3, render_server = ?4, output_path = ?5, sha256 = ?6, size = ?7"
    " WHERE job_id = ?1 AND frame = ?2";
constexpr const char kUpsertMeta[] =
    "INSERT INTO meta (key, value) VALUES (?1, ?2)"
    " ON CONFLICT (key) DO UPDATE SET value = excluded.value";

constexpr const char kSelectHosts[] =
    "SELECT name, cpu_model, cores, memory_bytes, gpus, os FROM hosts ORDER BY name";
constexpr const char kSelectPackages[] =
    "SELECT host, name, version, executable, kind FROM packages ORDER BY host, name";
constexpr const char kSelectRenderServers[] =
    "SELECT name, host, status, registered_at, last_heartbeat FROM render_servers ORDER BY name";
constexpr const char kSelectSlots[] =
    "SELECT id, render_server, cores, memory_bytes, gpus, state, current_job, current_chunk"
    " FROM slots ORDER BY id";
constexpr const char kSelectJobs[] =
    "SELECT id, name, state, queue, priority, submit_time, finish_time, profile_toml, error,"
    " client, placement, origin_site, origin_job_id, remote_site, remote_job_id, exchange, notified"
    " FROM jobs ORDER BY id";
constexpr const char kSelectJob[] =
    "SELECT id, name, state, queue, priority, submit_time, finish_time, profile_toml, error,"
    " client, placement, origin_site, origin_job_id, remote_site, remote_job_id, exchange, notified"
    " FROM jobs WHERE id = ?1";
constexpr const char kSelectAllJobFiles[] =
    "SELECT job_id, path, sha256, size FROM job_files ORDER BY job_id, path";
constexpr const char kSelectJobFiles[] =
    "SELECT job_id, path, sha256, size FROM job_files WHERE job_id = ?1 ORDER BY path";
constexpr const char kSelectChunks[] =
    "SELECT job_id, idx, frames, state, attempts, slot, render_server, started_at, ended_at,"
    " exit_code, log_path, error, failed_hosts FROM chunks WHERE job_id = ?1 ORDER BY idx";
constexpr const char kSelectFrames[] =
    "SELECT job_id, frame, chunk, state, render_server, output_path, sha256, size FROM frames"
    " WHERE job_id = ?1 ORDER BY frame";
constexpr const char kSelectMeta[] = "SELECT value FROM meta WHERE key = ?1";
constexpr const char kSelectMaxJobId[] =
    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'jobs'), 0),"
    " COALESCE((SELECT MAX(id) FROM jobs), 0))";

#undef FF_SQL_NOW_MILLIS

// Maps a SQLite result code to frameflow's codes; `message` names the table.
Status SqliteStatus(int rc, std::string message) {
  switch (rc) {
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return Status(StatusCode::kAlreadyExists, std::move(message));
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return FailedPrecondition(std::move(message));
    case SQLITE_CONSTRAINT_CHECK:
    case SQLITE_CONSTRAINT_NOTNULL:
      return InvalidArgument(std::move(message));
    default:
      break;
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Unavailable(std::move(message));
    default:
      return IoError(std::move(message));
  }
}

// "<table>: <action>: <SQLite's message>".
Status SqlError(sqlite3* db, int rc, std::string_view table, std::string_view action) {
  std::string message(table);
  message += ": ";
  message += action;
  message += ": ";
  message += sqlite3_errmsg(db);
  return SqliteStatus(rc, std::move(message));
}

// Binds parameters ?1, ?2, ... in call order and remembers the first failure,
// so a caller checks once. Text is bound SQLITE_STATIC: the caller keeps it
// alive until the statement has been stepped.
class Binder {
 public:
  explicit Binder(sqlite3_stmt* stmt) : stmt_(stmt) {}

  Binder& Text(std::string_view v) {
    Check(sqlite3_bind_text64(stmt_, ++index_, v.data() != nullptr ? v.data() : "", v.size(),
                              SQLITE_STATIC, SQLITE_UTF8));
    return *this;
  }
  Binder& Int(int64_t v) {
    Check(sqlite3_bind_int64(stmt_, ++index_, v));
    return *this;
  }
  int rc() const { return rc_; }

 private:
  void Check(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
  }

  sqlite3_stmt* stmt_;
  int index_ = 0;
  int rc_ = SQLITE_OK;
};

std::string_view ColumnView(sqlite3_stmt* stmt, int i) {
  const unsigned char* p = sqlite3_column_text(stmt, i);
  if (p == nullptr) return {};
  return std::string_view(reinterpret_cast<const char*>(p),
                          static_cast<size_t>(sqlite3_column_bytes(stmt, i)));
}
std::string ColumnText(sqlite3_stmt* stmt, int i) { return std::string(ColumnView(stmt, i)); }
int64_t ColumnInt64(sqlite3_stmt* stmt, int i) { return sqlite3_column_int64(stmt, i); }
int ColumnInt(sqlite3_stmt* stmt, int i) { return sqlite3_column_int(stmt, i); }

template <typename E, size_t N>
Status ParseEnum(std::string_view text, const std::array<E, N>& values, const char* (*name)(E),
                 std::string_view column, E* out) {
  for (E v : values) {
    if (text == name(v)) {
      *out = v;
      return Status::Ok();
    }
  }
  return IoError(std::string(column) + ": unknown value '" + std::string(text) +
                 "' in the database");
}

constexpr std::array<ServerStatus, 3> kServerStatuses = {ServerStatus::kUp, ServerStatus::kDown,
                                                         ServerStatus::kDraining};
constexpr std::array<JobQueue, 4> kJobQueues = {JobQueue::kNone, JobQueue::kNew, JobQueue::kActive,
                                                JobQueue::kOutsourced};
constexpr std::array<ExchangeState, 10> kExchangeStates = {
    ExchangeState::kNone,       ExchangeState::kPackaging,  ExchangeState::kShipping,
    ExchangeState::kDelivered,  ExchangeState::kRejected,   ExchangeState::kNotSent,
    ExchangeState::kCancelling, ExchangeState::kCancelSent, ExchangeState::kReturning,
    ExchangeState::kReturned};
constexpr std::array<SlotState, 3> kSlotStates = {SlotState::kIdle, SlotState::kBusy,
                                                  SlotState::kDown};
constexpr std::array<JobState, 5> kJobStates = {JobState::kQueued, JobState::kRunning,
                                                JobState::kDone, JobState::kFailed,
                                                JobState::kCancelled};
constexpr std::array<ChunkState, 5> kChunkStates = {ChunkState::kQueued, ChunkState::kRunning,
                                                    ChunkState::kDone, ChunkState::kFailed,
                                                    ChunkState::kCancelled};
constexpr std::array<FrameState, 5> kFrameStates = {FrameState::kQueued, FrameState::kRunning,
                                                    FrameState::kDone, FrameState::kFailed,
                                                    FrameState::kCancelled};

// Every entry followed by '\n' (see the file comment).
Result<std::string> EncodeList(const std::vector<std::string>& items, std::string_view field) {
  std::string out;
  for (const std::string& item : items) {
    if (item.find('\n') != std::string::npos) {
      return InvalidArgument(std::string(field) + ": entry '" + item + "' contains a newline");
    }
    out += item;
    out += '\n';
  }
  return out;
}

std::vector<std::string> DecodeList(std::string_view text) {
  std::vector<std::string> items;
  while (!text.empty()) {
    size_t end = text.find('\n');
    if (end == std::string_view::npos) {  // tolerate a missing final terminator
      items.emplace_back(text);
      break;
    }
    items.emplace_back(text.substr(0, end));
    text.remove_prefix(end + 1);
  }
  return items;
}

Status ReadHost(sqlite3_stmt* s, HostRecord* h) {
  h->name = ColumnText(s, 0);
  h->cpu_model = ColumnText(s, 1);
  h->cores = ColumnInt(s, 2);
  h->memory_bytes = ColumnInt64(s, 3);
  h->gpus = DecodeList(ColumnView(s, 4));
  h->os = ColumnText(s, 5);
  return Status::Ok();
}

Status ReadPackage(sqlite3_stmt* s, PackageRecord* p) {
  p->host = ColumnText(s, 0);
  p->name = ColumnText(s, 1);
  p->version = ColumnText(s, 2);
  p->executable = ColumnText(s, 3);
  p->kind = ColumnText(s, 4);
  return Status::Ok();
}

Status ReadRenderServer(sqlite3_stmt* s, RenderServerRecord* r) {
  r->name = ColumnText(s, 0);
  r->host = ColumnText(s, 1);
  FF_RETURN_IF_ERROR(ParseEnum(ColumnView(s, 2), kServerStatuses, &ServerStatusName,
                               "render_servers.status", &r->status));
  r->registered_at = ColumnInt64(s, 3);
  r->last_heartbeat = ColumnInt64(s, 4);
  return Status::Ok();
}

Status ReadSlot(sqlite3_stmt* s, SlotRecord* r) {
  r->id = ColumnText(s, 0);
  r->render_server = ColumnText(s, 1);
  r->cores = ColumnInt(s, 2);
  r->memory_bytes = ColumnInt64(s, 3);
  r->gpus = ColumnInt(s, 4);
  FF_RETURN_IF_ERROR(
      ParseEnum(ColumnView(s, 5), kSlotStates, &SlotStateName, "slots.state", &r->state));
  r->current_job = ColumnInt64(s, 6);
  r->current_chunk = ColumnInt(s, 7);
  return Status::Ok();
}

// Binds the outsourcing columns of a job (?10..?17 of kInsertJob, ?7..?14
// of kUpdateJob), in the order both statements list them.
void BindOutsourcing(Binder& b, const JobRecord& j) {
  b.Text(j.client)
      .Text(j.placement)
      .Text(j.origin_site)
      .Int(j.origin_job_id)
      .Text(j.remote_site)
      .Int(j.remote_job_id)
      .Text(ExchangeStateName(j.exchange))
      .Int(j.notified ? 1 : 0);
}

Status ReadJob(sqlite3_stmt* s, JobRecord* j) {
  j->id = ColumnInt64(s, 0);
  j->name = ColumnText(s, 1);
  FF_RETURN_IF_ERROR(
      ParseEnum(ColumnView(s, 2), kJobStates, &JobStateName, "jobs.state", &j->state));
  FF_RETURN_IF_ERROR(
      ParseEnum(ColumnView(s, 3), kJobQueues, &JobQueueName, "jobs.queue", &j->queue));
  j->priority = ColumnInt(s, 4);
  j->submit_time = ColumnInt64(s, 5);
  j->finish_time = ColumnInt64(s, 6);
  j->profile_toml = ColumnText(s, 7);
  j->error = ColumnText(s, 8);
  j->client = ColumnText(s, 9);
  j->placement = ColumnText(s, 10);
  j->origin_site = ColumnText(s, 11);
  j->origin_job_id = ColumnInt64(s, 12);
  j->remote_site = ColumnText(s, 13);
  j->remote_job_id = ColumnInt64(s, 14);
  FF_RETURN_IF_ERROR(ParseEnum(ColumnView(s, 15), kExchangeStates, &ExchangeStateName,
                               "jobs.exchange", &j->exchange));
  j->notified = ColumnInt(s, 16) != 0;
  return Status::Ok();
}

JobFile ReadJobFile(sqlite3_stmt* s) {
  JobFile f;
  f.path = ColumnText(s, 1);
  f.sha256 = ColumnText(s, 2);
  f.size = ColumnInt64(s, 3);
  return f;
}

Status ReadChunk(sqlite3_stmt* s, ChunkRecord* c) {
  c->job_id = ColumnInt64(s, 0);
  c->index = ColumnInt(s, 1);
  c->frames = ColumnText(s, 2);
  FF_RETURN_IF_ERROR(
      ParseEnum(ColumnView(s, 3), kChunkStates, &ChunkStateName, "chunks.state", &c->state));
  c->attempts = ColumnInt(s, 4);
  c->slot = ColumnText(s, 5);
  c->render_server = ColumnText(s, 6);
  c->started_at = ColumnInt64(s, 7);
  c->ended_at = ColumnInt64(s, 8);
  c->exit_code = ColumnInt(s, 9);
  c->log_path = ColumnText(s, 10);
  c->error = ColumnText(s, 11);
  c->failed_hosts = DecodeList(ColumnView(s, 12));
  return Status::Ok();
}

Status ReadFrame(sqlite3_stmt* s, FrameRecord* f) {
  f->job_id = ColumnInt64(s, 0);
  f->frame = ColumnInt64(s, 1);
  f->chunk = ColumnInt(s, 2);
  FF_RETURN_IF_ERROR(
      ParseEnum(ColumnView(s, 3), kFrameStates, &FrameStateName, "frames.state", &f->state));
  f->render_server = ColumnText(s, 4);
  f->output_path = ColumnText(s, 5);
  f->sha256 = ColumnText(s, 6);
  f->size = ColumnInt64(s, 7);
  return Status::Ok();
}

class SqliteResourceDatabase final : public ResourceDatabase {
 public:
  // Takes ownership of `db`.
  explicit SqliteResourceDatabase(sqlite3* db) : db_(db) {}
  ~SqliteResourceDatabase() override;

  SqliteResourceDatabase(const SqliteResourceDatabase&) = delete;
  SqliteResourceDatabase& operator=(const SqliteResourceDatabase&) = delete;

  // Sets the connection up and migrates the schema.
  // REQUIRES: called once, before the object is shared.
  Status Initialize();

  Status Commit(const WriteBatch& batch) override;
  Status CommitGroup(const std::vector<WriteBatch>& batches) override;
  Result<std::vector<HostRecord>> LoadHosts() override;
  Result<std::vector<PackageRecord>> LoadPackages() override;
  Result<std::vector<RenderServerRecord>> LoadRenderServers() override;
  Result<std::vector<SlotRecord>> LoadSlots() override;
  Result<std::vector<JobRecord>> LoadJobs() override;
  Result<std::optional<JobRecord>> LoadJob(int64_t job_id) override;
  Result<std::vector<ChunkRecord>> LoadChunks(int64_t job_id) override;
  Result<std::vector<FrameRecord>> LoadFrames(int64_t job_id) override;
  Result<std::vector<JobEventRecord>> LoadJobEvents(int64_t job_id) override;
  Result<std::optional<std::string>> GetMeta(const std::string& key) override;
  Result<int64_t> MaxJobId() override;
  Result<int> SchemaVersion() override;

 private:
  // Everything below REQUIRES: mu_ held (or, in Initialize, not yet shared).

  // The cached prepared statement for one of the SQL constants above.
  Result<sqlite3_stmt*> Statement(const char* sql);

  // Runs a statement that returns no rows (after binding with Binder) and
  // resets it. `describe()` builds the action named in an error message; it is
  // only called on failure, so hot loops pay nothing for it.
  template <typename Describe>
  Status Run(sqlite3_stmt* stmt, int bind_rc, std::string_view table, Describe&& describe);

  // Steps a query to completion calling on_row(stmt) for each row, then
  // resets the statement and clears its bindings (releasing its read lock).
  template <typename OnRow>
  Status Query(sqlite3_stmt* stmt, int bind_rc, std::string_view table, OnRow&& on_row);

  // Runs one of kBegin / kBeginImmediate / kCommit.
  Status RunControl(const char* sql);
  // Rolls back the open transaction, if any. Used on failure paths only.
  void RollbackIfOpen();
  // Ends a read transaction opened with kBegin.
  void EndRead();

  // Executes `sql` (possibly several statements) without caching it; errors
  // read "<what>: <SQLite's message>".
  Status Exec(const char* sql, std::string_view what);
  Result<std::string> PragmaText(const char* sql);
  Status Migrate();
  Result<int> SchemaVersionLocked();

  Status ApplyBatch(const WriteBatch& batch);
  Status WriteHosts(const std::vector<HostRecord>& hosts);
  Status WritePackages(const std::vector<WriteBatch::PackagesOf>& sets);
  Status WriteRenderServers(const std::vector<RenderServerRecord>& servers);
  Status WriteSlotSets(const std::vector<WriteBatch::SlotsOf>& sets);
  Status WriteSlotUpdates(const std::vector<SlotRecord>& slots);
  Status WriteNewJobs(const std::vector<WriteBatch::NewJob>& jobs);
  Status WriteJobUpdates(const std::vector<JobRecord>& jobs);
  Status WriteChunkUpdates(const std::vector<ChunkRecord>& chunks);
  Status WriteFrameUpdates(const std::vector<FrameRecord>& frames);
  Status WriteMeta(const std::vector<std::pair<std::string, std::string>>& meta);
  Status WriteJobEvents(const std::vector<JobEventRecord>& events);
  Status InsertChunk(sqlite3_stmt* stmt, int64_t job_id, const ChunkRecord& c);

  Result<std::vector<JobRecord>> LoadJobsLocked();
  Result<std::optional<JobRecord>> LoadJobLocked(int64_t job_id);

  std::mutex mu_;
  sqlite3* const db_;  // owned; used under mu_
  // Prepared statements keyed by the address of their SQL constant. GUARDED_BY(mu_).
  std::unordered_map<const char*, sqlite3_stmt*> statements_;
};

SqliteResourceDatabase::~SqliteResourceDatabase() {
  for (auto& [sql, stmt] : statements_) sqlite3_finalize(stmt);
  // The last connection to close checkpoints the WAL into the database file.
  sqlite3_close_v2(db_);
}

Result<sqlite3_stmt*> SqliteResourceDatabase::Statement(const char* sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) return it->second;
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return SqlError(db_, rc, "prepare", sql);
  }
  statements_.emplace(sql, stmt);
  return stmt;
}

template <typename Describe>
Status SqliteResourceDatabase::Run(sqlite3_stmt* stmt, int bind_rc, std::string_view table,
                                   Describe&& describe) {
  int rc = bind_rc == SQLITE_OK ? sqlite3_step(stmt) : bind_rc;
  Status st;
  if (rc != SQLITE_DONE) st = SqlError(db_, rc, table, describe());
  sqlite3_reset(stmt);
  return st;
}

template <typename OnRow>
Status SqliteResourceDatabase::Query(sqlite3_stmt* stmt, int bind_rc, std::string_view table,
                                     OnRow&& on_row) {
  Status st;
  if (bind_rc != SQLITE_OK) st = SqlError(db_, bind_rc, table, "bind");
  while (st.ok()) {
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      st = SqlError(db_, rc, table, "select");
      break;
    }
    st = on_row(stmt);
  }
  sqlite3_reset(stmt);
  sqlite3_clear_bindings(stmt);
  return st;
}

Status SqliteResourceDatabase::RunControl(const char* sql) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(sql));
  return Run(stmt, SQLITE_OK, "transaction", [sql] { return std::string(sql); });
}

void SqliteResourceDatabase::RollbackIfOpen() {
  // Some errors (e.g. SQLITE_FULL, SQLITE_IOERR) already rolled back.
  if (sqlite3_get_autocommit(db_)) return;
  sqlite3_exec(db_, kRollback, nullptr, nullptr, nullptr);
}

void SqliteResourceDatabase::EndRead() {
  // Ending a read transaction cannot lose data; fall back to ROLLBACK so the
  // connection never stays inside a transaction.
  if (!RunControl(kCommit).ok()) RollbackIfOpen();
}

Status SqliteResourceDatabase::Exec(const char* sql, std::string_view what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::Ok();
  std::string message = std::string(what) + ": " + (err != nullptr ? err : sqlite3_errstr(rc));
  sqlite3_free(err);
  return SqliteStatus(rc, std::move(message));
}

Result<std::string> SqliteResourceDatabase::PragmaText(const char* sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql, -1, &stmt, nullptr);
  std::string value;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      value = ColumnText(stmt, 0);
      rc = SQLITE_OK;
    }
  }
  Status st = rc == SQLITE_OK ? Status::Ok() : SqlError(db_, rc, "pragma", sql);
  sqlite3_finalize(stmt);
  if (!st.ok()) return st;
  return value;
}

Status SqliteResourceDatabase::Initialize() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  FF_ASSIGN_OR_RETURN(std::string mode, PragmaText("PRAGMA journal_mode = WAL"));
  if (mode != "wal") {
    return FailedPrecondition("journal_mode: cannot enable WAL (database reports '" + mode + "')");
  }
  FF_RETURN_IF_ERROR(Exec("PRAGMA synchronous = FULL", "synchronous"));
  FF_RETURN_IF_ERROR(Exec("PRAGMA foreign_keys = ON", "foreign_keys"));
  FF_RETURN_IF_ERROR(Exec(kPragmaCacheSize, "cache_size"));
  return Migrate();
}

Result<int> SqliteResourceDatabase::SchemaVersionLocked() {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectSchemaVersion));
  int version = 0;
  FF_RETURN_IF_ERROR(Query(stmt, SQLITE_OK, "schema_migrations", [&](sqlite3_stmt* s) {
    version = ColumnInt(s, 0);
    return Status::Ok();
  }));
  return version;
}

Status SqliteResourceDatabase::Migrate() {
  FF_RETURN_IF_ERROR(Exec(kCreateMigrationsTable, "schema_migrations: create"));
  FF_ASSIGN_OR_RETURN(int current, SchemaVersionLocked());
  if (current > kLatestSchemaVersion) {
    return FailedPrecondition("schema_migrations: database schema version " +
                              std::to_string(current) + " is newer than this build's " +
                              std::to_string(kLatestSchemaVersion));
  }
  for (const Migration& m : kMigrations) {
    if (m.version <= current) continue;
    FF_RETURN_IF_ERROR(RunControl(kBeginImmediate));
    // Another process may have migrated while we waited for the write lock.
    Result<int> now = SchemaVersionLocked();
    Status st = now.status();
    bool apply = st.ok() && *now < m.version;
    if (apply) st = Exec(m.sql, "apply");
    if (apply && st.ok()) {
      auto stmt = Statement(kInsertMigration);
      st = stmt.status();
      if (st.ok()) {
        Binder b(*stmt);
        b.Int(m.version);
        st = Run(*stmt, b.rc(), "schema_migrations", [] { return std::string("insert"); });
      }
    }
    if (st.ok()) st = RunControl(kCommit);
    if (!st.ok()) {
      RollbackIfOpen();
      return st.WithContext("schema migration " + std::to_string(m.version));
    }
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::Commit(const WriteBatch& batch) {
  if (batch.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  Status st = RunControl(kBeginImmediate);
  if (st.ok()) st = ApplyBatch(batch);
  if (st.ok()) st = RunControl(kCommit);
  if (!st.ok()) RollbackIfOpen();
  return st.WithContext("resource db commit");
}

Status SqliteResourceDatabase::CommitGroup(const std::vector<WriteBatch>& batches) {
  std::lock_guard<std::mutex> lock(mu_);
  Status st = RunControl(kBeginImmediate);
  for (const WriteBatch& b : batches) {
    if (!st.ok()) break;
    if (!b.empty()) st = ApplyBatch(b);
  }
  if (st.ok()) st = RunControl(kCommit);
  if (!st.ok()) RollbackIfOpen();
  return st.WithContext("resource db group commit");
}

// Fixed order, so that e.g. a job created and updated in one batch ends up
// with the update, and slots always follow the server they reference.
Status SqliteResourceDatabase::ApplyBatch(const WriteBatch& b) {
  if (!b.hosts.empty()) FF_RETURN_IF_ERROR(WriteHosts(b.hosts));
  if (!b.packages.empty()) FF_RETURN_IF_ERROR(WritePackages(b.packages));
  if (!b.render_servers.empty()) FF_RETURN_IF_ERROR(WriteRenderServers(b.render_servers));
  if (!b.slot_sets.empty()) FF_RETURN_IF_ERROR(WriteSlotSets(b.slot_sets));
  if (!b.slot_updates.empty()) FF_RETURN_IF_ERROR(WriteSlotUpdates(b.slot_updates));
  if (!b.new_jobs.empty()) FF_RETURN_IF_ERROR(WriteNewJobs(b.new_jobs));
  if (!b.job_updates.empty()) FF_RETURN_IF_ERROR(WriteJobUpdates(b.job_updates));
  if (!b.chunk_updates.empty()) FF_RETURN_IF_ERROR(WriteChunkUpdates(b.chunk_updates));
  if (!b.frame_updates.empty()) FF_RETURN_IF_ERROR(WriteFrameUpdates(b.frame_updates));
  if (!b.job_events.empty()) FF_RETURN_IF_ERROR(WriteJobEvents(b.job_events));
  if (!b.meta.empty()) FF_RETURN_IF_ERROR(WriteMeta(b.meta));
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteJobEvents(const std::vector<JobEventRecord>& events) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kInsertJobEvent));
  for (const JobEventRecord& e : events) {
    Binder b(stmt);
    b.Int(e.job_id).Int(e.time).Text(JobQueueName(e.queue)).Text(e.state).Text(e.note);
    FF_RETURN_IF_ERROR(Run(stmt, b.rc(), "job_events",
                           [&] { return "insert event of job " + std::to_string(e.job_id); }));
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteHosts(const std::vector<HostRecord>& hosts) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpsertHost));
  for (const HostRecord& h : hosts) {
    if (h.name.empty()) return InvalidArgument("hosts: empty host name");
    FF_ASSIGN_OR_RETURN(std::string gpus, EncodeList(h.gpus, "hosts.gpus"));
    Binder b(stmt);
    b.Text(h.name).Text(h.cpu_model).Int(h.cores).Int(h.memory_bytes).Text(gpus).Text(h.os);
    FF_RETURN_IF_ERROR(Run(stmt, b.rc(), "hosts", [&] { return "upsert '" + h.name + "'"; }));
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WritePackages(const std::vector<WriteBatch::PackagesOf>& sets) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * del, Statement(kDeletePackagesOfHost));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * ins, Statement(kUpsertPackage));
  for (const WriteBatch::PackagesOf& set : sets) {
    if (set.host.empty()) return InvalidArgument("packages: empty host name");
    Binder bd(del);
    bd.Text(set.host);
    FF_RETURN_IF_ERROR(
        Run(del, bd.rc(), "packages", [&] { return "delete packages of '" + set.host + "'"; }));
    for (const PackageRecord& p : set.packages) {
      if (!p.host.empty() && p.host != set.host) {
        return InvalidArgument("packages: package '" + p.name + "' names host '" + p.host +
                               "' inside the package set of host '" + set.host + "'");
      }
      if (p.name.empty()) {
        return InvalidArgument("packages: empty package name for host '" + set.host + "'");
      }
      Binder b(ins);
      b.Text(set.host).Text(p.name).Text(p.version).Text(p.executable).Text(p.kind);
      FF_RETURN_IF_ERROR(Run(ins, b.rc(), "packages",
                             [&] { return "insert '" + p.name + "' of '" + set.host + "'"; }));
    }
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteRenderServers(const std::vector<RenderServerRecord>& servers) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpsertRenderServer));
  for (const RenderServerRecord& r : servers) {
    if (r.name.empty()) return InvalidArgument("render_servers: empty render server name");
    Binder b(stmt);
    b.Text(r.name)
        .Text(r.host)
        .Text(ServerStatusName(r.status))
        .Int(r.registered_at)
        .Int(r.last_heartbeat);
    FF_RETURN_IF_ERROR(
        Run(stmt, b.rc(), "render_servers", [&] { return "upsert '" + r.name + "'"; }));
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteSlotSets(const std::vector<WriteBatch::SlotsOf>& sets) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * del, Statement(kDeleteSlotsOfServer));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * ins, Statement(kUpsertSlot));
  for (const WriteBatch::SlotsOf& set : sets) {
    if (set.render_server.empty()) return InvalidArgument("slots: empty render server name");
    Binder bd(del);
    bd.Text(set.render_server);
    FF_RETURN_IF_ERROR(
        Run(del, bd.rc(), "slots", [&] { return "delete slots of '" + set.render_server + "'"; }));
    for (const SlotRecord& s : set.slots) {
      if (!s.render_server.empty() && s.render_server != set.render_server) {
        return InvalidArgument("slots: slot '" + s.id + "' names render server '" +
                               s.render_server + "' inside the slot set of '" + set.render_server +
                               "'");
      }
      if (s.id.empty()) {
        return InvalidArgument("slots: empty slot id for render server '" + set.render_server +
                               "'");
      }
      Binder b(ins);
      b.Text(s.id)
          .Text(set.render_server)
          .Int(s.cores)
          .Int(s.memory_bytes)
          .Int(s.gpus)
          .Text(SlotStateName(s.state))
          .Int(s.current_job)
          .Int(s.current_chunk);
      FF_RETURN_IF_ERROR(Run(ins, b.rc(), "slots", [&] { return "insert '" + s.id + "'"; }));
    }
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteSlotUpdates(const std::vector<SlotRecord>& slots) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpdateSlot));
  for (const SlotRecord& s : slots) {
    Binder b(stmt);
    b.Text(s.id).Text(SlotStateName(s.state)).Int(s.current_job).Int(s.current_chunk);
    FF_RETURN_IF_ERROR(Run(stmt, b.rc(), "slots", [&] { return "update '" + s.id + "'"; }));
    if (sqlite3_changes(db_) == 0) return NotFound("slots: update of unknown slot '" + s.id + "'");
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::InsertChunk(sqlite3_stmt* stmt, int64_t job_id,
                                           const ChunkRecord& c) {
  FF_ASSIGN_OR_RETURN(std::string failed_hosts, EncodeList(c.failed_hosts, "chunks.failed_hosts"));
  Binder b(stmt);
  b.Int(job_id)
      .Int(c.index)
      .Text(c.frames)
      .Text(ChunkStateName(c.state))
      .Int(c.attempts)
      .Text(c.slot)
      .Text(c.render_server)
      .Int(c.started_at)
      .Int(c.ended_at)
      .Int(c.exit_code)
      .Text(c.log_path)
      .Text(c.error)
      .Text(failed_hosts);
  return Run(stmt, b.rc(), "chunks", [&] {
    return "insert job " + std::to_string(job_id) + " chunk " + std::to_string(c.index);
  });
}

Status SqliteResourceDatabase::WriteNewJobs(const std::vector<WriteBatch::NewJob>& jobs) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * job_stmt, Statement(kInsertJob));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * file_stmt, Statement(kInsertJobFile));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * chunk_stmt, Statement(kInsertChunk));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * frame_stmt, Statement(kInsertFrame));
  for (const WriteBatch::NewJob& nj : jobs) {
    const JobRecord& j = nj.job;
    const int64_t id = j.id;
    const std::string id_text = std::to_string(id);
    if (id <= 0) return InvalidArgument("jobs: job id must be > 0, got " + id_text);
    Binder b(job_stmt);
    b.Int(id)
        .Text(j.name)
        .Text(JobStateName(j.state))
        .Text(JobQueueName(j.queue))
        .Int(j.priority)
        .Int(j.submit_time)
        .Int(j.finish_time)
        .Text(j.profile_toml)
        .Text(j.error);
    BindOutsourcing(b, j);
    FF_RETURN_IF_ERROR(Run(job_stmt, b.rc(), "jobs", [&] { return "insert job " + id_text; }));

    for (const JobFile& f : j.files) {
      if (f.path.empty()) return InvalidArgument("job_files: empty path in job " + id_text);
      Binder bf(file_stmt);
      bf.Int(id).Text(f.path).Text(f.sha256).Int(f.size);
      FF_RETURN_IF_ERROR(Run(file_stmt, bf.rc(), "job_files",
                             [&] { return "insert job " + id_text + " file '" + f.path + "'"; }));
    }
    for (const ChunkRecord& c : nj.chunks) {
      if (c.job_id != 0 && c.job_id != id) {
        return InvalidArgument("chunks: chunk " + std::to_string(c.index) + " names job " +
                               std::to_string(c.job_id) + " inside new job " + id_text);
      }
      FF_RETURN_IF_ERROR(InsertChunk(chunk_stmt, id, c));
    }
    // The hot loop for big jobs: one reused statement, no allocation per row.
    for (const FrameRecord& f : nj.frames) {
      if (f.job_id != 0 && f.job_id != id) {
        return InvalidArgument("frames: frame " + std::to_string(f.frame) + " names job " +
                               std::to_string(f.job_id) + " inside new job " + id_text);
      }
      Binder bf(frame_stmt);
      bf.Int(id)
          .Int(f.frame)
          .Int(f.chunk)
          .Text(FrameStateName(f.state))
          .Text(f.render_server)
          .Text(f.output_path)
          .Text(f.sha256)
          .Int(f.size);
      FF_RETURN_IF_ERROR(Run(frame_stmt, bf.rc(), "frames", [&] {
        return "insert job " + id_text + " frame " + std::to_string(f.frame);
      }));
    }
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteJobUpdates(const std::vector<JobRecord>& jobs) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpdateJob));
  for (const JobRecord& j : jobs) {
    Binder b(stmt);
    b.Int(j.id)
        .Text(JobStateName(j.state))
        .Text(JobQueueName(j.queue))
        .Int(j.priority)
        .Int(j.finish_time)
        .Text(j.error);
    BindOutsourcing(b, j);
    FF_RETURN_IF_ERROR(
        Run(stmt, b.rc(), "jobs", [&] { return "update job " + std::to_string(j.id); }));
    if (sqlite3_changes(db_) == 0) {
      return NotFound("jobs: update of unknown job " + std::to_string(j.id));
    }
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteChunkUpdates(const std::vector<ChunkRecord>& chunks) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpdateChunk));
  for (const ChunkRecord& c : chunks) {
    FF_ASSIGN_OR_RETURN(std::string failed_hosts,
                        EncodeList(c.failed_hosts, "chunks.failed_hosts"));
    Binder b(stmt);
    b.Int(c.job_id)
        .Int(c.index)
        .Text(c.frames)
        .Text(ChunkStateName(c.state))
        .Int(c.attempts)
        .Text(c.slot)
        .Text(c.render_server)
        .Int(c.started_at)
        .Int(c.ended_at)
        .Int(c.exit_code)
        .Text(c.log_path)
        .Text(c.error)
        .Text(failed_hosts);
    auto what = [&] {
      return "job " + std::to_string(c.job_id) + " chunk " + std::to_string(c.index);
    };
    FF_RETURN_IF_ERROR(Run(stmt, b.rc(), "chunks", [&] { return "update " + what(); }));
    if (sqlite3_changes(db_) == 0) return NotFound("chunks: update of unknown " + what());
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteFrameUpdates(const std::vector<FrameRecord>& frames) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpdateFrame));
  for (const FrameRecord& f : frames) {
    Binder b(stmt);
    b.Int(f.job_id)
        .Int(f.frame)
        .Text(FrameStateName(f.state))
        .Text(f.render_server)
        .Text(f.output_path)
        .Text(f.sha256)
        .Int(f.size);
    auto what = [&] {
      return "job " + std::to_string(f.job_id) + " frame " + std::to_string(f.frame);
    };
    FF_RETURN_IF_ERROR(Run(stmt, b.rc(), "frames", [&] { return "update " + what(); }));
    if (sqlite3_changes(db_) == 0) return NotFound("frames: update of unknown " + what());
  }
  return Status::Ok();
}

Status SqliteResourceDatabase::WriteMeta(
    const std::vector<std::pair<std::string, std::string>>& meta) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kUpsertMeta));
  for (const auto& [key, value] : meta) {
    if (key.empty()) return InvalidArgument("meta: empty key");
    Binder b(stmt);
    b.Text(key).Text(value);
    FF_RETURN_IF_ERROR(Run(stmt, b.rc(), "meta", [&key = key] { return "upsert '" + key + "'"; }));
  }
  return Status::Ok();
}

Result<std::vector<HostRecord>> SqliteResourceDatabase::LoadHosts() {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectHosts));
  std::vector<HostRecord> out;
  FF_RETURN_IF_ERROR(Query(stmt, SQLITE_OK, "hosts",
                           [&](sqlite3_stmt* s) { return ReadHost(s, &out.emplace_back()); }));
  return out;
}

Result<std::vector<PackageRecord>> SqliteResourceDatabase::LoadPackages() {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectPackages));
  std::vector<PackageRecord> out;
  FF_RETURN_IF_ERROR(Query(stmt, SQLITE_OK, "packages",
                           [&](sqlite3_stmt* s) { return ReadPackage(s, &out.emplace_back()); }));
  return out;
}

Result<std::vector<RenderServerRecord>> SqliteResourceDatabase::LoadRenderServers() {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectRenderServers));
  std::vector<RenderServerRecord> out;
  FF_RETURN_IF_ERROR(Query(stmt, SQLITE_OK, "render_servers", [&](sqlite3_stmt* s) {
    return ReadRenderServer(s, &out.emplace_back());
  }));
  return out;
}

Result<std::vector<SlotRecord>> SqliteResourceDatabase::LoadSlots() {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectSlots));
  std::vector<SlotRecord> out;
  FF_RETURN_IF_ERROR(Query(stmt, SQLITE_OK, "slots",
                           [&](sqlite3_stmt* s) { return ReadSlot(s, &out.emplace_back()); }));
  return out;
}

Result<std::vector<JobRecord>> SqliteResourceDatabase::LoadJobs() {
  std::lock_guard<std::mutex> lock(mu_);
  // One read transaction: jobs and their files come from the same snapshot.
  FF_RETURN_IF_ERROR(RunControl(kBegin));
  auto result = LoadJobsLocked();
  EndRead();
  return result;
}

Result<std::vector<JobRecord>> SqliteResourceDatabase::LoadJobsLocked() {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * jobs_stmt, Statement(kSelectJobs));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * files_stmt, Statement(kSelectAllJobFiles));
  std::vector<JobRecord> jobs;
  FF_RETURN_IF_ERROR(Query(jobs_stmt, SQLITE_OK, "jobs",
                           [&](sqlite3_stmt* s) { return ReadJob(s, &jobs.emplace_back()); }));
  // Both lists are in job id order: merge them.
  size_t next = 0;
  FF_RETURN_IF_ERROR(Query(files_stmt, SQLITE_OK, "job_files", [&](sqlite3_stmt* s) {
    const int64_t job_id = ColumnInt64(s, 0);
    while (next < jobs.size() && jobs[next].id < job_id) ++next;
    if (next < jobs.size() && jobs[next].id == job_id) jobs[next].files.push_back(ReadJobFile(s));
    return Status::Ok();
  }));
  return jobs;
}

Result<std::optional<JobRecord>> SqliteResourceDatabase::LoadJob(int64_t job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  FF_RETURN_IF_ERROR(RunControl(kBegin));
  auto result = LoadJobLocked(job_id);
  EndRead();
  return result;
}

Result<std::optional<JobRecord>> SqliteResourceDatabase::LoadJobLocked(int64_t job_id) {
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * job_stmt, Statement(kSelectJob));
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * files_stmt, Statement(kSelectJobFiles));
  std::optional<JobRecord> job;
  Binder bj(job_stmt);
  bj.Int(job_id);
  FF_RETURN_IF_ERROR(Query(job_stmt, bj.rc(), "jobs",
                           [&](sqlite3_stmt* s) { return ReadJob(s, &job.emplace()); }));
  if (!job) return job;
  Binder bf(files_stmt);
  bf.Int(job_id);
  FF_RETURN_IF_ERROR(Query(files_stmt, bf.rc(), "job_files", [&](sqlite3_stmt* s) {
    job->files.push_back(ReadJobFile(s));
    return Status::Ok();
  }));
  return job;
}

Result<std::vector<ChunkRecord>> SqliteResourceDatabase::LoadChunks(int64_t job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectChunks));
  std::vector<ChunkRecord> out;
  Binder b(stmt);
  b.Int(job_id);
  FF_RETURN_IF_ERROR(Query(stmt, b.rc(), "chunks",
                           [&](sqlite3_stmt* s) { return ReadChunk(s, &out.emplace_back()); }));
  return out;
}

Result<std::vector<JobEventRecord>> SqliteResourceDatabase::LoadJobEvents(int64_t job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectJobEvents));
  std::vector<JobEventRecord> out;
  Binder b(stmt);
  b.Int(job_id);
  FF_RETURN_IF_ERROR(Query(stmt, b.rc(), "job_events", [&](sqlite3_stmt* s) {
    JobEventRecord& e = out.emplace_back();
    e.job_id = ColumnInt64(s, 0);
    e.time = ColumnInt64(s, 1);
    FF_RETURN_IF_ERROR(
        ParseEnum(ColumnView(s, 2), kJobQueues, &JobQueueName, "job_events.queue", &e.queue));
    e.state = ColumnText(s, 3);
    e.note = ColumnText(s, 4);
    return Status::Ok();
  }));
  return out;
}

Result<std::vector<FrameRecord>> SqliteResourceDatabase::LoadFrames(int64_t job_id) {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectFrames));
  std::vector<FrameRecord> out;
  Binder b(stmt);
  b.Int(job_id);
  FF_RETURN_IF_ERROR(Query(stmt, b.rc(), "frames",
                           [&](sqlite3_stmt* s) { return ReadFrame(s, &out.emplace_back()); }));
  return out;
}

Result<std::optional<std::string>> SqliteResourceDatabase::GetMeta(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectMeta));
  std::optional<std::string> value;
  Binder b(stmt);
  b.Text(key);
  FF_RETURN_IF_ERROR(Query(stmt, b.rc(), "meta", [&](sqlite3_stmt* s) {
    value = ColumnText(s, 0);
    return Status::Ok();
  }));
  return value;
}

Result<int64_t> SqliteResourceDatabase::MaxJobId() {
  std::lock_guard<std::mutex> lock(mu_);
  FF_ASSIGN_OR_RETURN(sqlite3_stmt * stmt, Statement(kSelectMaxJobId));
  int64_t max_id = 0;
  FF_RETURN_IF_ERROR(Query(stmt, SQLITE_OK, "jobs", [&](sqlite3_stmt* s) {
    max_id = ColumnInt64(s, 0);
    return Status::Ok();
  }));
  return max_id;
}

Result<int> SqliteResourceDatabase::SchemaVersion() {
  std::lock_guard<std::mutex> lock(mu_);
  return SchemaVersionLocked();
}

}  // namespace

Result<std::unique_ptr<ResourceDatabase>> OpenSqliteResourceDatabase(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = "resource db '" + path +
                          "': open: " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_close_v2(db);
    return IoError(std::move(message));
  }
  auto store = std::make_unique<SqliteResourceDatabase>(db);
  Status st = store->Initialize();
  if (!st.ok()) return st.WithContext("resource db '" + path + "'");
  return std::unique_ptr<ResourceDatabase>(std::move(store));
}

}  // namespace ff
