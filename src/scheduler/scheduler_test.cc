// Unit tests of the dispatch core: ff::Scheduler driven directly (no gRPC)
// with a FakeClock, a real SQLite site root in a fresh temp directory and
// fake render server links that record what the scheduler sends them.
#include "scheduler/scheduler.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "base/status.h"
#include "scheduler/chunk_planner.h"
#include "scheduler/recording_link.h"
#include "store/blob_store.h"
#include "store/resource_db.h"
#include "util/fs.h"
#include "util/sha256.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;

// The schedule server's end of a render server stream: records every
// message (thread-safe) so tests can inspect what was sent. Messages leave
// the scheduler once their state change is durable (group commit), so every
// read first waits for that (`flush`).
using FakeLink = RecordingLink;

// A job description; Toml() renders it in the format of job_profile.h.
struct Desc {
  std::string name = "shot";
  std::string frames = "1-4";
  int chunk_size = 1;  // 0: "auto"
  int priority = 50;
  int max_attempts = 0;  // 0: site default
  std::string placement;
  std::string package = "povray";
  std::string version;  // constraint, empty: any
  int cores = 1;
  std::string memory;
  int gpus = 0;
  std::vector<std::string> files;  // associated files besides the scene

  std::string Toml() const {
    std::string t = "name = \"" + name + "\"\n";
    t += "priority = " + std::to_string(priority) + "\n";
    t += "frames = \"" + frames + "\"\n";
    t += chunk_size == 0 ? std::string("chunk_size = \"auto\"\n")
                         : "chunk_size = " + std::to_string(chunk_size) + "\n";
    if (max_attempts > 0) t += "max_attempts = " + std::to_string(max_attempts) + "\n";
    if (!placement.empty()) t += "placement = \"" + placement + "\"\n";
    if (!files.empty()) {
      t += "files = [";
      for (size_t i = 0; i < files.size(); ++i) t += (i ? ", \"" : "\"") + files[i] + "\"";
      t += "]\n";
    }
    t += "\n[package]\nname = \"" + package + "\"\n";
    if (!version.empty()) t += "version = \"" + version + "\"\n";
    t += "\n[render]\nscene = \"scene.pov\"\noutput = \"out_####.png\"\n";
    t += "\n[requirements]\ncores = " + std::to_string(cores) + "\n";
    if (!memory.empty()) t += "memory = \"" + memory + "\"\n";
    t += "gpus = " + std::to_string(gpus) + "\n";
    return t;
  }
  // Every file the description names.
  std::vector<std::string> AllFiles() const {
    std::vector<std::string> all = {"scene.pov"};
    all.insert(all.end(), files.begin(), files.end());
    return all;
  }
};

std::string OutputName(int64_t frame) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "out_%04lld.png", static_cast<long long>(frame));
  return buf;
}

pb::SlotSpec SlotOf(const std::string& name, int cores = 4, int64_t memory = int64_t{16} << 30,
                    int gpus = 0) {
  pb::SlotSpec s;
  s.set_name(name);
  s.set_cores(cores);
  s.set_memory_bytes(memory);
  s.set_gpus(gpus);
  return s;
}

pb::Register MakeRegister(const std::string& server, const std::string& host,
                          std::vector<pb::SlotSpec> slots = {SlotOf("s0")},
                          std::vector<std::pair<std::string, std::string>> packages = {
                              {"povray", "3.7.0.10"}}) {
  pb::Register reg;
  reg.set_render_server(server);
  reg.set_host(host);
  reg.mutable_hardware()->set_cpu_model("Test CPU");
  reg.mutable_hardware()->set_cores(16);
  reg.mutable_hardware()->set_memory_bytes(int64_t{64} << 30);
  reg.mutable_hardware()->set_os("TestOS 1.0");
  for (const auto& [name, version] : packages) {
    pb::Package* p = reg.add_packages();
    p->set_name(name);
    p->set_version(version);
    p->set_executable("/usr/bin/" + name);
    p->set_kind(name == "povray" || name == "blender" ? name : "command");
  }
  for (auto& s : slots) *reg.add_slots() = s;
  return reg;
}

void AddRunning(pb::Register& reg, const pb::Assignment& a) {
  pb::RunningChunk* r = reg.add_running();
  r->set_job_id(a.job_id());
  r->set_chunk(a.chunk());
  r->set_attempt(a.attempt());
  r->set_slot(a.slot());
}

const pb::ChunkInfo* ChunkOf(const pb::JobInfo& info, int index) {
  for (const auto& c : info.chunks()) {
    if (c.index() == index) return &c;
  }
  return nullptr;
}

const pb::FrameInfo* FrameOf(const pb::JobInfo& info, int64_t frame) {
  for (const auto& f : info.frame_info()) {
    if (f.frame() == frame) return &f;
  }
  return nullptr;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    spdlog::set_level(spdlog::level::err);
    auto dir = MakeTempDir("ff_scheduler_test");
    ASSERT_TRUE(dir.ok()) << dir.status().ToString();
    root_ = *dir;
    config_.site_name = "testsite";
    config_.root = root_;
    config_.heartbeat_timeout_ms = 5000;
    config_.heartbeat_interval_ms = 1000;
    config_.reconnect_grace_ms = 2000;
    config_.max_attempts = 3;
    ASSERT_NO_FATAL_FAILURE(Open());
  }
  void TearDown() override {
    sched_.reset();
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  void Open(Clock* clock = nullptr) {
    auto s = Scheduler::Open(config_, clock ? clock : &clock_);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    sched_ = std::move(s).value();
  }
  // Simulates a schedule server restart on the same site root.
  void Reopen(Clock* clock = nullptr) {
    sched_.reset();
    ASSERT_NO_FATAL_FAILURE(Open(clock));
  }

  // Puts `data` into the site's file service; returns its digest.
  std::string Upload(const std::string& data) {
    std::string sha = Sha256Hex(data);
    if (sched_->blobs()->Has(sha)) return sha;
    auto w = sched_->blobs()->BeginWrite(sha, static_cast<int64_t>(data.size()));
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    if (!w.ok()) return sha;
    Status st = (*w)->Append(data);
    EXPECT_TRUE(st.ok()) << st.ToString();
    st = (*w)->Commit();
    EXPECT_TRUE(st.ok()) << st.ToString();
    return sha;
  }

  // Builds a request for `d`, uploading (and listing) every file it names.
  pb::SubmitRequest Request(const Desc& d) {
    pb::SubmitRequest req;
    req.set_description(d.Toml());
    req.set_description_name(d.name + ".toml");
    for (const auto& path : d.AllFiles()) {
      std::string data = "contents of " + path;
      pb::JobFile* f = req.add_files();
      f->set_path(path);
      f->set_sha256(Upload(data));
      f->set_size(static_cast<int64_t>(data.size()));
    }
    return req;
  }

  int64_t Submit(const Desc& d) {
    auto id = sched_->Submit(Request(d));
    EXPECT_TRUE(id.ok()) << id.status().ToString() << "\n" << d.Toml();
    return id.ok() ? *id : 0;
  }

  std::shared_ptr<FakeLink> Connect(const pb::Register& reg) {
    auto link = std::make_shared<FakeLink>();
    link->flush = [this] {
      if (sched_) sched_->Flush();
    };
    Status st = sched_->Register(reg, link);
    EXPECT_TRUE(st.ok()) << st.ToString();
    return link;
  }

  // A successful result of `a`: every frame's output uploaded first.
  pb::ChunkResult OkResult(const pb::Assignment& a, const std::string& tag = "") {
    pb::ChunkResult r;
    r.set_job_id(a.job_id());
    r.set_chunk(a.chunk());
    r.set_attempt(a.attempt());
    r.set_ok(true);
    r.set_exit_code(0);
    for (int64_t f : a.frames()) {
      std::string data = "image of job " + std::to_string(a.job_id()) + " frame " +
                         std::to_string(f) + " attempt " + std::to_string(a.attempt()) + tag;
      pb::FrameOutput* o = r.add_outputs();
      o->set_frame(f);
      o->set_sha256(Upload(data));
      o->set_size(static_cast<int64_t>(data.size()));
      o->set_name(OutputName(f));
    }
    return r;
  }

  static pb::ChunkResult FailResult(const pb::Assignment& a, const std::string& error) {
    pb::ChunkResult r;
    r.set_job_id(a.job_id());
    r.set_chunk(a.chunk());
    r.set_attempt(a.attempt());
    r.set_ok(false);
    r.set_exit_code(1);
    r.set_error(error);
    return r;
  }

  pb::JobInfo Detail(int64_t id) {
    auto info = sched_->GetJob(id, true);
    EXPECT_TRUE(info.ok()) << info.status().ToString();
    return info.ok() ? *info : pb::JobInfo();
  }

  std::string FramePath(int64_t job, int64_t frame) const {
    return root_ + "/storage/jobs/" + std::to_string(job) + "/" + OutputName(frame);
  }

  const pb::HostInfo* Host(const pb::ListHostsResponse& hosts, const std::string& name) {
    for (const auto& h : hosts.hosts()) {
      if (h.render_server() == name) return &h;
    }
    return nullptr;
  }

  std::string HostStatus(const std::string& name) {
    pb::ListHostsResponse hosts = sched_->ListHosts();
    const pb::HostInfo* h = Host(hosts, name);
    return h ? h->status() : "<absent>";
  }

  FakeClock clock_;
  SiteConfig config_;
  std::string root_;
  std::unique_ptr<Scheduler> sched_;
};

// ------------------------------------------------------------- dispatch ---

TEST_F(SchedulerTest, SpreadsChunksOverServersAndPlacesFrames) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  EXPECT_EQ(a->RegisteredCount(), 1);
  EXPECT_EQ(b->RegisteredCount(), 1);
  EXPECT_TRUE(a->Assignments().empty());

  Desc d;
  d.frames = "1-4";
  int64_t id = Submit(d);
  ASSERT_GT(id, 0);

  // First dispatch: one chunk to each server, different chunks.
  auto got_a = a->TakeAssignments();
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_NE(got_a[0].chunk(), got_b[0].chunk());
  EXPECT_EQ(got_a[0].slot(), "rs-a/s0");
  EXPECT_EQ(got_b[0].slot(), "rs-b/s0");
  EXPECT_EQ(got_a[0].attempt(), 1);
  EXPECT_EQ(got_a[0].package(), "povray");
  EXPECT_EQ(got_a[0].scene(), "scene.pov");
  EXPECT_EQ(got_a[0].output(), "out_####.png");
  EXPECT_EQ(got_a[0].job_first_frame(), 1);
  EXPECT_EQ(got_a[0].job_last_frame(), 4);
  ASSERT_EQ(got_a[0].files_size(), 1);
  EXPECT_EQ(got_a[0].files(0).path(), "scene.pov");
  EXPECT_EQ(got_a[0].files(0).sha256(), Sha256Hex("contents of scene.pov"));
  EXPECT_EQ(Detail(id).state(), "running");

  // Each result frees a slot that takes the next chunk at once.
  std::map<int, std::string> ran_on;  // chunk -> render server
  std::vector<std::pair<std::string, pb::Assignment>> running = {{"rs-a", got_a[0]},
                                                                 {"rs-b", got_b[0]}};
  std::set<int> seen = {got_a[0].chunk(), got_b[0].chunk()};
  while (!running.empty()) {
    auto [server, asg] = running.front();
    running.erase(running.begin());
    ran_on[asg.chunk()] = server;
    pb::ChunkResult r = OkResult(asg);
    std::string log = "log of chunk " + std::to_string(asg.chunk());
    r.set_log_sha256(Upload(log));
    sched_->OnResult(server, r);
    auto& link = server == "rs-a" ? a : b;
    auto next = link->TakeAssignments();
    ASSERT_LE(next.size(), 1u);
    if (!next.empty()) {
      EXPECT_TRUE(seen.insert(next[0].chunk()).second) << "chunk assigned twice";
      running.emplace_back(server, next[0]);
    }
  }
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_TRUE(a->TakeAssignments().empty());
  EXPECT_TRUE(b->TakeAssignments().empty());

  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "done");
  EXPECT_EQ(info.queue(), "");
  EXPECT_GT(info.finish_time_ms(), 0);
  EXPECT_EQ(info.frames_total(), 4);
  EXPECT_EQ(info.frames_done(), 4);
  EXPECT_EQ(info.frames_running(), 0);
  EXPECT_EQ(info.frames_failed(), 0);
  EXPECT_EQ(info.waiting_reason(), "");
  EXPECT_EQ(info.storage_dir(), root_ + "/storage/jobs/" + std::to_string(id));
  ASSERT_EQ(info.chunks_size(), 4);
  ASSERT_EQ(info.frame_info_size(), 4);
  for (int64_t f = 1; f <= 4; ++f) {
    const pb::FrameInfo* fi = FrameOf(info, f);
    ASSERT_NE(fi, nullptr) << f;
    EXPECT_EQ(fi->state(), "done") << f;
    EXPECT_EQ(fi->render_server(), ran_on[fi->chunk()]) << f;
    EXPECT_EQ(fi->output(), FramePath(id, f));
    std::string expected =
        "image of job " + std::to_string(id) + " frame " + std::to_string(f) + " attempt 1";
    EXPECT_EQ(fi->sha256(), Sha256Hex(expected));
    EXPECT_EQ(fi->size(), static_cast<int64_t>(expected.size()));
    auto content = ReadFile(FramePath(id, f));
    ASSERT_TRUE(content.ok()) << content.status().ToString();
    EXPECT_EQ(*content, expected);
  }
  // Both servers rendered.
  std::set<std::string> servers;
  for (const auto& [chunk, server] : ran_on) servers.insert(server);
  EXPECT_EQ(servers, (std::set<std::string>{"rs-a", "rs-b"}));

  auto outputs = sched_->ListOutputs(id);
  ASSERT_TRUE(outputs.ok());
  EXPECT_EQ(outputs->outputs_size(), 4);
  auto logs = sched_->GetLogs(id, 3);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->text(), "log of chunk 2");
  EXPECT_EQ(logs->attempt(), 1);

  // Slots are idle again.
  pb::ListHostsResponse hosts = sched_->ListHosts();
  ASSERT_EQ(hosts.hosts_size(), 2);
  for (const auto& h : hosts.hosts()) {
    EXPECT_EQ(h.status(), "up");
    ASSERT_EQ(h.slots_size(), 1);
    EXPECT_EQ(h.slots(0).state(), "idle");
  }
  EXPECT_TRUE(sched_->ListJobs(false).empty());
  EXPECT_EQ(sched_->ListJobs(true).size(), 1u);
}

TEST_F(SchedulerTest, ChunksCarryTheirFramesInOrder) {
  Desc d;
  d.frames = "1-10";
  d.chunk_size = 4;
  d.files = {"tex/wood.png", "scene.inc"};
  int64_t id = Submit(d);
  pb::JobInfo info = Detail(id);
  ASSERT_EQ(info.chunks_size(), 3);
  EXPECT_EQ(info.chunks(0).frames(), "1-4");
  EXPECT_EQ(info.chunks(1).frames(), "5-8");
  EXPECT_EQ(info.chunks(2).frames(), "9,10");
  EXPECT_EQ(info.state(), "queued");
  EXPECT_EQ(info.waiting_reason(), "no render server is connected to the site");

  auto a = Connect(MakeRegister("rs-a", "host-a", {SlotOf("s0"), SlotOf("s1")}));
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].chunk(), 0);
  EXPECT_EQ(std::vector<int64_t>(got[0].frames().begin(), got[0].frames().end()),
            (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(got[1].chunk(), 1);
  EXPECT_NE(got[0].slot(), got[1].slot());
  std::set<std::string> files;
  for (const auto& f : got[0].files()) files.insert(f.path());
  EXPECT_EQ(files, (std::set<std::string>{"scene.pov", "tex/wood.png", "scene.inc"}));
  info = Detail(id);
  EXPECT_EQ(info.frames_running(), 8);
  EXPECT_EQ(info.waiting_reason(), "");
}

// ----------------------------------------------------------- capability ---

TEST_F(SchedulerTest, ChunksGoOnlyToCapableSlots) {
  const int64_t gib = int64_t{1} << 30;
  std::map<std::string, std::shared_ptr<FakeLink>> links;
  links["no-pkg"] = Connect(MakeRegister("no-pkg", "h1", {SlotOf("s0", 16, 64 * gib, 2)}));
  links["old-ver"] = Connect(
      MakeRegister("old-ver", "h2", {SlotOf("s0", 16, 64 * gib, 2)}, {{"blender", "2.79"}}));
  links["few-cores"] = Connect(
      MakeRegister("few-cores", "h3", {SlotOf("s0", 2, 64 * gib, 2)}, {{"blender", "4.1.0"}}));
  links["low-mem"] = Connect(
      MakeRegister("low-mem", "h4", {SlotOf("s0", 16, 1 * gib, 2)}, {{"blender", "4.1.0"}}));
  links["no-gpu"] = Connect(
      MakeRegister("no-gpu", "h5", {SlotOf("s0", 16, 64 * gib, 0)}, {{"blender", "4.1.0"}}));

  Desc d;
  d.package = "blender";
  d.version = ">=3.6";
  d.frames = "1-2";
  d.cores = 4;
  d.memory = "8G";
  d.gpus = 1;
  int64_t id = Submit(d);
  for (const auto& [name, link] : links) EXPECT_TRUE(link->Assignments().empty()) << name;

  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "queued");
  EXPECT_EQ(info.package(), "blender >=3.6");
  const std::string& why = info.waiting_reason();
  EXPECT_TRUE(HasSubstr(why, "no render server can render it"));
  EXPECT_TRUE(HasSubstr(why, "no-pkg has no package 'blender'"));
  EXPECT_TRUE(HasSubstr(why, "old-ver has blender 2.79, the job needs '>=3.6'"));
  EXPECT_TRUE(HasSubstr(why, "few-cores slot few-cores/s0 has 2 core(s), the job needs 4"));
  EXPECT_TRUE(HasSubstr(why, "low-mem slot low-mem/s0 has 1.0 GiB of memory, the job needs 8.0"));
  EXPECT_TRUE(HasSubstr(why, "no-gpu slot no-gpu/s0 has 0 GPU(s), the job needs 1"));

  // A capable server takes the chunks, on its capable slot only.
  auto good = Connect(MakeRegister("good", "h6",
                                   {SlotOf("small", 1, 64 * gib, 2), SlotOf("big", 8, 16 * gib, 1)},
                                   {{"povray", "3.7"}, {"blender", "4.1.0"}}));
  auto got = good->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].slot(), "good/big");
  EXPECT_EQ(got[0].chunk(), 0);
  EXPECT_EQ(Detail(id).waiting_reason(), "");

  sched_->OnResult("good", OkResult(got[0]));
  got = good->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].slot(), "good/big");
  EXPECT_EQ(got[0].chunk(), 1);
  sched_->OnResult("good", OkResult(got[0]));
  EXPECT_EQ(Detail(id).state(), "done");
  for (const auto& [name, link] : links) EXPECT_TRUE(link->Assignments().empty()) << name;
}

TEST_F(SchedulerTest, WaitingReasonWhenCapableServersAreBusy) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc first;
  first.name = "first";
  first.frames = "1";
  int64_t j1 = Submit(first);
  Desc second;
  second.name = "second";
  second.frames = "1";
  int64_t j2 = Submit(second);
  EXPECT_EQ(a->TakeAssignments().size(), 1u);
  EXPECT_EQ(Detail(j1).waiting_reason(), "");
  EXPECT_TRUE(HasSubstr(Detail(j2).waiting_reason(), "waiting for a free render slot on 1"));
}

TEST_F(SchedulerTest, LeastLoadedServerFirst) {
  auto a = Connect(MakeRegister("rs-a", "host-a", {SlotOf("s0"), SlotOf("s1")}));
  auto b = Connect(MakeRegister("rs-b", "host-b", {SlotOf("s0"), SlotOf("s1")}));
  Desc x;
  x.name = "x";
  x.frames = "1";
  Submit(x);
  auto got_a = a->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  EXPECT_TRUE(b->TakeAssignments().empty());

  // rs-a has one busy slot, rs-b none: the next job starts on rs-b and its
  // two chunks land on different render servers.
  Desc y;
  y.name = "y";
  y.frames = "1-2";
  int64_t id = Submit(y);
  got_a = a->TakeAssignments();
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b[0].job_id(), id);
  EXPECT_EQ(got_b[0].chunk(), 0);
  EXPECT_EQ(got_a[0].job_id(), id);
  EXPECT_EQ(got_a[0].chunk(), 1);
}

// ------------------------------------------------------------- priority ---

TEST_F(SchedulerTest, HigherPriorityFirstThenSubmitTime) {
  struct J {
    std::string name;
    int priority;
    int64_t id = 0;
  };
  std::vector<J> jobs = {{"low", 10}, {"high-early", 90}, {"mid", 50}, {"high-late", 90}};
  for (auto& j : jobs) {
    Desc d;
    d.name = j.name;
    d.priority = j.priority;
    d.frames = "1";
    j.id = Submit(d);
    clock_.Advance(1000);
  }
  EXPECT_LT(Detail(jobs[1].id).submit_time_ms(), Detail(jobs[3].id).submit_time_ms());

  auto a = Connect(MakeRegister("rs-a", "host-a"));
  std::vector<int64_t> order;
  for (int i = 0; i < 4; ++i) {
    auto got = a->TakeAssignments();
    ASSERT_EQ(got.size(), 1u) << i;
    order.push_back(got[0].job_id());
    sched_->OnResult("rs-a", OkResult(got[0]));
  }
  EXPECT_EQ(order, (std::vector<int64_t>{jobs[1].id, jobs[3].id, jobs[2].id, jobs[0].id}));
  EXPECT_TRUE(a->TakeAssignments().empty());
}

TEST_F(SchedulerTest, EqualPriorityOrderedBySubmitTimeNotId) {
  // Job 1 is submitted at a later wall-clock time than job 2 (the clock of
  // the restarted schedule server is behind): submit time decides.
  FakeClock late(5'000'000);
  ASSERT_NO_FATAL_FAILURE(Reopen(&late));
  Desc d1;
  d1.name = "one";
  d1.frames = "1";
  int64_t j1 = Submit(d1);
  ASSERT_NO_FATAL_FAILURE(Reopen(&clock_));
  Desc d2;
  d2.name = "two";
  d2.frames = "1";
  int64_t j2 = Submit(d2);
  ASSERT_LT(j1, j2);
  ASSERT_GT(Detail(j1).submit_time_ms(), Detail(j2).submit_time_ms());

  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].job_id(), j2);
  sched_->OnResult("rs-a", OkResult(got[0]));
  got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].job_id(), j1);
}

// -------------------------------------------------------------- failures ---

TEST_F(SchedulerTest, FailedChunkRetriesOnOtherHostThenFails) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1-4";
  d.chunk_size = 2;
  d.max_attempts = 2;
  int64_t id = Submit(d);
  auto got_a = a->TakeAssignments();
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  ASSERT_EQ(got_b.size(), 1u);
  const pb::Assignment first = got_a[0];  // chunk that fails

  sched_->OnResult("rs-a", FailResult(first, "povray exited with status 1"));
  // rs-a is idle but the chunk waits for the other capable host.
  EXPECT_TRUE(a->TakeAssignments().empty());
  pb::JobInfo info = Detail(id);
  const pb::ChunkInfo* c = ChunkOf(info, first.chunk());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), "queued");
  EXPECT_EQ(c->attempts(), 1);
  EXPECT_TRUE(HasSubstr(c->error(), "povray exited with status 1"));

  // rs-b finishes its chunk; the retry goes to rs-b although rs-a is idle.
  sched_->OnResult("rs-b", OkResult(got_b[0]));
  EXPECT_TRUE(a->TakeAssignments().empty());
  got_b = b->TakeAssignments();
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b[0].chunk(), first.chunk());
  EXPECT_EQ(got_b[0].attempt(), 2);

  // Second failure: max_attempts = 2 reached, the chunk and the job fail.
  sched_->OnResult("rs-b", FailResult(got_b[0], "out of memory"));
  EXPECT_TRUE(a->TakeAssignments().empty());
  EXPECT_TRUE(b->TakeAssignments().empty());
  info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_EQ(info.frames_failed(), 2);
  EXPECT_EQ(info.frames_done(), 2);
  EXPECT_TRUE(HasSubstr(info.error(), "2 of 4 frame(s) failed")) << info.error();
  c = ChunkOf(info, first.chunk());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), "failed");
  EXPECT_EQ(c->attempts(), 2);
  EXPECT_TRUE(HasSubstr(c->error(), "out of memory"));
  for (int64_t f : first.frames()) {
    const pb::FrameInfo* fi = FrameOf(info, f);
    ASSERT_NE(fi, nullptr);
    EXPECT_EQ(fi->state(), "failed");
    EXPECT_FALSE(PathExists(FramePath(id, f)));
  }
  EXPECT_TRUE(sched_->ListJobs(false).empty());
}

// A chunk that stopped on a full disk is retried after a growing backoff
// however often it happens, without using up max_attempts; a real failure
// afterwards still fails it.
TEST_F(SchedulerTest, DiskFullResultRequeuesAfterBackoffWithoutCountingAnAttempt) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-2";
  d.chunk_size = 2;
  d.max_attempts = 1;
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  int64_t backoff = 250;
  for (int i = 0; i < 4; ++i, backoff *= 2) {
    pb::ChunkResult r = FailResult(got[0], "cannot upload frame 1: site storage full (/s): " +
                                               std::string(std::strerror(ENOSPC)));
    r.set_disk_full(true);
    sched_->OnResult("rs-a", r);
    pb::JobInfo info = Detail(id);
    EXPECT_EQ(info.state(), "running") << info.error();
    const pb::ChunkInfo* c = ChunkOf(info, got[0].chunk());
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c->state(), "queued");
    EXPECT_TRUE(HasSubstr(c->error(), "site storage full (/s)")) << c->error();
    EXPECT_TRUE(HasSubstr(c->error(), "retrying")) << c->error();
    // Not before its backoff, then at once.
    sched_->CheckTimeouts();
    EXPECT_TRUE(a->TakeAssignments().empty()) << i;
    clock_.Advance(backoff - 1);
    sched_->CheckTimeouts();
    EXPECT_TRUE(a->TakeAssignments().empty()) << i;
    clock_.Advance(1);
    sched_->CheckTimeouts();
    got = a->TakeAssignments();
    ASSERT_EQ(got.size(), 1u) << i;
    EXPECT_EQ(got[0].attempt(), i + 2);
  }
  sched_->OnResult("rs-a", FailResult(got[0], "povray exited with status 1"));
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_TRUE(HasSubstr(ChunkOf(info, 0)->error(), "povray exited")) << ChunkOf(info, 0)->error();
}

TEST_F(SchedulerTest, FailedChunkRetriesOnSameHostWhenNoOtherIsCapable) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b", {SlotOf("s0")}, {{"blender", "4.1"}}));
  Desc d;
  d.frames = "7";  // max_attempts from the site: 3
  int64_t id = Submit(d);
  for (int attempt = 1; attempt <= 3; ++attempt) {
    auto got = a->TakeAssignments();
    ASSERT_EQ(got.size(), 1u) << attempt;
    EXPECT_EQ(got[0].attempt(), attempt);
    EXPECT_EQ(Detail(id).state(), "running");
    sched_->OnResult("rs-a", FailResult(got[0], ""));
  }
  EXPECT_TRUE(a->TakeAssignments().empty());
  EXPECT_TRUE(b->Assignments().empty());
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_TRUE(HasSubstr(info.error(), "1 of 1 frame(s) failed")) << info.error();
  EXPECT_TRUE(HasSubstr(info.chunks(0).error(), "renderer failed"));
}

TEST_F(SchedulerTest, ResultWithMissingOrUnuploadedOutputIsAFailure) {
  // One attempt each, so the chunk keeps the error (a retry clears it).
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.name = "missing";
  d.frames = "1-2";
  d.chunk_size = 2;
  d.max_attempts = 1;
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  pb::ChunkResult r = OkResult(got[0]);
  r.mutable_outputs()->RemoveLast();
  sched_->OnResult("rs-a", r);
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_TRUE(HasSubstr(info.chunks(0).error(), "frame 2 produced no output"));
  EXPECT_EQ(info.frames_done(), 0);
  EXPECT_FALSE(PathExists(FramePath(id, 1)));

  d.name = "unuploaded";
  id = Submit(d);
  got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  r = OkResult(got[0]);
  r.mutable_outputs(1)->set_sha256(Sha256Hex("never uploaded"));
  sched_->OnResult("rs-a", r);
  info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_TRUE(HasSubstr(info.chunks(0).error(), "output of frame 2 was not uploaded"));
  EXPECT_EQ(info.frames_done(), 0);
  EXPECT_FALSE(PathExists(FramePath(id, 1)));
}

TEST_F(SchedulerTest, ProgressOfTheCurrentAttemptIsShown) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-4";
  d.chunk_size = 4;
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);

  pb::ChunkProgress p;
  p.set_job_id(id);
  p.set_chunk(0);
  p.set_attempt(1);
  p.set_frame(3);
  p.set_frames_done(2);
  p.add_log_lines("Rendering frame 3");
  sched_->OnProgress("rs-a", p);
  // Progress of another attempt or from another server is ignored.
  pb::ChunkProgress stale = p;
  stale.set_attempt(2);
  stale.set_frames_done(4);
  sched_->OnProgress("rs-a", stale);
  stale.set_attempt(1);
  sched_->OnProgress("rs-b", stale);

  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.frames_done(), 2);
  EXPECT_EQ(info.frames_running(), 2);
  EXPECT_EQ(FrameOf(info, 1)->state(), "done");
  EXPECT_EQ(FrameOf(info, 3)->state(), "running");
  auto logs = sched_->GetLogs(id, 3);
  ASSERT_TRUE(logs.ok()) << logs.status().ToString();
  EXPECT_EQ(logs->text(), "Rendering frame 3\n");
  EXPECT_EQ(logs->render_server(), "rs-a");
  EXPECT_FALSE(sched_->GetLogs(id, 9).ok());
}

// ---------------------------------------------------------- stale results ---

TEST_F(SchedulerTest, StaleResultsAreIgnored) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1-3";
  int64_t id = Submit(d);
  auto got_a = a->TakeAssignments();
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  ASSERT_EQ(got_b.size(), 1u);
  const pb::Assignment asg = got_a[0];

  // Wrong attempt from the right server.
  pb::Assignment wrong = asg;
  wrong.set_attempt(asg.attempt() + 1);
  sched_->OnResult("rs-a", OkResult(wrong, " stale"));
  wrong.set_attempt(0);
  sched_->OnResult("rs-a", OkResult(wrong, " stale"));
  // Right attempt from another server (rs-b is busy with its own chunk).
  sched_->OnResult("rs-b", OkResult(asg, " stale"));
  // From a server the site does not know.
  sched_->OnResult("ghost", OkResult(asg, " stale"));
  // For a job / chunk that does not exist.
  pb::Assignment unknown = asg;
  unknown.set_job_id(id + 100);
  sched_->OnResult("rs-a", OkResult(unknown, " stale"));
  unknown = asg;
  unknown.set_chunk(99);
  sched_->OnResult("rs-a", FailResult(unknown, "x"));

  for (int64_t f : asg.frames()) EXPECT_FALSE(PathExists(FramePath(id, f)));
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.frames_done(), 0);
  const pb::ChunkInfo* c = ChunkOf(info, asg.chunk());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->state(), "running");
  EXPECT_EQ(c->render_server(), "rs-a");
  EXPECT_EQ(c->attempts(), 1);
  // The slots still hold their chunks: nothing else was assigned to them.
  EXPECT_TRUE(a->TakeAssignments().empty());
  EXPECT_TRUE(b->TakeAssignments().empty());
  pb::ListHostsResponse hosts = sched_->ListHosts();
  EXPECT_EQ(hosts.hosts_size(), 2);
  EXPECT_EQ(Host(hosts, "ghost"), nullptr);
  const pb::HostInfo* ha = Host(hosts, "rs-a");
  ASSERT_NE(ha, nullptr);
  EXPECT_EQ(ha->slots(0).state(), "busy");
  EXPECT_EQ(ha->slots(0).chunk(), asg.chunk());

  // The real result is accepted.
  sched_->OnResult("rs-a", OkResult(asg));
  info = Detail(id);
  EXPECT_EQ(ChunkOf(info, asg.chunk())->state(), "done");
  for (int64_t f : asg.frames()) {
    auto content = ReadFile(FramePath(id, f));
    ASSERT_TRUE(content.ok());
    EXPECT_EQ(content->find("stale"), std::string::npos);
  }
  // A repeat of it is stale now.
  sched_->OnResult("rs-a", OkResult(asg, " stale"));
  for (int64_t f : asg.frames()) {
    auto content = ReadFile(FramePath(id, f));
    ASSERT_TRUE(content.ok());
    EXPECT_EQ(content->find("stale"), std::string::npos);
  }
  EXPECT_EQ(Detail(id).frames_done(), 1);

  // A server the site does not know is not recorded by a timeout check.
  clock_.Advance(config_.heartbeat_timeout_ms + config_.reconnect_grace_ms + 1);
  sched_->CheckTimeouts();
  EXPECT_EQ(Host(sched_->ListHosts(), "ghost"), nullptr);
  EXPECT_EQ(sched_->ListHosts().hosts_size(), 2);
}

// -------------------------------------------------------------- timeouts ---

TEST_F(SchedulerTest, SilentServerIsMarkedDownAndItsChunkRequeued) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  auto got_a = a->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  EXPECT_TRUE(b->TakeAssignments().empty());

  // rs-b keeps sending heartbeats; rs-a is silent.
  clock_.Advance(config_.heartbeat_timeout_ms - 1000);
  sched_->OnHeartbeat("rs-b");
  clock_.Advance(1000);
  sched_->CheckTimeouts();  // exactly the timeout: not yet
  EXPECT_EQ(HostStatus("rs-a"), "up");
  EXPECT_FALSE(a->closed());
  EXPECT_TRUE(b->TakeAssignments().empty());

  clock_.Advance(1);
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "down");
  EXPECT_EQ(HostStatus("rs-b"), "up");
  EXPECT_TRUE(a->closed());
  EXPECT_FALSE(b->closed());
  pb::ListHostsResponse hosts = sched_->ListHosts();
  EXPECT_EQ(Host(hosts, "rs-a")->slots(0).state(), "down");

  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b[0].chunk(), got_a[0].chunk());
  EXPECT_EQ(got_b[0].attempt(), 2);
  EXPECT_TRUE(a->TakeAssignments().empty());

  // A late result of the lost attempt does not count.
  sched_->OnResult("rs-a", OkResult(got_a[0], " stale"));
  EXPECT_FALSE(PathExists(FramePath(id, 1)));
  EXPECT_EQ(Detail(id).chunks(0).render_server(), "rs-b");

  sched_->OnResult("rs-b", OkResult(got_b[0]));
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "done");
  EXPECT_EQ(FrameOf(info, 1)->render_server(), "rs-b");
  auto content = ReadFile(FramePath(id, 1));
  ASSERT_TRUE(content.ok());
  EXPECT_EQ(content->find("stale"), std::string::npos);
}

// A second schedule server on the same root (started by mistake) is refused
// before it opens the database; the first one keeps working, and once it is
// gone the root can be opened again.
TEST_F(SchedulerTest, ASecondScheduleServerOnTheSameRootIsRefused) {
  Desc d;
  d.frames = "1-2";
  int64_t id = Submit(d);
  auto second = Scheduler::Open(config_, &clock_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasSubstr(second.status().message(), "root '" + root_ +
                                                       "' is in use by "
                                                       "schedule server pid " +
                                                       std::to_string(::getpid())))
      << second.status().message();
  EXPECT_EQ(Detail(id).state(), "queued");
  ASSERT_NO_FATAL_FAILURE(Reopen());
  EXPECT_EQ(Detail(id).state(), "queued");
}

TEST_F(SchedulerTest, SecondProcessWithALiveServersNameIsRefusedAndDisturbsNothing) {
  pb::Register first = MakeRegister("rs-a", "host-a");
  first.set_instance("100-aaaa");
  auto a = Connect(first);
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);

  pb::Register twin = MakeRegister("rs-a", "host-b");
  twin.set_instance("200-bbbb");
  auto b = std::make_shared<FakeLink>();
  Status st = sched_->Register(twin, b);
  EXPECT_EQ(st.code(), StatusCode::kAlreadyExists) << st.ToString();
  EXPECT_TRUE(HasSubstr(st.message(),
                        "render server 'rs-a' is already connected from host "
                        "host-a (instance 100-aaaa)"))
      << st.message();
  EXPECT_TRUE(HasSubstr(st.message(), "render server names must be unique on a site"));
  // Refused again and again: the first keeps its stream and its chunk, whose
  // attempt count does not move.
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(sched_->Register(twin, b).ok());
  EXPECT_FALSE(a->closed());
  EXPECT_EQ(b->RegisteredCount(), 0);
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.chunks(0).state(), "running");
  EXPECT_EQ(info.chunks(0).attempts(), 1);
  pb::ListHostsResponse hosts = sched_->ListHosts();
  ASSERT_NE(Host(hosts, "rs-a"), nullptr);
  EXPECT_EQ(Host(hosts, "rs-a")->host(), "host-a");
  EXPECT_EQ(Host(hosts, "rs-a")->status(), "up");

  // The first process itself reconnecting (same instance) takes over, and
  // keeps its running chunk without an attempt counted as lost.
  pb::Register again = first;
  AddRunning(again, got[0]);
  auto a2 = Connect(again);
  EXPECT_TRUE(a->closed());
  EXPECT_EQ(Detail(id).chunks(0).state(), "running");
  EXPECT_EQ(Detail(id).chunks(0).attempts(), 1);

  // Once the holder of the name falls silent past the heartbeat timeout,
  // another process may have it.
  clock_.Advance(config_.heartbeat_timeout_ms + 1);
  auto b2 = std::make_shared<FakeLink>();
  EXPECT_TRUE(sched_->Register(twin, b2).ok());
  EXPECT_TRUE(a2->closed());
}

TEST_F(SchedulerTest, RegistrationWithABadNameIsRefusedNamingTheField) {
  auto refused = [&](const pb::Register& reg) {
    Status st = sched_->Register(reg, std::make_shared<FakeLink>());
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << st.ToString();
    return st.message();
  };
  std::string e = refused(MakeRegister("a/b", "h"));
  EXPECT_TRUE(HasSubstr(e, "render_server: name 'a/b' must not contain '/'")) << e;
  e = refused(MakeRegister("a\nb", "h"));
  EXPECT_TRUE(HasSubstr(e, "render_server: name 'a\\x0ab' must be printable ASCII")) << e;
  e = refused(MakeRegister(std::string(5000, 'x'), "h"));
  EXPECT_TRUE(HasSubstr(e, "must be at most 64 characters")) << e;
  EXPECT_TRUE(HasSubstr(e, "(5000 characters)")) << e;
  EXPECT_LT(e.size(), 300u);
  e = refused(MakeRegister("ok", "h", {SlotOf("s\t1")}));
  EXPECT_TRUE(HasSubstr(e, "slots[0].name: 's\\x091' must be printable ASCII")) << e;
  EXPECT_TRUE(sched_->ListHosts().hosts().empty());
  // 64 characters are fine.
  Connect(MakeRegister(std::string(64, 'x'), "h"));
}

TEST_F(SchedulerTest, DescriptionOverTheLimitIsRefusedNamingDescription) {
  Desc d;
  d.frames = "1";
  pb::SubmitRequest req = Request(d);
  req.set_description(req.description() + "\n#" + std::string(kMaxJobDescriptionBytes, 'x') + "\n");
  auto id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(id.status().message(), "description: "));
  EXPECT_TRUE(HasSubstr(id.status().message(), "more than the limit of 1048576"))
      << id.status().message();
  EXPECT_TRUE(sched_->ListJobs(true).empty());
}

TEST_F(SchedulerTest, ChunkWaitsWhenNoOtherServerIsUp) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  ASSERT_EQ(a->TakeAssignments().size(), 1u);
  clock_.Advance(config_.heartbeat_timeout_ms + 1);
  sched_->CheckTimeouts();
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.chunks(0).state(), "queued");
  EXPECT_EQ(info.waiting_reason(), "no render server is connected to the site");
  EXPECT_TRUE(HasSubstr(info.chunks(0).error(), "rs-a"));

  // It comes back with a new stream: the chunk goes to it again.
  auto a2 = Connect(MakeRegister("rs-a", "host-a"));
  auto got = a2->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].attempt(), 2);
  EXPECT_EQ(HostStatus("rs-a"), "up");
}

TEST_F(SchedulerTest, ReconnectWithinGraceKeepsTheRunningChunk) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  auto got_a = a->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);

  sched_->OnDisconnect("rs-a", a.get());
  EXPECT_EQ(HostStatus("rs-a"), "reconnecting");
  clock_.Advance(config_.reconnect_grace_ms);
  sched_->OnHeartbeat("rs-b");
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "reconnecting");
  EXPECT_TRUE(b->TakeAssignments().empty());
  EXPECT_EQ(Detail(id).chunks(0).state(), "running");

  pb::Register reg = MakeRegister("rs-a", "host-a");
  AddRunning(reg, got_a[0]);
  auto a2 = Connect(reg);
  EXPECT_EQ(HostStatus("rs-a"), "up");
  EXPECT_TRUE(a2->Cancels().empty());
  EXPECT_TRUE(a2->TakeAssignments().empty());
  EXPECT_TRUE(b->TakeAssignments().empty());
  pb::ListHostsResponse hosts = sched_->ListHosts();
  EXPECT_EQ(Host(hosts, "rs-a")->slots(0).state(), "busy");
  EXPECT_EQ(Host(hosts, "rs-a")->slots(0).job_id(), id);

  // The end of the old stream, reported late, does not touch the new one.
  sched_->OnDisconnect("rs-a", a.get());
  EXPECT_EQ(HostStatus("rs-a"), "up");
  clock_.Advance(config_.reconnect_grace_ms + 1);
  sched_->OnHeartbeat("rs-a");
  sched_->OnHeartbeat("rs-b");
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "up");
  EXPECT_TRUE(b->TakeAssignments().empty());

  sched_->OnResult("rs-a", OkResult(got_a[0]));
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "done");
  EXPECT_EQ(info.chunks(0).attempts(), 1);
  EXPECT_EQ(FrameOf(info, 1)->render_server(), "rs-a");
  EXPECT_TRUE(PathExists(FramePath(id, 1)));
}

TEST_F(SchedulerTest, DisconnectBeyondGraceRequeues) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  auto got_a = a->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);

  sched_->OnDisconnect("rs-a", a.get());
  clock_.Advance(config_.reconnect_grace_ms + 1);
  sched_->OnHeartbeat("rs-b");
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "down");
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b[0].chunk(), got_a[0].chunk());
  EXPECT_EQ(got_b[0].attempt(), 2);

  // rs-a comes back still running the old attempt: it is told to stop, and
  // its result is ignored.
  pb::Register reg = MakeRegister("rs-a", "host-a");
  AddRunning(reg, got_a[0]);
  auto a2 = Connect(reg);
  auto cancels = a2->Cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].job_id(), id);
  EXPECT_EQ(cancels[0].chunk(), got_a[0].chunk());
  EXPECT_EQ(cancels[0].attempt(), 1);
  EXPECT_TRUE(a2->TakeAssignments().empty());
  sched_->OnResult("rs-a", OkResult(got_a[0], " stale"));
  EXPECT_FALSE(PathExists(FramePath(id, 1)));
  EXPECT_EQ(Detail(id).chunks(0).render_server(), "rs-b");

  sched_->OnResult("rs-b", OkResult(got_b[0]));
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "done");
  EXPECT_EQ(FrameOf(info, 1)->render_server(), "rs-b");
}

TEST_F(SchedulerTest, LateResultOfLostAttemptDoesNotFreeTheSlotOfTheNewOne) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-2";
  int64_t id = Submit(d);
  auto first = a->TakeAssignments();
  ASSERT_EQ(first.size(), 1u);
  sched_->OnDisconnect("rs-a", a.get());
  clock_.Advance(config_.reconnect_grace_ms + 1);
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "down");

  // Back without the chunk: it gets the same chunk again (attempt 2).
  auto a2 = Connect(MakeRegister("rs-a", "host-a"));
  auto second = a2->TakeAssignments();
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].chunk(), first[0].chunk());
  EXPECT_EQ(second[0].attempt(), 2);

  // The late result of attempt 1 must not free the slot running attempt 2.
  sched_->OnResult("rs-a", OkResult(first[0], " stale"));
  EXPECT_TRUE(a2->TakeAssignments().empty());
  EXPECT_EQ(Host(sched_->ListHosts(), "rs-a")->slots(0).state(), "busy");
  EXPECT_FALSE(PathExists(FramePath(id, first[0].frames(0))));

  sched_->OnResult("rs-a", OkResult(second[0]));
  auto third = a2->TakeAssignments();
  ASSERT_EQ(third.size(), 1u);
  EXPECT_NE(third[0].chunk(), first[0].chunk());
  sched_->OnResult("rs-a", OkResult(third[0]));
  EXPECT_EQ(Detail(id).state(), "done");
}

// ---------------------------------------------------------------- resume ---

TEST_F(SchedulerTest, ResumesFromTheDatabaseAfterARestart) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1-3";
  int64_t id = Submit(d);
  auto got_a = a->TakeAssignments();
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_a.size(), 1u);
  ASSERT_EQ(got_b.size(), 1u);
  ASSERT_EQ(got_a[0].chunk(), 0);
  ASSERT_EQ(got_b[0].chunk(), 1);
  sched_->OnResult("rs-a", OkResult(got_a[0]));
  auto a_next = a->TakeAssignments();
  ASSERT_EQ(a_next.size(), 1u);
  ASSERT_EQ(a_next[0].chunk(), 2);
  // Now: chunk 0 done (rs-a), chunk 1 running on rs-b, chunk 2 on rs-a.

  ASSERT_NO_FATAL_FAILURE(Reopen());
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "running");
  ASSERT_EQ(info.chunks_size(), 3);
  EXPECT_EQ(info.chunks(0).state(), "done");
  EXPECT_EQ(info.chunks(1).state(), "running");
  EXPECT_EQ(info.chunks(1).render_server(), "rs-b");
  EXPECT_EQ(info.chunks(2).state(), "running");
  EXPECT_EQ(info.chunks(2).render_server(), "rs-a");
  EXPECT_EQ(info.frames_done(), 1);
  EXPECT_EQ(FrameOf(info, 1)->output(), FramePath(id, 1));
  EXPECT_EQ(FrameOf(info, 1)->render_server(), "rs-a");
  EXPECT_EQ(HostStatus("rs-a"), "reconnecting");

  // rs-a comes back running chunk 2: it keeps it.
  pb::Register reg_a = MakeRegister("rs-a", "host-a");
  AddRunning(reg_a, a_next[0]);
  auto a2 = Connect(reg_a);
  EXPECT_TRUE(a2->Cancels().empty());
  EXPECT_TRUE(a2->TakeAssignments().empty());
  EXPECT_EQ(Detail(id).chunks(2).state(), "running");

  // rs-b comes back without chunk 1 (it restarted): requeued, and as rs-a is
  // busy it goes to rs-b again as a new attempt.
  auto b2 = Connect(MakeRegister("rs-b", "host-b"));
  auto b_next = b2->TakeAssignments();
  ASSERT_EQ(b_next.size(), 1u);
  EXPECT_EQ(b_next[0].chunk(), 1);
  EXPECT_EQ(b_next[0].attempt(), 2);

  // Late results from before the restart are ignored: the done chunk 0 and
  // the lost attempt of chunk 1.
  sched_->OnResult("rs-a", OkResult(got_a[0], " again"));
  sched_->OnResult("rs-b", OkResult(got_b[0], " stale"));
  EXPECT_TRUE(a2->TakeAssignments().empty());
  EXPECT_TRUE(b2->TakeAssignments().empty());

  sched_->OnResult("rs-a", OkResult(a_next[0]));
  sched_->OnResult("rs-b", OkResult(b_next[0]));
  info = Detail(id);
  EXPECT_EQ(info.state(), "done");
  EXPECT_EQ(info.frames_done(), 3);
  EXPECT_EQ(FrameOf(info, 1)->render_server(), "rs-a");
  EXPECT_EQ(FrameOf(info, 2)->render_server(), "rs-b");
  EXPECT_EQ(FrameOf(info, 3)->render_server(), "rs-a");
  for (int64_t f = 1; f <= 3; ++f) {
    auto content = ReadFile(FramePath(id, f));
    ASSERT_TRUE(content.ok());
    EXPECT_EQ(content->find("stale"), std::string::npos) << f;
    EXPECT_EQ(content->find("again"), std::string::npos) << f;
  }
  auto outputs = sched_->ListOutputs(id);
  ASSERT_TRUE(outputs.ok());
  std::multiset<int64_t> frames;
  for (const auto& o : outputs->outputs()) frames.insert(o.frame());
  EXPECT_EQ(frames, (std::multiset<int64_t>{1, 2, 3}));

  // And once more after another restart: the database agrees.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  info = Detail(id);
  EXPECT_EQ(info.state(), "done");
  EXPECT_EQ(info.frames_done(), 3);
  outputs = sched_->ListOutputs(id);
  ASSERT_TRUE(outputs.ok());
  EXPECT_EQ(outputs->outputs_size(), 3);
  auto db = OpenSqliteResourceDatabase(config_.db_path());
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  auto stored = (*db)->LoadFrames(id);
  ASSERT_TRUE(stored.ok()) << stored.status().ToString();
  ASSERT_EQ(stored->size(), 3u);
  for (const auto& f : *stored) {
    EXPECT_EQ(f.state, FrameState::kDone) << f.frame;
    EXPECT_EQ(f.output_path, "jobs/" + std::to_string(id) + "/" + OutputName(f.frame));
  }
  // New job ids continue after the stored ones.
  Desc d2;
  d2.name = "next";
  d2.frames = "1";
  EXPECT_EQ(Submit(d2), id + 1);
}

TEST_F(SchedulerTest, ResumedChunkOfAServerThatNeverReturnsIsRequeued) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);

  ASSERT_NO_FATAL_FAILURE(Reopen());
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  EXPECT_TRUE(b->TakeAssignments().empty());  // rs-a may still come back
  clock_.Advance(config_.heartbeat_timeout_ms);
  sched_->OnHeartbeat("rs-b");
  sched_->CheckTimeouts();
  EXPECT_TRUE(b->TakeAssignments().empty());
  clock_.Advance(1);
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "down");
  auto got_b = b->TakeAssignments();
  ASSERT_EQ(got_b.size(), 1u);
  EXPECT_EQ(got_b[0].attempt(), 2);
  sched_->OnResult("rs-b", OkResult(got_b[0]));
  EXPECT_EQ(Detail(id).state(), "done");
}

// ---------------------------------------------------------------- cancel ---

// A chunk stopped by a cancel reports the frames it had finished: they are
// placed and kept (done, with their output, across a restart); the rest of
// the chunk is cancelled.
TEST_F(SchedulerTest, ACancelledChunkKeepsTheFramesItFinished) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-4";
  d.chunk_size = 4;
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(sched_->Cancel(id).ok());
  pb::ChunkResult r = OkResult(got[0]);
  r.set_ok(false);
  r.set_exit_code(143);
  r.set_error("cancelled: job cancelled");
  r.mutable_outputs()->DeleteSubrange(2, 2);  // frames 1 and 2 were finished
  sched_->OnResult("rs-a", r);
  for (int round = 0; round < 2; ++round) {
    pb::JobInfo info = Detail(id);
    EXPECT_EQ(info.state(), "cancelled");
    EXPECT_EQ(info.frames_done(), 2) << "round " << round;
    EXPECT_EQ(info.chunks(0).state(), "cancelled");
    ASSERT_EQ(info.frame_info_size(), 4);
    for (int i = 0; i < 4; ++i) {
      EXPECT_EQ(info.frame_info(i).state(), i < 2 ? "done" : "cancelled") << i;
      EXPECT_EQ(PathExists(FramePath(id, i + 1)), i < 2) << i;
    }
    auto outputs = sched_->ListOutputs(id);
    ASSERT_TRUE(outputs.ok());
    EXPECT_EQ(outputs->outputs_size(), 2);
    if (round == 0) {
      ASSERT_NO_FATAL_FAILURE(Reopen());
    }
  }
}

// A scene error (a parse error, a missing texture) is the scene's, not the
// host's: the same one from two hosts fails the job at once with that
// reason, instead of every chunk burning every attempt.
TEST_F(SchedulerTest, TheSameSceneErrorOnTwoHostsFailsTheJobAtOnce) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  auto b = Connect(MakeRegister("rs-b", "host-b"));
  Desc d;
  d.frames = "1-6";
  d.max_attempts = 3;
  int64_t id = Submit(d);
  auto on_a = a->TakeAssignments();
  auto on_b = b->TakeAssignments();
  ASSERT_EQ(on_a.size(), 1u);
  ASSERT_EQ(on_b.size(), 1u);
  const std::string error =
      "povray exited with code 1: File 'clock.pov' line 1: Parse Error: Cannot open include "
      "file missing.inc.";
  pb::ChunkResult ra = FailResult(on_a[0], error);
  ra.set_scene_error(true);
  sched_->OnResult("rs-a", ra);
  EXPECT_EQ(Detail(id).state(), "running") << "one host could be the host's fault";
  pb::ChunkResult rb = FailResult(on_b[0], error);
  rb.set_scene_error(true);
  sched_->OnResult("rs-b", rb);
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_TRUE(HasSubstr(info.error(), "the scene fails the same way on host-a and host-b"))
      << info.error();
  EXPECT_TRUE(HasSubstr(info.error(), "Cannot open include file missing.inc")) << info.error();
  int attempts = 0;
  for (const auto& c : info.chunks()) attempts += c.attempts();
  EXPECT_LE(attempts, 4) << "chunks kept being retried";
  // The slots are free for other work (a retry given to rs-a before the
  // second report was cancelled with the job).
  (void)a->TakeAssignments();
  (void)b->TakeAssignments();
  Desc other;
  other.frames = "1";
  int64_t id2 = Submit(other);
  auto next = a->TakeAssignments();
  if (next.empty()) next = b->TakeAssignments();
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].job_id(), id2);
}

// A local job naming a package no render server has is accepted (one may
// register later) with a warning saying so; a job some server can render
// gets none.
TEST_F(SchedulerTest, SubmitWarnsWhenNoRenderServerHasThePackage) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc typo;
  typo.package = "povrey";
  int64_t id = Submit(typo);
  auto warnings = sched_->SubmitWarnings(id);
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_TRUE(HasSubstr(warnings[0], "no render server of this site has package 'povrey'"))
      << warnings[0];
  EXPECT_TRUE(HasSubstr(warnings[0], "the site has: povray")) << warnings[0];
  Desc fine;
  EXPECT_TRUE(sched_->SubmitWarnings(Submit(fine)).empty());
}

// `hosts` shows when a render server was last heard from, to the moment:
// an up server never shows a heartbeat older than the timeout (the row is
// written only every few seconds).
TEST_F(SchedulerTest, HostsShowTheLastHeartbeatNotTheLastRowWrite) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(1500);
    sched_->OnHeartbeat("rs-a");
    sched_->CheckTimeouts();
    pb::ListHostsResponse hosts = sched_->ListHosts();
    ASSERT_NE(Host(hosts, "rs-a"), nullptr);
    EXPECT_EQ(Host(hosts, "rs-a")->status(), "up");
    EXPECT_EQ(Host(hosts, "rs-a")->last_heartbeat_ms(), clock_.UnixMillis()) << "round " << i;
  }
}

TEST_F(SchedulerTest, CancelStopsPendingAndRunningChunks) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-3";
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_EQ(got[0].chunk(), 0);

  auto cancelled = sched_->Cancel(id);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status().ToString();
  EXPECT_EQ(cancelled->state(), "cancelled");
  auto cancels = a->Cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].job_id(), id);
  EXPECT_EQ(cancels[0].chunk(), 0);
  EXPECT_EQ(cancels[0].attempt(), 1);
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "cancelled");
  EXPECT_EQ(info.chunks(0).state(), "running");
  EXPECT_EQ(info.chunks(1).state(), "cancelled");
  EXPECT_EQ(info.chunks(2).state(), "cancelled");
  EXPECT_TRUE(sched_->ListJobs(false).empty());

  // Cancelling again changes nothing.
  cancelled = sched_->Cancel(id);
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(a->Cancels().size(), 1u);

  // A result arriving afterwards for the chunk that was running: its frame
  // was rendered before the render server heard of the cancel, so it is
  // kept (the job stays cancelled, and ends only once). A result for a
  // chunk that never ran places nothing.
  sched_->OnResult("rs-a", OkResult(got[0]));
  pb::Assignment never = got[0];
  never.set_chunk(1);
  sched_->OnResult("rs-a", OkResult(never));
  EXPECT_TRUE(PathExists(FramePath(id, 1)));
  for (int64_t f = 2; f <= 3; ++f) EXPECT_FALSE(PathExists(FramePath(id, f))) << f;
  info = Detail(id);
  EXPECT_EQ(info.state(), "cancelled");
  EXPECT_EQ(info.frames_done(), 1);
  EXPECT_EQ(info.chunks(0).state(), "done");
  EXPECT_EQ(info.chunks(1).state(), "cancelled");
  EXPECT_EQ(info.chunks(2).state(), "cancelled");
  EXPECT_NE(info.frame_info(0).output(), "");
  EXPECT_EQ(info.frame_info(1).output(), "");
  auto outputs = sched_->ListOutputs(id);
  ASSERT_TRUE(outputs.ok());
  EXPECT_EQ(outputs->outputs_size(), 1);
  int ended = 0;
  for (const auto& e : info.history()) ended += e.state() == "cancelled" ? 1 : 0;
  EXPECT_EQ(ended, 1) << "the cancel is recorded once";

  // The slot is free for other work.
  Desc other;
  other.name = "other";
  other.frames = "1";
  int64_t id2 = Submit(other);
  got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].job_id(), id2);

  EXPECT_FALSE(sched_->Cancel(id + 100).ok());
}

TEST_F(SchedulerTest, CancelledChunkOfALostServerEndsCancelled) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-2";
  int64_t id = Submit(d);
  ASSERT_EQ(a->TakeAssignments().size(), 1u);
  ASSERT_TRUE(sched_->Cancel(id).ok());
  // rs-a dies before reporting the cancelled chunk.
  clock_.Advance(config_.heartbeat_timeout_ms + 1);
  sched_->CheckTimeouts();
  EXPECT_EQ(HostStatus("rs-a"), "down");
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "cancelled");
  for (const auto& c : info.chunks()) EXPECT_EQ(c.state(), "cancelled") << c.index();

  auto a2 = Connect(MakeRegister("rs-a", "host-a"));
  EXPECT_TRUE(a2->TakeAssignments().empty());
  ASSERT_NO_FATAL_FAILURE(Reopen());
  info = Detail(id);
  EXPECT_EQ(info.state(), "cancelled");
  for (const auto& c : info.chunks()) EXPECT_EQ(c.state(), "cancelled") << c.index();
}

TEST_F(SchedulerTest, CancelWithTheServerDisconnectedEndsTheChunkAtOnce) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  sched_->OnDisconnect("rs-a", a.get());
  ASSERT_TRUE(sched_->Cancel(id).ok());
  EXPECT_TRUE(a->Cancels().empty());
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "cancelled");
  EXPECT_EQ(info.chunks(0).state(), "cancelled");
  // Back within grace still claiming the chunk: told to stop.
  pb::Register reg = MakeRegister("rs-a", "host-a");
  AddRunning(reg, got[0]);
  auto a2 = Connect(reg);
  ASSERT_EQ(a2->Cancels().size(), 1u);
  EXPECT_EQ(Host(sched_->ListHosts(), "rs-a")->slots(0).state(), "idle");
}

// ---------------------------------------------------------- submit errors ---

TEST_F(SchedulerTest, RemotePlacementWithoutPeersIsRefused) {
  Desc d;
  d.placement = "remote";
  auto id = sched_->Submit(Request(d));
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(HasSubstr(id.status().message(), "no remote site configured"));
  EXPECT_TRUE(HasSubstr(id.status().message(), "shot.toml"));
  EXPECT_TRUE(sched_->ListJobs(true).empty());
}

TEST_F(SchedulerTest, FileNamedButNotListedIsRefused) {
  Desc d;
  d.files = {"tex/wood.png"};
  pb::SubmitRequest req = Request(d);
  // Drop tex/wood.png from the request.
  ASSERT_EQ(req.files_size(), 2);
  ASSERT_EQ(req.files(1).path(), "tex/wood.png");
  req.mutable_files()->RemoveLast();
  auto id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(id.status().message(), "file 'tex/wood.png'"));
  EXPECT_TRUE(HasSubstr(id.status().message(), "not uploaded"));
  EXPECT_TRUE(sched_->ListJobs(true).empty());
}

TEST_F(SchedulerTest, FileListedButNotInTheFileServiceIsRefused) {
  Desc d;
  d.files = {"tex/wood.png"};
  pb::SubmitRequest req = Request(d);
  req.mutable_files(1)->set_sha256(Sha256Hex("bytes that were never uploaded"));
  auto id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(id.status().message(), "file 'tex/wood.png'"));
  EXPECT_TRUE(HasSubstr(id.status().message(), "was not uploaded"));
  EXPECT_TRUE(sched_->ListJobs(true).empty());
}

TEST_F(SchedulerTest, FileUploadedButNotNamedIsRefused) {
  Desc d;
  pb::SubmitRequest req = Request(d);
  pb::JobFile* extra = req.add_files();
  extra->set_path("extra.inc");
  extra->set_sha256(Upload("extra"));
  extra->set_size(5);
  auto id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(HasSubstr(id.status().message(), "file 'extra.inc'"));
}

TEST_F(SchedulerTest, BadDescriptionIsRefusedNamingTheLine) {
  pb::SubmitRequest req;
  req.set_description_name("broken.toml");
  req.set_description("name = \"broken\"\nframes = \"1-4\"\nchunk_size = = 2\n");
  auto id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(id.status().message(), "broken.toml:3")) << id.status().message();

  // Valid TOML, invalid key: the line is named too.
  Desc d;
  req = Request(d);
  req.set_description(d.Toml() + "bogus = 1\n");
  id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(HasSubstr(id.status().message(), "shot.toml:")) << id.status().message();
  EXPECT_TRUE(HasSubstr(id.status().message(), "bogus")) << id.status().message();

  // No name given: the message still says where the error is.
  req.clear_description_name();
  req.set_description("name = \"x\"\nframes = [\n");
  id = sched_->Submit(req);
  ASSERT_FALSE(id.ok());
  EXPECT_TRUE(HasSubstr(id.status().message(), "job description:")) << id.status().message();
  EXPECT_TRUE(sched_->ListJobs(true).empty());
}

TEST_F(SchedulerTest, UnknownJob) {
  EXPECT_EQ(sched_->GetJob(42, true).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(sched_->Cancel(42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(sched_->ListOutputs(42).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(sched_->GetLogs(42, 1).status().code(), StatusCode::kNotFound);
}

TEST_F(SchedulerTest, RegisterValidatesItsInput) {
  auto link = std::make_shared<FakeLink>();
  pb::Register reg = MakeRegister("", "host-a");
  EXPECT_FALSE(sched_->Register(reg, link).ok());
  reg = MakeRegister("rs-a", "host-a", {});
  Status st = sched_->Register(reg, link);
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(HasSubstr(st.message(), "offers no render slots"));
  // Fields the database would refuse are refused here, naming the field,
  // before any state changes.
  reg = MakeRegister("rs-a", "");
  st = sched_->Register(reg, link);
  EXPECT_TRUE(HasSubstr(st.message(), "register: host")) << st.ToString();
  reg = MakeRegister("rs-a", "host-a", {SlotOf("s0"), SlotOf("s0")});
  st = sched_->Register(reg, link);
  EXPECT_TRUE(HasSubstr(st.message(), "slots[1].name")) << st.ToString();
  reg = MakeRegister("rs-a", "host-a", {SlotOf("a/b")});
  EXPECT_FALSE(sched_->Register(reg, link).ok());
  reg = MakeRegister("rs/a", "host-a");
  EXPECT_FALSE(sched_->Register(reg, link).ok());
  reg = MakeRegister("rs-a", "host-a", {SlotOf("s0")}, {{"povray", "3.7"}, {"povray", "3.8"}});
  st = sched_->Register(reg, link);
  EXPECT_TRUE(HasSubstr(st.message(), "packages[1].name")) << st.ToString();
  // Found by tests/fuzz/scheduler_fuzz: a host name with a newline reached
  // chunks.failed_hosts (a newline-separated list) with the chunk's first
  // failure, the database refused the group, and the schedule server
  // exited. Control characters are refused in every name.
  st = sched_->Register(MakeRegister("rs-a", "host\na"), link);
  EXPECT_TRUE(HasSubstr(st.message(), "control characters")) << st.ToString();
  EXPECT_FALSE(sched_->Register(MakeRegister("rs\ta", "host-a"), link).ok());
  reg = MakeRegister("rs-a", "host-a");
  reg.mutable_hardware()->add_gpus("gpu\n0");
  st = sched_->Register(reg, link);
  EXPECT_TRUE(HasSubstr(st.message(), "hardware.gpus[0]")) << st.ToString();
  EXPECT_EQ(sched_->ListHosts().hosts_size(), 0);
  EXPECT_TRUE(link->Messages().empty());
}

TEST_F(SchedulerTest, ResultTimesAreBoundedByTheChunksWindow) {
  // Found by tests/fuzz/scheduler_fuzz: a result's ended_ms (the render
  // server's clock) was taken as is; a far-future value made the measured
  // frame time huge and the next placement estimate overflowed.
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-2";
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  clock_.Advance(3000);
  pb::ChunkResult r = OkResult(got[0]);
  r.set_ended_ms(std::numeric_limits<int64_t>::max());
  sched_->OnResult("rs-a", r);
  pb::JobInfo info = Detail(id);
  const pb::ChunkInfo* c = ChunkOf(info, got[0].chunk());
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->ended_at_ms(), clock_.UnixMillis());
  EXPECT_EQ(c->ended_at_ms() - c->started_at_ms(), 3000);
  // An estimate uses the measured 3 s per frame.
  Desc e;
  e.name = "e";
  e.placement = "auto";
  pb::QuoteResponse q = sched_->Quote(e.Toml());
  ASSERT_TRUE(q.can_render()) << q.reason();
  EXPECT_GT(q.estimated_finish_ms(), clock_.UnixMillis());
  EXPECT_LT(q.estimated_finish_ms(), clock_.UnixMillis() + 3'600'000);
}

TEST_F(SchedulerTest, LostCancelIsSentAgainWhenTheServerReRegisters) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-2";
  d.chunk_size = 2;
  int64_t id = Submit(d);
  auto got = a->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(sched_->Cancel(id).ok());
  // The stream drops before the cancel reached the render server, which
  // comes back still rendering the chunk.
  sched_->OnDisconnect("rs-a", a.get());
  pb::Register again = MakeRegister("rs-a", "host-a");
  auto* r = again.add_running();
  r->set_job_id(id);
  r->set_chunk(0);
  r->set_attempt(got[0].attempt());
  r->set_slot(got[0].slot());
  auto b = Connect(again);
  auto cancels = b->Cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].job_id(), id);
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "cancelled");
  EXPECT_EQ(info.chunks(0).state(), "cancelled");
}

TEST_F(SchedulerTest, ReconnectClaimingAChunkOnASlotItNoLongerOffers) {
  auto a = Connect(MakeRegister("rs-a", "host-a"));
  Desc d;
  d.frames = "1-2";
  int64_t id = Submit(d);
  auto first = a->TakeAssignments();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_EQ(first[0].slot(), "rs-a/s0");
  sched_->OnDisconnect("rs-a", a.get());

  // Back within grace, but its slot is now called t0: the claimed chunk has
  // no slot to run on, so it is requeued and the server told to stop it.
  pb::Register reg = MakeRegister("rs-a", "host-a", {SlotOf("t0")});
  AddRunning(reg, first[0]);
  auto a2 = Connect(reg);
  auto cancels = a2->Cancels();
  ASSERT_EQ(cancels.size(), 1u);
  EXPECT_EQ(cancels[0].chunk(), first[0].chunk());
  EXPECT_EQ(cancels[0].attempt(), 1);
  auto got = a2->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].slot(), "rs-a/t0");
  EXPECT_EQ(got[0].chunk(), first[0].chunk());
  EXPECT_EQ(got[0].attempt(), 2);

  // The result of the dropped attempt is ignored (and must not break the
  // slot bookkeeping).
  sched_->OnResult("rs-a", OkResult(first[0], " stale"));
  EXPECT_TRUE(a2->TakeAssignments().empty());
  EXPECT_FALSE(PathExists(FramePath(id, first[0].frames(0))));
  sched_->OnResult("rs-a", OkResult(got[0]));
  got = a2->TakeAssignments();
  ASSERT_EQ(got.size(), 1u);
  sched_->OnResult("rs-a", OkResult(got[0]));
  EXPECT_EQ(Detail(id).state(), "done");
  EXPECT_EQ(Host(sched_->ListHosts(), "rs-a")->slots_size(), 1);
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

// A chunk whose render servers keep dying under it (a frame that crashes
// hosts) fails after kMaxServerLosses losses instead of taking down the farm.
TEST_F(SchedulerTest, ChunkThatKeepsLosingItsRenderServerFails) {
  Desc d;
  d.frames = "1";
  int64_t id = Submit(d);
  for (int i = 0; i < 5; ++i) {
    std::string name = "rs-" + std::to_string(i);
    auto link = Connect(MakeRegister(name, "host-" + std::to_string(i)));
    auto got = link->TakeAssignments();
    ASSERT_EQ(got.size(), 1u) << "loss " << i;
    EXPECT_EQ(got[0].attempt(), i + 1);
    clock_.Advance(config_.heartbeat_timeout_ms + 1);
    sched_->CheckTimeouts();
    EXPECT_EQ(HostStatus(name), "down");
  }
  pb::JobInfo info = Detail(id);
  EXPECT_EQ(info.state(), "failed");
  EXPECT_EQ(info.chunks(0).state(), "failed");
  EXPECT_TRUE(HasSubstr(info.chunks(0).error(), "lost its render server 5 times"))
      << info.chunks(0).error();
  // A healthy server that arrives now gets nothing of it.
  auto healthy = Connect(MakeRegister("rs-ok", "host-ok"));
  EXPECT_TRUE(healthy->TakeAssignments().empty());
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

// A client that retries a submit whose answer was lost gets the same job,
// also after a schedule server restart.
TEST_F(SchedulerTest, RepeatedSubmitRequestIdReturnsTheFirstJob) {
  Desc d;
  pb::SubmitRequest req = Request(d);
  req.set_request_id("a1b2c3");
  auto first = sched_->Submit(req);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto again = sched_->Submit(req);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *first);
  EXPECT_EQ(sched_->ListJobs(true).size(), 1u);
  req.set_request_id("other");
  auto second = sched_->Submit(req);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(*second, *first);
  ASSERT_NO_FATAL_FAILURE(Reopen());
  req.set_request_id("a1b2c3");
  auto after_restart = sched_->Submit(req);
  ASSERT_TRUE(after_restart.ok());
  EXPECT_EQ(*after_restart, *first);
  EXPECT_EQ(sched_->ListJobs(true).size(), 2u);
  req.set_request_id("bad id!");
  auto bad = sched_->Submit(req);
  ASSERT_FALSE(bad.ok());
  EXPECT_TRUE(HasSubstr(bad.status().message(), "request_id")) << bad.status().ToString();
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

// The job summary's frame counts are kept incrementally (they must not cost
// a pass over a million frames per event). Through a random mix of results,
// failures, progress reports and a render server lost mid-chunk, they must
// always equal a recount over the per-frame states.
TEST_F(SchedulerTest, SummaryCountersMatchARecountThroughRandomEvents) {
  Desc d;
  d.frames = "1-60";
  d.chunk_size = 3;
  d.max_attempts = 2;
  int64_t id = Submit(d);
  std::map<std::string, std::shared_ptr<FakeLink>> links;
  for (const char* name : {"rs-a", "rs-b", "rs-c"}) {
    links[name] =
        Connect(MakeRegister(name, std::string("host-") + name, {SlotOf("s0"), SlotOf("s1")}));
  }
  uint32_t rng = 12345;
  auto next = [&](uint32_t n) {
    rng = rng * 1103515245u + 12345u;
    return (rng >> 16) % n;
  };
  auto check = [&](int step) {
    pb::JobInfo info = Detail(id);
    int done = 0, running = 0, failed = 0;
    for (const auto& f : info.frame_info()) {
      done += f.state() == "done";
      running += f.state() == "running";
      failed += f.state() == "failed";
    }
    ASSERT_EQ(info.frames_done(), done) << "step " << step;
    ASSERT_EQ(info.frames_running(), running) << "step " << step;
    ASSERT_EQ(info.frames_failed(), failed) << "step " << step;
    ASSERT_EQ(info.frames_total(), 60);
  };
  bool lost_one = false;
  for (int step = 0; step < 400; ++step) {
    std::vector<std::pair<std::string, pb::Assignment>> running;
    pb::JobInfo info = Detail(id);
    if (info.state() == "done" || info.state() == "failed") break;
    for (const auto& c : info.chunks()) {
      if (c.state() != "running") continue;
      for (const auto& a : links[c.render_server()]->Assignments()) {
        if (a.chunk() == c.index() && a.attempt() == c.attempts()) {
          running.emplace_back(c.render_server(), a);
        }
      }
    }
    ASSERT_FALSE(running.empty()) << "step " << step;
    auto& [server, a] = running[next(static_cast<uint32_t>(running.size()))];
    switch (next(10)) {
      case 0:
        sched_->OnResult(server, FailResult(a, "renderer crashed"));
        break;
      case 1:
      case 2: {
        pb::ChunkProgress p;
        p.set_job_id(a.job_id());
        p.set_chunk(a.chunk());
        p.set_attempt(a.attempt());
        p.set_frames_done(static_cast<int>(next(4)));
        sched_->OnProgress(server, p);
        break;
      }
      case 3:
        if (!lost_one) {
          // rs-c goes away mid-chunk: its chunks are requeued.
          lost_one = true;
          sched_->OnDisconnect("rs-c", links["rs-c"].get());
          clock_.Advance(config_.reconnect_grace_ms + 1);
          sched_->CheckTimeouts();
          break;
        }
        [[fallthrough]];
      default:
        sched_->OnResult(server, OkResult(a));
    }
    ASSERT_NO_FATAL_FAILURE(check(step));
  }
  pb::JobInfo info = Detail(id);
  EXPECT_TRUE(info.state() == "done" || info.state() == "failed") << info.state();
  EXPECT_EQ(info.frames_done() + info.frames_failed(), 60);
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

// chunk_size = "auto" plans chunks for the render slots that can run the job
// when it is submitted (chunk_planner.h): big chunks first, shrinking.
TEST_F(SchedulerTest, AutoChunkSizePlansForTheCapableSlots) {
  auto a = Connect(MakeRegister("rs-a", "host-a", {SlotOf("s0"), SlotOf("s1")}));
  auto b = Connect(MakeRegister("rs-b", "host-b", {SlotOf("s0"), SlotOf("s1")}));
  // A server without the package does not count.
  auto c =
      Connect(MakeRegister("rs-c", "host-c", {SlotOf("s0"), SlotOf("s1")}, {{"blender", "3.4.1"}}));
  Desc d;
  d.frames = "1-40";
  d.chunk_size = 0;
  int64_t id = Submit(d);
  pb::JobInfo info = Detail(id);
  std::vector<size_t> want = PlanChunkSizes(40, 4);
  ASSERT_EQ(info.chunks_size(), static_cast<int>(want.size()));
  for (int i = 0; i < info.chunks_size(); ++i) {
    auto fs = FrameSet::Parse(info.chunks(i).frames());
    ASSERT_TRUE(fs.ok());
    EXPECT_EQ(fs->size(), want[static_cast<size_t>(i)]) << "chunk " << i;
  }
  EXPECT_GT(want.front(), want.back());
  // The description keeps saying "auto".
  EXPECT_TRUE(HasSubstr(info.description(), "chunk_size = \"auto\"")) << info.description();
}

// ------------------------------------------------------------ outsourcing ---

// Answers quotes from a table; counts kicks.
class FakePeers final : public PeerDirectory {
 public:
  std::vector<PeerQuote> Quote(const std::string&, const std::vector<std::string>& peers) override {
    std::vector<PeerQuote> out;
    for (const auto& p : peers) {
      auto it = quotes.find(p);
      if (it != quotes.end()) out.push_back(it->second);
    }
    ++asked;
    return out;
  }
  void Kick() override { ++kicks; }
  std::map<std::string, PeerQuote> quotes;
  std::atomic<int> asked{0};
  std::atomic<int> kicks{0};
};

class OutsourcingSchedulerTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerTest::SetUp();
    PeerConfig p;
    p.name = "render-co";
    p.address = "127.0.0.1:1";
    p.secret = "0123456789abcdef";
    config_.peers.push_back(p);
    ASSERT_NO_FATAL_FAILURE(Reopen());
    sched_->SetPeerDirectory(&peers_);
    PeerQuote q;
    q.peer = "render-co";
    q.reachable = true;
    q.quote.set_can_render(true);
    q.quote.set_capable_slots(4);
    q.quote.set_estimated_finish_ms(clock_.UnixMillis() + 1000);
    peers_.quotes["render-co"] = q;
  }
  FakePeers peers_;
};

TEST_F(OutsourcingSchedulerTest, RemotePlacementOutsourcesAndNamesUnknownPeers) {
  Desc d;
  d.placement = "remote";
  const int64_t id = Submit(d);
  auto info = sched_->GetJob(id, true);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->queue(), "outsourced");
  EXPECT_EQ(info->remote_site(), "render-co");
  EXPECT_EQ(info->exchange(), "packaging");
  EXPECT_EQ(info->queue_position(), 1);
  ASSERT_GE(info->history_size(), 2);
  EXPECT_EQ(info->history(0).queue(), "new");
  EXPECT_EQ(info->history(1).queue(), "outsourced");
  EXPECT_GE(peers_.kicks.load(), 1);
  // Its chunks never go to a local render server.
  auto link = Connect(MakeRegister("rs1", "h1"));
  EXPECT_TRUE(link->Assignments().empty());

  Desc other;
  other.name = "other";
  std::string toml = other.Toml() + "";
  toml.insert(0, "placement = \"remote\"\nremote_site = \"elsewhere\"\n");
  pb::SubmitRequest req = Request(other);
  req.set_description(toml);
  auto bad = sched_->Submit(req);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("remote_site: 'elsewhere' is not a peer of site "
                                        "'testsite' (peers: render-co)"),
            std::string::npos)
      << bad.status().message();
}

TEST_F(OutsourcingSchedulerTest, AutoPlacementAsksPeersOnlyWhenTheSiteCannotRender) {
  auto link = Connect(MakeRegister("rs1", "h1"));
  Desc here;
  here.placement = "auto";
  const int64_t local = Submit(here);
  EXPECT_EQ(peers_.asked.load(), 0);
  EXPECT_EQ(sched_->GetJob(local, false)->queue(), "active");

  Desc maya = here;
  maya.name = "maya";
  maya.package = "maya";
  const int64_t remote = Submit(maya);
  auto info = sched_->GetJob(remote, false);
  EXPECT_EQ(info->remote_site(), "render-co");
  EXPECT_NE(info->placement().find("rs1 has no package 'maya'"), std::string::npos)
      << info->placement();

  // No peer can: it stays, saying why.
  peers_.quotes["render-co"].quote.set_can_render(false);
  peers_.quotes["render-co"].quote.set_reason("no render server can render it");
  maya.name = "maya2";
  const int64_t stays = Submit(maya);
  info = sched_->GetJob(stays, false);
  EXPECT_EQ(info->queue(), "active");
  EXPECT_NE(info->placement().find("render-co: no render server can render it"), std::string::npos)
      << info->placement();
}

TEST_F(OutsourcingSchedulerTest, AutoPlacementOutsourcesAJobThatWouldMissItsDeadline) {
  auto link = Connect(MakeRegister("rs1", "h1"));
  Desc d;
  d.placement = "auto";
  d.frames = "1-100";
  // 100 frames at the default 10 s per frame on one slot: ~1000 s here.
  std::string toml = d.Toml();
  toml.insert(0, "deadline = \"" + FormatRfc3339(clock_.UnixMillis() + 60'000) + "\"\n");
  pb::SubmitRequest req = Request(d);
  req.set_description(toml);
  auto id = sched_->Submit(req);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto info = sched_->GetJob(*id, false);
  EXPECT_EQ(info->remote_site(), "render-co") << info->placement();
  EXPECT_NE(info->placement().find("misses the deadline"), std::string::npos);
}

TEST_F(OutsourcingSchedulerTest, ExchangeStepsAreRecordedAndRedoneAfterARestart) {
  Desc d;
  d.placement = "remote";
  const int64_t id = Submit(d);
  auto tasks = sched_->TakeExchangeTasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].kind, ExchangeTask::kSendJob);
  EXPECT_EQ(tasks[0].job.id, id);
  EXPECT_TRUE(sched_->TakeExchangeTasks().empty());  // handed out once
  // Killed before the package was written: the step is due again.
  ASSERT_NO_FATAL_FAILURE(Reopen());
  sched_->SetPeerDirectory(&peers_);
  tasks = sched_->TakeExchangeTasks();
  ASSERT_EQ(tasks.size(), 1u);
  ASSERT_TRUE(sched_->MarkJobPackaged(id, "job-testsite-1").ok());
  sched_->OnJobDelivered(id, "render-co");
  EXPECT_EQ(sched_->GetJob(id, false)->exchange(), "delivered");
  auto poll = sched_->PollableOutsourcedJobs();
  ASSERT_EQ(poll["render-co"], std::vector<int64_t>{id});

  pb::RemoteJobStatus st;
  st.set_origin_job_id(id);
  st.set_job_id(9);
  st.set_state("running");
  st.set_frames_total(4);
  st.set_frames_done(2);
  sched_->OnRemoteStatus(id, st);
  auto info = sched_->GetJob(id, true);
  EXPECT_EQ(info->state(), "running");
  EXPECT_EQ(info->frames_done(), 2);
  EXPECT_EQ(info->remote_job_id(), 9);

  // Cancelled here: a cancel package is due.
  ASSERT_TRUE(sched_->Cancel(id).ok());
  tasks = sched_->TakeExchangeTasks();
  ASSERT_EQ(tasks.size(), 1u);
  EXPECT_EQ(tasks[0].kind, ExchangeTask::kSendCancel);
  ASSERT_TRUE(sched_->MarkCancelSent(id).ok());
  EXPECT_EQ(sched_->GetJob(id, false)->exchange(), "cancel sent");
  EXPECT_EQ(sched_->GetJob(id, false)->queue(), "");
}

TEST_F(OutsourcingSchedulerTest, RejectedPackageFailsTheJobWithThePeersReason) {
  Desc d;
  d.placement = "remote";
  const int64_t id = Submit(d);
  (void)sched_->TakeExchangeTasks();
  ASSERT_TRUE(sched_->MarkJobPackaged(id, "job-testsite-1").ok());
  sched_->OnJobRejected(id, "render-co", "files/big.exr: 20 GiB exceeds max_file");
  sched_->Flush();
  auto info = sched_->GetJob(id, false);
  EXPECT_EQ(info->state(), "failed");
  EXPECT_EQ(info->error(),
            "render-co refused the job package: files/big.exr: 20 GiB exceeds max_file");
  EXPECT_EQ(info->queue(), "");
}

TEST_F(OutsourcingSchedulerTest, ResultReportNumbersMustBeIntegers) {
  // Found by tests/fuzz/site_link_fuzz: a peer's report.json with a frame,
  // size or chunk number that is a float out of int64's range (1e300) was
  // converted with nlohmann's get<int64_t>(), which is undefined behaviour.
  Desc d;
  d.placement = "remote";
  d.frames = "1-2";
  const int64_t id = Submit(d);
  const std::string dir = root_ + "/result-pkg";
  ASSERT_TRUE(MakeDirs(dir + "/frames").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/frames/a.png", "png").ok());
  JobPackageManifest m;
  m.kind = JobPackageKind::kResult;
  m.name = "result-render-co-testsite-" + std::to_string(id);
  m.origin_site = "testsite";
  m.origin_job_id = id;
  m.from_site = "render-co";
  m.to_site = "testsite";
  m.state = "done";
  m.files.push_back(JobPackageFile{"frames/a.png", 3, Sha256Hex("png")});
  m.files.push_back(JobPackageFile{"report.json", 0, ""});
  auto report = [&](const std::string& frame, const std::string& size, const std::string& chunk) {
    return R"({"frames": [{"frame": )" + frame +
           R"(, "file": "frames/a.png", "sha256": "x", "size": )" + size + R"(, "chunk": )" +
           chunk + R"(}], "chunks": []})";
  };
  for (const auto& [text, field] :
       {std::pair{report("1e300", "3", "0"), "frame"}, std::pair{report("1", "1e300", "0"), "size"},
        std::pair{report("1", "3", "-1e300"), "chunk"}, std::pair{report("1.5", "3", "0"), "frame"},
        std::pair{report("1", "18446744073709551615", "0"), "size"},
        std::pair{report("1", "-3", "0"), "size"}}) {
    ASSERT_TRUE(WriteFileAtomic(dir + "/report.json", text).ok());
    Status st = sched_->CompleteOutsourcedJob(m, dir);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << text;
    EXPECT_TRUE(HasSubstr(st.message(), std::string("report.json: ") + field)) << st.message();
  }
  // Integers are fine: frame 1 placed, frame 2 failed at the peer.
  ASSERT_TRUE(WriteFileAtomic(dir + "/report.json", report("1", "3", "4")).ok());
  ASSERT_TRUE(sched_->CompleteOutsourcedJob(m, dir).ok());
  auto info = sched_->GetJob(id, false);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state(), "failed");
  EXPECT_EQ(info->frames_done(), 1);
}

}  // namespace
}  // namespace ff
