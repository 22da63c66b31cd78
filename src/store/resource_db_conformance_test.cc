#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/status.h"
#include "store/resource_db.h"

namespace ff {
namespace {

// The conformance suite of ResourceDatabase: every backend must pass every
// TYPED_TEST below. A backend is a factory with
//   static const char* Name();
//   static Result<std::unique_ptr<ResourceDatabase>> Open(const std::string& dir);
// where Open() of the same `dir` reaches the same data (a reopen). The
// PostgreSQL backend adds its factory to ResourceDbBackends; tests of one
// backend's own mechanics (SQLite's WAL mode, file corruption) are TEST_Fs
// at the end.
struct SqliteBackend {
  static const char* Name() { return "sqlite"; }
  static Result<std::unique_ptr<ResourceDatabase>> Open(const std::string& dir) {
    return OpenSqliteResourceDatabase(dir + "/resources.db");
  }
};

// A fresh directory per test, removed afterwards.
class StoreTestBase : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ff_store_test.XXXXXX";
    ASSERT_NE(mkdtemp(templ.data()), nullptr) << templ;
    dir_ = templ;
    path_ = dir_ + "/resources.db";
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  std::string dir_;
  std::string path_;  // the SQLite file (SQLite-specific tests)
};

template <typename Backend>
class ResourceDbConformance : public StoreTestBase {
 protected:
  std::unique_ptr<ResourceDatabase> Open() {
    auto db = Backend::Open(dir_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return nullptr;
    return std::move(db).value();
  }
};

using ResourceDbBackends = ::testing::Types<SqliteBackend>;
class BackendNames {
 public:
  template <typename T>
  static std::string GetName(int) {
    return T::Name();
  }
};
TYPED_TEST_SUITE(ResourceDbConformance, ResourceDbBackends, BackendNames);

// SQLite's own mechanics.
class SqliteResourceDbTest : public StoreTestBase {
 protected:
  std::unique_ptr<ResourceDatabase> Open() {
    auto db = OpenSqliteResourceDatabase(path_);
    EXPECT_TRUE(db.ok()) << db.status().ToString();
    if (!db.ok()) return nullptr;
    return std::move(db).value();
  }
};

HostRecord MakeHost(const std::string& name) {
  HostRecord h;
  h.name = name;
  h.cpu_model = "AMD EPYC 7763";
  h.cores = 64;
  h.memory_bytes = int64_t{256} << 30;
  h.gpus = {"NVIDIA A40", "NVIDIA A40"};
  h.os = "Debian GNU/Linux 12 (bookworm) 6.1.0";
  return h;
}

RenderServerRecord MakeServer(const std::string& name, const std::string& host) {
  RenderServerRecord r;
  r.name = name;
  r.host = host;
  r.status = ServerStatus::kUp;
  r.registered_at = 1'700'000'000'000;
  r.last_heartbeat = 1'700'000'000'500;
  return r;
}

SlotRecord MakeSlot(const std::string& server, const std::string& slot_name) {
  SlotRecord s;
  s.id = server + "/" + slot_name;
  s.render_server = server;
  s.cores = 4;
  s.memory_bytes = int64_t{8} << 30;
  s.gpus = 1;
  return s;
}

// A job with two files, `chunks` chunks of `per_chunk` frames each.
WriteBatch::NewJob MakeJob(int64_t id, int chunks = 2, int per_chunk = 3) {
  WriteBatch::NewJob nj;
  nj.job.id = id;
  nj.job.name = "job " + std::to_string(id);
  nj.job.priority = 60;
  nj.job.submit_time = 1'700'000'000'000 + id;
  nj.job.profile_toml = "[job]\nname = \"x\"\n";
  nj.job.files = {{"scene.pov", std::string(64, 'a'), 1234}, {"tex/wood.png", "", 0}};
  int64_t frame = 1;
  for (int c = 0; c < chunks; ++c) {
    ChunkRecord chunk;
    chunk.job_id = id;
    chunk.index = c;
    chunk.frames =
        std::to_string(frame) + "-" + std::to_string(frame + per_chunk - 1);  // FrameSet text
    nj.chunks.push_back(chunk);
    for (int f = 0; f < per_chunk; ++f, ++frame) {
      FrameRecord fr;
      fr.job_id = id;
      fr.frame = frame;
      fr.chunk = c;
      nj.frames.push_back(fr);
    }
  }
  return nj;
}

void ExpectHostEq(const HostRecord& a, const HostRecord& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.cpu_model, b.cpu_model);
  EXPECT_EQ(a.cores, b.cores);
  EXPECT_EQ(a.memory_bytes, b.memory_bytes);
  EXPECT_EQ(a.gpus, b.gpus);
  EXPECT_EQ(a.os, b.os);
}

void ExpectSlotEq(const SlotRecord& a, const SlotRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.render_server, b.render_server);
  EXPECT_EQ(a.cores, b.cores);
  EXPECT_EQ(a.memory_bytes, b.memory_bytes);
  EXPECT_EQ(a.gpus, b.gpus);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.current_job, b.current_job);
  EXPECT_EQ(a.current_chunk, b.current_chunk);
}

void ExpectJobEq(const JobRecord& a, const JobRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.queue, b.queue);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.submit_time, b.submit_time);
  EXPECT_EQ(a.finish_time, b.finish_time);
  EXPECT_EQ(a.profile_toml, b.profile_toml);
  EXPECT_EQ(a.error, b.error);
  ASSERT_EQ(a.files.size(), b.files.size());
  for (size_t i = 0; i < a.files.size(); ++i) {
    EXPECT_EQ(a.files[i].path, b.files[i].path);
    EXPECT_EQ(a.files[i].sha256, b.files[i].sha256);
    EXPECT_EQ(a.files[i].size, b.files[i].size);
  }
}

void ExpectChunkEq(const ChunkRecord& a, const ChunkRecord& b) {
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.attempts, b.attempts);
  EXPECT_EQ(a.slot, b.slot);
  EXPECT_EQ(a.render_server, b.render_server);
  EXPECT_EQ(a.started_at, b.started_at);
  EXPECT_EQ(a.ended_at, b.ended_at);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.log_path, b.log_path);
  EXPECT_EQ(a.error, b.error);
  EXPECT_EQ(a.failed_hosts, b.failed_hosts);
}

void ExpectFrameEq(const FrameRecord& a, const FrameRecord& b) {
  EXPECT_EQ(a.job_id, b.job_id);
  EXPECT_EQ(a.frame, b.frame);
  EXPECT_EQ(a.chunk, b.chunk);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.render_server, b.render_server);
  EXPECT_EQ(a.output_path, b.output_path);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.size, b.size);
}

// Runs one SQL statement on a separate connection and returns the first
// column of the first row as text.
std::string QueryText(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  std::string out;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) == SQLITE_OK &&
        sqlite3_step(stmt) == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    }
    sqlite3_finalize(stmt);
  } else {
    out = std::string("open failed: ") + sqlite3_errmsg(db);
  }
  sqlite3_close(db);
  return out;
}

TEST(ResourceDbNames, EnumNamesAndFinalStates) {
  EXPECT_STREQ(ServerStatusName(ServerStatus::kUp), "up");
  EXPECT_STREQ(ServerStatusName(ServerStatus::kDown), "down");
  EXPECT_STREQ(ServerStatusName(ServerStatus::kDraining), "draining");
  EXPECT_STREQ(SlotStateName(SlotState::kIdle), "idle");
  EXPECT_STREQ(SlotStateName(SlotState::kBusy), "busy");
  EXPECT_STREQ(SlotStateName(SlotState::kDown), "down");
  EXPECT_STREQ(JobStateName(JobState::kQueued), "queued");
  EXPECT_STREQ(JobStateName(JobState::kRunning), "running");
  EXPECT_STREQ(JobStateName(JobState::kDone), "done");
  EXPECT_STREQ(JobStateName(JobState::kFailed), "failed");
  EXPECT_STREQ(JobStateName(JobState::kCancelled), "cancelled");
  EXPECT_STREQ(ChunkStateName(ChunkState::kRunning), "running");
  EXPECT_STREQ(ChunkStateName(ChunkState::kCancelled), "cancelled");
  EXPECT_STREQ(FrameStateName(FrameState::kDone), "done");
  EXPECT_STREQ(FrameStateName(FrameState::kFailed), "failed");
  EXPECT_FALSE(JobStateFinal(JobState::kQueued));
  EXPECT_FALSE(JobStateFinal(JobState::kRunning));
  EXPECT_TRUE(JobStateFinal(JobState::kDone));
  EXPECT_TRUE(JobStateFinal(JobState::kFailed));
  EXPECT_TRUE(JobStateFinal(JobState::kCancelled));
}

TEST(WriteBatchTest, EmptyAndAppendKeepsOrder) {
  WriteBatch a;
  EXPECT_TRUE(a.empty());
  a.meta.emplace_back("k", "1");
  EXPECT_FALSE(a.empty());
  WriteBatch b;
  b.meta.emplace_back("k", "2");
  b.hosts.push_back(MakeHost("h1"));
  a.Append(std::move(b));
  ASSERT_EQ(a.meta.size(), 2u);
  EXPECT_EQ(a.meta[0].second, "1");
  EXPECT_EQ(a.meta[1].second, "2");
  EXPECT_EQ(a.hosts.size(), 1u);

  WriteBatch only_frames;
  only_frames.frame_updates.emplace_back();
  EXPECT_FALSE(only_frames.empty());
  WriteBatch c;
  c.Append(std::move(only_frames));
  EXPECT_EQ(c.frame_updates.size(), 1u);
}

TYPED_TEST(ResourceDbConformance, FreshDatabaseIsEmptyAndMigrated) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  auto version = db->SchemaVersion();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_GE(*version, 1);
  EXPECT_TRUE(db->LoadHosts()->empty());
  EXPECT_TRUE(db->LoadPackages()->empty());
  EXPECT_TRUE(db->LoadRenderServers()->empty());
  EXPECT_TRUE(db->LoadSlots()->empty());
  EXPECT_TRUE(db->LoadJobs()->empty());
  EXPECT_FALSE(db->LoadJob(1)->has_value());
  EXPECT_TRUE(db->LoadChunks(1)->empty());
  EXPECT_TRUE(db->LoadFrames(1)->empty());
  EXPECT_FALSE(db->GetMeta("anything")->has_value());
  EXPECT_EQ(*db->MaxJobId(), 0);
  EXPECT_TRUE(db->Commit(WriteBatch{}).ok());
}

TEST_F(SqliteResourceDbTest, WalModeIsEnabled) {
  auto db = Open();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(QueryText(path_, "PRAGMA journal_mode"), "wal");
}

TYPED_TEST(ResourceDbConformance, HostsRoundTripAndUpsert) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  HostRecord a = MakeHost("zeta");
  HostRecord b = MakeHost("alpha");
  b.gpus = {};
  HostRecord c = MakeHost("mid");
  c.gpus = {""};  // one GPU of unknown model stays distinct from none
  WriteBatch batch;
  batch.hosts = {a, b, c};
  ASSERT_TRUE(db->Commit(batch).ok());

  auto hosts = db->LoadHosts();
  ASSERT_TRUE(hosts.ok()) << hosts.status().ToString();
  ASSERT_EQ(hosts->size(), 3u);
  ExpectHostEq((*hosts)[0], b);  // name order
  ExpectHostEq((*hosts)[1], c);
  ExpectHostEq((*hosts)[2], a);

  a.cores = 128;
  a.gpus = {"NVIDIA L40S"};
  WriteBatch update;
  update.hosts = {a};
  ASSERT_TRUE(db->Commit(update).ok());
  hosts = db->LoadHosts();
  ASSERT_EQ(hosts->size(), 3u);
  ExpectHostEq((*hosts)[2], a);
}

TEST_F(SqliteResourceDbTest, RejectsListEntriesWithNewlines) {
  auto db = Open();
  ASSERT_NE(db, nullptr);
  HostRecord h = MakeHost("h");
  h.gpus = {"bad\nname"};
  WriteBatch batch;
  batch.hosts = {h};
  Status st = db->Commit(batch);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("hosts.gpus"), std::string::npos) << st.message();
  EXPECT_TRUE(db->LoadHosts()->empty());
}

TYPED_TEST(ResourceDbConformance, PackagesReplaceAllOfHost) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.packages.push_back({"h1",
                            {{"h1", "povray", "3.7.0.10", "/usr/bin/povray", "povray"},
                             {"", "blender", "3.4.1", "/usr/bin/blender", "blender"}}});
  batch.packages.push_back({"h2", {{"h2", "ffmpeg", "5.1", "/usr/bin/ffmpeg", "command"}}});
  ASSERT_TRUE(db->Commit(batch).ok());

  auto pkgs = db->LoadPackages();
  ASSERT_TRUE(pkgs.ok()) << pkgs.status().ToString();
  ASSERT_EQ(pkgs->size(), 3u);  // host, name order
  EXPECT_EQ((*pkgs)[0].host, "h1");
  EXPECT_EQ((*pkgs)[0].name, "blender");
  EXPECT_EQ((*pkgs)[0].version, "3.4.1");
  EXPECT_EQ((*pkgs)[1].name, "povray");
  EXPECT_EQ((*pkgs)[1].executable, "/usr/bin/povray");
  EXPECT_EQ((*pkgs)[1].kind, "povray");
  EXPECT_EQ((*pkgs)[2].host, "h2");

  // A new set for h1 drops blender; h2 is untouched.
  WriteBatch replace;
  replace.packages.push_back({"h1", {{"h1", "povray", "3.7.1", "/opt/povray", "povray"}}});
  ASSERT_TRUE(db->Commit(replace).ok());
  pkgs = db->LoadPackages();
  ASSERT_EQ(pkgs->size(), 2u);
  EXPECT_EQ((*pkgs)[0].name, "povray");
  EXPECT_EQ((*pkgs)[0].version, "3.7.1");
  EXPECT_EQ((*pkgs)[1].name, "ffmpeg");

  // An empty set removes every package of the host.
  WriteBatch clear;
  clear.packages.push_back({"h1", {}});
  ASSERT_TRUE(db->Commit(clear).ok());
  pkgs = db->LoadPackages();
  ASSERT_EQ(pkgs->size(), 1u);
  EXPECT_EQ((*pkgs)[0].host, "h2");

  // A package naming another host inside a host's set is rejected.
  WriteBatch wrong;
  wrong.packages.push_back({"h1", {{"h2", "povray", "1", "/x", "povray"}}});
  EXPECT_EQ(db->Commit(wrong).code(), StatusCode::kInvalidArgument);
}

TYPED_TEST(ResourceDbConformance, RenderServersRoundTripAndUpsert) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.render_servers = {MakeServer("rs-b", "h2"), MakeServer("rs-a", "h1")};
  batch.render_servers[0].status = ServerStatus::kDraining;
  ASSERT_TRUE(db->Commit(batch).ok());
  auto servers = db->LoadRenderServers();
  ASSERT_TRUE(servers.ok()) << servers.status().ToString();
  ASSERT_EQ(servers->size(), 2u);
  EXPECT_EQ((*servers)[0].name, "rs-a");
  EXPECT_EQ((*servers)[0].host, "h1");
  EXPECT_EQ((*servers)[0].status, ServerStatus::kUp);
  EXPECT_EQ((*servers)[0].registered_at, 1'700'000'000'000);
  EXPECT_EQ((*servers)[0].last_heartbeat, 1'700'000'000'500);
  EXPECT_EQ((*servers)[1].name, "rs-b");
  EXPECT_EQ((*servers)[1].status, ServerStatus::kDraining);

  // Upserting a server keeps its slots.
  WriteBatch slots;
  slots.slot_sets.push_back({"rs-a", {MakeSlot("rs-a", "0")}});
  ASSERT_TRUE(db->Commit(slots).ok());
  WriteBatch heartbeat;
  RenderServerRecord a = MakeServer("rs-a", "h1");
  a.status = ServerStatus::kDown;
  a.last_heartbeat = 1'700'000'009'000;
  heartbeat.render_servers = {a};
  ASSERT_TRUE(db->Commit(heartbeat).ok());
  servers = db->LoadRenderServers();
  EXPECT_EQ((*servers)[0].status, ServerStatus::kDown);
  EXPECT_EQ((*servers)[0].last_heartbeat, 1'700'000'009'000);
  EXPECT_EQ(db->LoadSlots()->size(), 1u);
}

TYPED_TEST(ResourceDbConformance, SlotSetsReplaceAndSlotUpdates) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.render_servers = {MakeServer("rs1", "h1"), MakeServer("rs2", "h2")};
  SlotRecord s0 = MakeSlot("rs1", "0");
  SlotRecord s1 = MakeSlot("rs1", "1");
  s1.state = SlotState::kBusy;
  s1.current_job = 7;
  s1.current_chunk = 3;
  SlotRecord t0 = MakeSlot("rs2", "0");
  t0.render_server = "";  // taken from the set
  batch.slot_sets.push_back({"rs1", {s0, s1}});
  batch.slot_sets.push_back({"rs2", {t0}});
  ASSERT_TRUE(db->Commit(batch).ok());

  auto slots = db->LoadSlots();
  ASSERT_TRUE(slots.ok()) << slots.status().ToString();
  ASSERT_EQ(slots->size(), 3u);  // id order
  ExpectSlotEq((*slots)[0], s0);
  ExpectSlotEq((*slots)[1], s1);
  t0.render_server = "rs2";
  ExpectSlotEq((*slots)[2], t0);

  // Replacing rs1's slots drops rs1/1 and adds rs1/2; rs2 is untouched.
  SlotRecord s2 = MakeSlot("rs1", "2");
  s2.cores = 16;
  WriteBatch replace;
  replace.slot_sets.push_back({"rs1", {s0, s2}});
  ASSERT_TRUE(db->Commit(replace).ok());
  slots = db->LoadSlots();
  ASSERT_EQ(slots->size(), 3u);
  EXPECT_EQ((*slots)[0].id, "rs1/0");
  ExpectSlotEq((*slots)[1], s2);
  EXPECT_EQ((*slots)[2].id, "rs2/0");

  // A slot update changes only state and current job/chunk.
  SlotRecord update = s2;
  update.cores = 99;  // ignored
  update.state = SlotState::kBusy;
  update.current_job = 42;
  update.current_chunk = 5;
  WriteBatch upd;
  upd.slot_updates = {update};
  ASSERT_TRUE(db->Commit(upd).ok());
  slots = db->LoadSlots();
  EXPECT_EQ((*slots)[1].state, SlotState::kBusy);
  EXPECT_EQ((*slots)[1].current_job, 42);
  EXPECT_EQ((*slots)[1].current_chunk, 5);
  EXPECT_EQ((*slots)[1].cores, 16);

  // Updating a slot that does not exist fails.
  WriteBatch unknown;
  unknown.slot_updates = {MakeSlot("rs1", "missing")};
  Status st = db->Commit(unknown);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("slots"), std::string::npos) << st.message();
}

TYPED_TEST(ResourceDbConformance, SlotsNeedTheirRenderServer) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.slot_sets.push_back({"ghost", {MakeSlot("ghost", "0")}});
  Status st = db->Commit(batch);
  EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition) << st.ToString();
  EXPECT_NE(st.message().find("slots"), std::string::npos) << st.message();
  EXPECT_TRUE(db->LoadSlots()->empty());
}

TYPED_TEST(ResourceDbConformance, NewJobRoundTrip) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch::NewJob nj = MakeJob(5);
  nj.chunks[1].state = ChunkState::kRunning;
  nj.chunks[1].attempts = 2;
  nj.chunks[1].slot = "rs1/0";
  nj.chunks[1].render_server = "rs1";
  nj.chunks[1].started_at = 11;
  nj.chunks[1].ended_at = 12;
  nj.chunks[1].exit_code = -9;
  nj.chunks[1].log_path = "logs/5/1.log";
  nj.chunks[1].error = "killed";
  nj.chunks[1].failed_hosts = {"h1", "h2"};
  nj.frames[4].state = FrameState::kDone;
  nj.frames[4].render_server = "rs1";
  nj.frames[4].output_path = "out/5/frame0005.png";
  nj.frames[4].sha256 = std::string(64, 'f');
  nj.frames[4].size = 4096;
  nj.frames[5].job_id = 0;  // taken from the job
  WriteBatch batch;
  batch.new_jobs.push_back(nj);
  ASSERT_TRUE(db->Commit(batch).ok());

  auto job = db->LoadJob(5);
  ASSERT_TRUE(job.ok()) << job.status().ToString();
  ASSERT_TRUE(job->has_value());
  ExpectJobEq(**job, nj.job);

  auto chunks = db->LoadChunks(5);
  ASSERT_TRUE(chunks.ok()) << chunks.status().ToString();
  ASSERT_EQ(chunks->size(), 2u);
  ExpectChunkEq((*chunks)[0], nj.chunks[0]);
  ExpectChunkEq((*chunks)[1], nj.chunks[1]);

  auto frames = db->LoadFrames(5);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), 6u);
  nj.frames[5].job_id = 5;
  for (size_t i = 0; i < frames->size(); ++i) ExpectFrameEq((*frames)[i], nj.frames[i]);

  EXPECT_FALSE(db->LoadJob(6)->has_value());
  EXPECT_TRUE(db->LoadFrames(6)->empty());
}

TYPED_TEST(ResourceDbConformance, LoadJobsInIdOrderWithFiles) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.new_jobs.push_back(MakeJob(9));
  batch.new_jobs.push_back(MakeJob(2));
  WriteBatch::NewJob no_files = MakeJob(5);
  no_files.job.files.clear();
  batch.new_jobs.push_back(no_files);
  ASSERT_TRUE(db->Commit(batch).ok());

  auto jobs = db->LoadJobs();
  ASSERT_TRUE(jobs.ok()) << jobs.status().ToString();
  ASSERT_EQ(jobs->size(), 3u);
  ExpectJobEq((*jobs)[0], MakeJob(2).job);
  ExpectJobEq((*jobs)[1], no_files.job);
  ExpectJobEq((*jobs)[2], MakeJob(9).job);
}

TYPED_TEST(ResourceDbConformance, JobChunkAndFrameUpdates) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch create;
  create.new_jobs.push_back(MakeJob(1));
  ASSERT_TRUE(db->Commit(create).ok());

  JobRecord job = MakeJob(1).job;
  job.name = "renamed";  // not updatable
  job.state = JobState::kFailed;
  job.queue = JobQueue::kNone;
  job.priority = 10;
  job.finish_time = 99;
  job.error = "chunk 1 failed on every host";

  ChunkRecord chunk;
  chunk.job_id = 1;
  chunk.index = 1;
  chunk.frames = "4-6";
  chunk.state = ChunkState::kFailed;
  chunk.attempts = 3;
  chunk.slot = "rs2/1";
  chunk.render_server = "rs2";
  chunk.started_at = 50;
  chunk.ended_at = 60;
  chunk.exit_code = 1;
  chunk.log_path = "logs/1/1.log";
  chunk.error = "povray: parse error";
  chunk.failed_hosts = {"h1", "h2", "h3"};

  FrameRecord frame;
  frame.job_id = 1;
  frame.frame = 2;
  frame.chunk = 0;
  frame.state = FrameState::kDone;
  frame.render_server = "rs1";
  frame.output_path = "out/1/0002.png";
  frame.sha256 = std::string(64, '0');
  frame.size = 777;

  WriteBatch update;
  update.job_updates = {job};
  update.chunk_updates = {chunk};
  update.frame_updates = {frame};
  ASSERT_TRUE(db->Commit(update).ok());

  auto loaded = db->LoadJob(1);
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  job.name = "job 1";
  ExpectJobEq(**loaded, job);
  auto chunks = db->LoadChunks(1);
  ASSERT_EQ(chunks->size(), 2u);
  ExpectChunkEq((*chunks)[1], chunk);
  EXPECT_EQ((*chunks)[0].state, ChunkState::kQueued);
  auto frames = db->LoadFrames(1);
  ASSERT_EQ(frames->size(), 6u);
  ExpectFrameEq((*frames)[1], frame);
  EXPECT_EQ((*frames)[0].state, FrameState::kQueued);

  // Updates of rows that do not exist fail, naming the table.
  WriteBatch missing_job;
  job.id = 2;
  missing_job.job_updates = {job};
  EXPECT_EQ(db->Commit(missing_job).code(), StatusCode::kNotFound);
  WriteBatch missing_chunk;
  chunk.index = 7;
  missing_chunk.chunk_updates = {chunk};
  Status st = db->Commit(missing_chunk);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("chunks"), std::string::npos) << st.message();
}

TYPED_TEST(ResourceDbConformance, LaterOperationsWinWithinABatch) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  HostRecord h1 = MakeHost("h1");
  HostRecord h1_later = MakeHost("h1");
  h1_later.cores = 2;
  batch.hosts = {h1, h1_later};
  batch.packages.push_back({"h1", {{"h1", "povray", "1", "/a", "povray"}}});
  batch.packages.push_back({"h1", {{"h1", "blender", "2", "/b", "blender"}}});
  RenderServerRecord rs = MakeServer("rs1", "h1");
  RenderServerRecord rs_later = rs;
  rs_later.status = ServerStatus::kDraining;
  batch.render_servers = {rs, rs_later};
  batch.slot_sets.push_back({"rs1", {MakeSlot("rs1", "0"), MakeSlot("rs1", "1")}});
  batch.slot_sets.push_back({"rs1", {MakeSlot("rs1", "9")}});
  SlotRecord busy = MakeSlot("rs1", "9");
  busy.state = SlotState::kBusy;
  busy.current_job = 1;
  busy.current_chunk = 0;
  SlotRecord idle_again = MakeSlot("rs1", "9");
  batch.slot_updates = {busy, idle_again};
  batch.new_jobs.push_back(MakeJob(1));
  JobRecord running = MakeJob(1).job;
  running.state = JobState::kRunning;
  JobRecord done = running;
  done.state = JobState::kDone;
  done.queue = JobQueue::kNone;
  done.finish_time = 5;
  batch.job_updates = {running, done};
  ChunkRecord c_run = MakeJob(1).chunks[0];
  c_run.state = ChunkState::kRunning;
  ChunkRecord c_done = c_run;
  c_done.state = ChunkState::kDone;
  batch.chunk_updates = {c_run, c_done};
  FrameRecord f_run = MakeJob(1).frames[0];
  f_run.state = FrameState::kRunning;
  FrameRecord f_done = f_run;
  f_done.state = FrameState::kDone;
  f_done.size = 10;
  batch.frame_updates = {f_run, f_done};
  batch.meta = {{"k", "first"}, {"k", "second"}};
  ASSERT_TRUE(db->Commit(batch).ok());

  EXPECT_EQ((*db->LoadHosts())[0].cores, 2);
  auto pkgs = db->LoadPackages();
  ASSERT_EQ(pkgs->size(), 1u);
  EXPECT_EQ((*pkgs)[0].name, "blender");
  EXPECT_EQ((*db->LoadRenderServers())[0].status, ServerStatus::kDraining);
  auto slots = db->LoadSlots();
  ASSERT_EQ(slots->size(), 1u);
  EXPECT_EQ((*slots)[0].id, "rs1/9");
  EXPECT_EQ((*slots)[0].state, SlotState::kIdle);
  EXPECT_EQ((*slots)[0].current_job, 0);
  auto job = db->LoadJob(1);
  EXPECT_EQ((*job)->state, JobState::kDone);
  EXPECT_EQ((*job)->finish_time, 5);
  EXPECT_EQ((*db->LoadChunks(1))[0].state, ChunkState::kDone);
  EXPECT_EQ((*db->LoadFrames(1))[0].state, FrameState::kDone);
  EXPECT_EQ((*db->LoadFrames(1))[0].size, 10);
  EXPECT_EQ(**db->GetMeta("k"), "second");
}

// Everything a batch writes before its failing operation, in every table.
WriteBatch BatchWithEverything() {
  WriteBatch batch;
  batch.hosts = {MakeHost("h1")};
  batch.packages.push_back({"h1", {{"h1", "povray", "1", "/a", "povray"}}});
  batch.render_servers = {MakeServer("rs1", "h1")};
  batch.slot_sets.push_back({"rs1", {MakeSlot("rs1", "0")}});
  batch.new_jobs.push_back(MakeJob(1));
  batch.meta = {{"k", "v"}};
  return batch;
}

void ExpectNothingStored(ResourceDatabase& db) {
  EXPECT_TRUE(db.LoadHosts()->empty());
  EXPECT_TRUE(db.LoadPackages()->empty());
  EXPECT_TRUE(db.LoadRenderServers()->empty());
  EXPECT_TRUE(db.LoadSlots()->empty());
  EXPECT_TRUE(db.LoadJobs()->empty());
  EXPECT_TRUE(db.LoadChunks(1)->empty());
  EXPECT_TRUE(db.LoadFrames(1)->empty());
  EXPECT_FALSE(db.GetMeta("k")->has_value());
  EXPECT_EQ(*db.MaxJobId(), 0);
}

TYPED_TEST(ResourceDbConformance, FailedFrameUpdateRollsBackTheWholeBatch) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch = BatchWithEverything();
  FrameRecord missing;
  missing.job_id = 1;
  missing.frame = 1000;  // not a frame of job 1
  batch.frame_updates = {MakeJob(1).frames[0], missing};
  Status st = db->Commit(batch);
  EXPECT_EQ(st.code(), StatusCode::kNotFound);
  EXPECT_NE(st.message().find("frames"), std::string::npos) << st.message();
  ExpectNothingStored(*db);

  // The connection is usable afterwards.
  ASSERT_TRUE(db->Commit(BatchWithEverything()).ok());
  EXPECT_EQ(db->LoadFrames(1)->size(), 6u);
}

TYPED_TEST(ResourceDbConformance, DuplicateNewJobRollsBackTheWholeBatch) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch = BatchWithEverything();
  batch.new_jobs.push_back(MakeJob(1));
  Status st = db->Commit(batch);
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  EXPECT_NE(st.message().find("jobs"), std::string::npos) << st.message();
  ExpectNothingStored(*db);
}

TYPED_TEST(ResourceDbConformance, DuplicateFrameKeyRollsBackTheWholeBatch) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch = BatchWithEverything();
  WriteBatch::NewJob second = MakeJob(2);
  second.frames.push_back(second.frames.front());
  batch.new_jobs.push_back(second);
  Status st = db->Commit(batch);
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists);
  // The message names the table and carries SQLite's own text.
  EXPECT_NE(st.message().find("frames"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("UNIQUE constraint failed"), std::string::npos) << st.message();
  ExpectNothingStored(*db);
}

TYPED_TEST(ResourceDbConformance, ExistingJobIdIsRejectedAndOldJobKept) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch first;
  first.new_jobs.push_back(MakeJob(3));
  ASSERT_TRUE(db->Commit(first).ok());
  WriteBatch again;
  again.meta = {{"k", "v"}};
  WriteBatch::NewJob dup = MakeJob(3, 1, 1);
  dup.job.name = "impostor";
  again.new_jobs.push_back(dup);
  EXPECT_EQ(db->Commit(again).code(), StatusCode::kAlreadyExists);
  EXPECT_EQ((*db->LoadJob(3))->name, "job 3");
  EXPECT_EQ(db->LoadFrames(3)->size(), 6u);
  EXPECT_FALSE(db->GetMeta("k")->has_value());
}

TYPED_TEST(ResourceDbConformance, RejectsBadJobIds) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch zero;
  zero.new_jobs.push_back(MakeJob(0));
  EXPECT_EQ(db->Commit(zero).code(), StatusCode::kInvalidArgument);
  WriteBatch mismatch;
  WriteBatch::NewJob nj = MakeJob(4);
  nj.frames[2].job_id = 5;
  mismatch.new_jobs.push_back(nj);
  Status st = db->Commit(mismatch);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("frames"), std::string::npos) << st.message();
  EXPECT_TRUE(db->LoadJobs()->empty());
}

TYPED_TEST(ResourceDbConformance, ReopenKeepsDataAndSchemaVersion) {
  int version = 0;
  {
    auto db = this->Open();
    ASSERT_NE(db, nullptr);
    version = *db->SchemaVersion();
    WriteBatch batch = BatchWithEverything();
    ASSERT_TRUE(db->Commit(batch).ok());
  }
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(*db->SchemaVersion(), version);
  EXPECT_EQ(db->LoadHosts()->size(), 1u);
  EXPECT_EQ(db->LoadPackages()->size(), 1u);
  EXPECT_EQ(db->LoadRenderServers()->size(), 1u);
  EXPECT_EQ(db->LoadSlots()->size(), 1u);
  ASSERT_EQ(db->LoadJobs()->size(), 1u);
  ExpectJobEq((*db->LoadJobs())[0], MakeJob(1).job);
  EXPECT_EQ(db->LoadChunks(1)->size(), 2u);
  EXPECT_EQ(db->LoadFrames(1)->size(), 6u);
  EXPECT_EQ(**db->GetMeta("k"), "v");
  EXPECT_EQ(*db->MaxJobId(), 1);
  // Migrations ran once each.
  if constexpr (std::is_same_v<TypeParam, SqliteBackend>) {
    EXPECT_EQ(QueryText(this->path_, "SELECT COUNT(*) = MAX(version) FROM schema_migrations"), "1");
  }
}

TEST_F(SqliteResourceDbTest, RefusesSchemaNewerThanTheBuild) {
  {
    auto db = Open();
    ASSERT_NE(db, nullptr);
  }
  EXPECT_EQ(QueryText(path_,
                      "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)"
                      " RETURNING version"),
            "9999");
  auto db = OpenSqliteResourceDatabase(path_);
  ASSERT_FALSE(db.ok());
  EXPECT_EQ(db.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(db.status().message().find("9999"), std::string::npos) << db.status().message();
}

TEST_F(SqliteResourceDbTest, OpenFailsCleanlyOnGarbage) {
  std::FILE* f = std::fopen(path_.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::string junk(8192, 'x');
  ASSERT_EQ(std::fwrite(junk.data(), 1, junk.size(), f), junk.size());
  std::fclose(f);
  auto db = OpenSqliteResourceDatabase(path_);
  ASSERT_FALSE(db.ok());
  EXPECT_NE(db.status().message().find(path_), std::string::npos) << db.status().message();

  auto missing_dir = OpenSqliteResourceDatabase(dir_ + "/no/such/dir/x.db");
  EXPECT_FALSE(missing_dir.ok());
}

TYPED_TEST(ResourceDbConformance, MaxJobIdIsTheLargestEverStored) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.new_jobs.push_back(MakeJob(7, 1, 1));
  batch.new_jobs.push_back(MakeJob(3, 1, 1));
  ASSERT_TRUE(db->Commit(batch).ok());
  EXPECT_EQ(*db->MaxJobId(), 7);
  WriteBatch more;
  more.new_jobs.push_back(MakeJob(1'000'000'000'000, 1, 1));
  ASSERT_TRUE(db->Commit(more).ok());
  EXPECT_EQ(*db->MaxJobId(), 1'000'000'000'000);
}

TYPED_TEST(ResourceDbConformance, GetMetaReturnsLatestValue) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.meta = {{"site.name", "paris"}, {"empty", ""}};
  ASSERT_TRUE(db->Commit(batch).ok());
  EXPECT_EQ(**db->GetMeta("site.name"), "paris");
  auto empty = db->GetMeta("empty");
  ASSERT_TRUE(empty.ok() && empty->has_value());  // present, empty value
  EXPECT_EQ(**empty, "");
  EXPECT_FALSE(db->GetMeta("site")->has_value());
  WriteBatch update;
  update.meta = {{"site.name", "lyon"}};
  ASSERT_TRUE(db->Commit(update).ok());
  EXPECT_EQ(**db->GetMeta("site.name"), "lyon");
}

TYPED_TEST(ResourceDbConformance, LargeJobInOneBatch) {
  constexpr int kChunks = 2'000;
  constexpr int kPerChunk = 100;  // 200,000 frames
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  WriteBatch batch;
  batch.new_jobs.push_back(MakeJob(77, kChunks, kPerChunk));
  for (FrameRecord& f : batch.new_jobs[0].frames) {
    f.output_path = "out/77/" + std::to_string(f.frame) + ".png";
  }
  ASSERT_TRUE(db->Commit(batch).ok());

  auto frames = db->LoadFrames(77);
  ASSERT_TRUE(frames.ok()) << frames.status().ToString();
  ASSERT_EQ(frames->size(), static_cast<size_t>(kChunks) * kPerChunk);
  for (size_t i = 0; i < frames->size(); ++i) {
    const FrameRecord& f = (*frames)[i];
    ASSERT_EQ(f.job_id, 77);
    ASSERT_EQ(f.frame, static_cast<int64_t>(i) + 1);
    ASSERT_EQ(f.chunk, static_cast<int>(i / kPerChunk));
    ASSERT_EQ(f.state, FrameState::kQueued);
    ASSERT_EQ(f.output_path, "out/77/" + std::to_string(i + 1) + ".png");
  }
  auto chunks = db->LoadChunks(77);
  ASSERT_EQ(chunks->size(), static_cast<size_t>(kChunks));
  EXPECT_EQ(chunks->back().index, kChunks - 1);
  EXPECT_EQ(chunks->back().frames, "199901-200000");
}

TYPED_TEST(ResourceDbConformance, ConcurrentCommitsAndReadsAreSerialised) {
  auto db = this->Open();
  ASSERT_NE(db, nullptr);
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::vector<std::thread> threads;
  std::vector<int> failures(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        WriteBatch batch;
        int64_t id = int64_t{t} * kPerThread + i + 1;
        batch.new_jobs.push_back(MakeJob(id, 1, 2));
        batch.meta = {{"thread." + std::to_string(t), std::to_string(i)}};
        if (!db->Commit(batch).ok()) ++failures[t];
        if (!db->LoadFrames(id).ok()) ++failures[t];
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(failures[t], 0) << "thread " << t;
    EXPECT_EQ(**db->GetMeta("thread." + std::to_string(t)), std::to_string(kPerThread - 1));
  }
  EXPECT_EQ(db->LoadJobs()->size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*db->MaxJobId(), kThreads * kPerThread);
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

TEST_F(SqliteResourceDbTest, OpenResourceDatabaseByUrl) {
  // "" and "sqlite:" open the site's default path; "sqlite:/abs" that file.
  ASSERT_TRUE(OpenResourceDatabase("", path_).ok());
  ASSERT_TRUE(OpenResourceDatabase("sqlite:", path_).ok());
  auto other = OpenResourceDatabase("sqlite:" + dir_ + "/other.db", path_);
  ASSERT_TRUE(other.ok()) << other.status().message();
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/other.db"));
  EXPECT_EQ(CheckResourceDatabaseUrl("sqlite:relative.db").code(), StatusCode::kInvalidArgument);
  Status pg = CheckResourceDatabaseUrl("postgresql://db.example/frameflow");
  EXPECT_EQ(pg.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(pg.message().find("'postgresql' database is not supported"), std::string::npos)
      << pg.message();
  EXPECT_NE(OpenResourceDatabase("mysql://x", path_).status().message().find("database.url"),
            std::string::npos);
}

}  // namespace
}  // namespace ff
