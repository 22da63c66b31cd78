#include "scheduler/group_committer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

namespace ff {
namespace {

namespace pb = frameflow::v1;

// Records what is committed; CommitGroup can be held to build up a group.
class FakeDatabase : public ResourceDatabase {
 public:
  Status Commit(const WriteBatch& batch) override {
    std::lock_guard<std::mutex> lock(mu_);
    single_commits++;
    for (const auto& j : batch.job_updates) committed_jobs.push_back(j.id);
    return Status::Ok();
  }
  Status CommitGroup(const std::vector<WriteBatch>& batches) override {
    std::unique_lock<std::mutex> lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return !hold_; });
    groups.push_back(batches.size());
    for (const auto& b : batches) {
      for (const auto& j : b.job_updates) committed_jobs.push_back(j.id);
    }
    return Status::Ok();
  }
  void Hold() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = true;
    entered_ = false;
  }
  void WaitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
    cv_.notify_all();
  }
  std::vector<size_t> Groups() {
    std::lock_guard<std::mutex> lock(mu_);
    return groups;
  }
  std::vector<int64_t> Committed() {
    std::lock_guard<std::mutex> lock(mu_);
    return committed_jobs;
  }

  Result<std::vector<HostRecord>> LoadHosts() override { return std::vector<HostRecord>{}; }
  Result<std::vector<PackageRecord>> LoadPackages() override {
    return std::vector<PackageRecord>{};
  }
  Result<std::vector<RenderServerRecord>> LoadRenderServers() override {
    return std::vector<RenderServerRecord>{};
  }
  Result<std::vector<SlotRecord>> LoadSlots() override { return std::vector<SlotRecord>{}; }
  Result<std::vector<JobRecord>> LoadJobs() override { return std::vector<JobRecord>{}; }
  Result<std::optional<JobRecord>> LoadJob(int64_t) override { return std::optional<JobRecord>(); }
  Result<std::vector<ChunkRecord>> LoadChunks(int64_t) override {
    return std::vector<ChunkRecord>{};
  }
  Result<std::vector<FrameRecord>> LoadFrames(int64_t) override {
    return std::vector<FrameRecord>{};
  }
  Result<std::vector<JobEventRecord>> LoadJobEvents(int64_t) override {
    return std::vector<JobEventRecord>{};
  }
  Result<std::optional<std::string>> GetMeta(const std::string&) override {
    return std::optional<std::string>();
  }
  Result<int64_t> MaxJobId() override { return int64_t{0}; }
  Result<int> SchemaVersion() override { return 1; }

  int single_commits = 0;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool hold_ = false;
  bool entered_ = false;
  std::vector<size_t> groups;
  std::vector<int64_t> committed_jobs;
};

// Records what it was sent, and what the database held at that moment.
class ProbeLink : public RenderServerLink {
 public:
  explicit ProbeLink(FakeDatabase* db) : db_(db) {}
  void Send(const pb::ScheduleServerMessage& msg) override {
    sent.push_back(msg.assign().job_id());
    committed_when_sent.push_back(db_->Committed().size());
  }
  void Close() override {}
  std::vector<int64_t> sent;
  std::vector<size_t> committed_when_sent;

 private:
  FakeDatabase* db_;
};

WriteBatch JobUpdate(int64_t id) {
  WriteBatch b;
  JobRecord j;
  j.id = id;
  b.job_updates.push_back(j);
  return b;
}

pb::ScheduleServerMessage Assign(int64_t job) {
  pb::ScheduleServerMessage m;
  m.mutable_assign()->set_job_id(job);
  return m;
}

struct Harness {
  FakeDatabase db;
  std::vector<std::string> synced;
  std::vector<std::vector<int64_t>> announced;
  std::mutex mu;
  GroupCommitter committer{&db,
                           [this](const std::vector<int64_t>& ended) {
                             std::lock_guard<std::mutex> lock(mu);
                             announced.push_back(ended);
                           },
                           [this](const std::string& dir) {
                             synced.push_back(dir);
                             return Status::Ok();
                           }};
};

TEST(GroupCommitterTest, ChangesMadeWhileAGroupIsWrittenShareTheNextCommit) {
  Harness h;
  h.committer.Start();
  h.db.Hold();
  h.committer.Append(JobUpdate(1));
  h.db.WaitEntered();  // group 1 (job 1) is being written
  for (int64_t id = 2; id <= 5; ++id) h.committer.Append(JobUpdate(id));
  h.db.Release();
  h.committer.Flush();
  EXPECT_EQ(h.db.Groups(), (std::vector<size_t>{1, 4}));
  EXPECT_EQ(h.db.Committed(), (std::vector<int64_t>{1, 2, 3, 4, 5}));
  h.committer.Stop();
}

TEST(GroupCommitterTest, MessagesLeaveOnlyOnceTheirChangeIsDurableAndInOrder) {
  Harness h;
  auto link = std::make_shared<ProbeLink>(&h.db);
  h.committer.Start();
  h.db.Hold();
  h.committer.Append(JobUpdate(1));
  h.committer.SendWhenDurable(link, Assign(1));
  h.db.WaitEntered();
  h.committer.Append(JobUpdate(2));
  h.committer.SendWhenDurable(link, Assign(2));
  EXPECT_TRUE(link->sent.empty());
  h.db.Release();
  h.committer.Flush();
  EXPECT_EQ(link->sent, (std::vector<int64_t>{1, 2}));
  // Each message went out after its own change (and those before) was
  // written; it may wait for a later group (never leave before its own).
  ASSERT_EQ(link->committed_when_sent.size(), 2u);
  EXPECT_GE(link->committed_when_sent[0], 1u);
  EXPECT_GE(link->committed_when_sent[1], 2u);
  h.committer.Stop();
}

TEST(GroupCommitterTest, DirectoriesAreSyncedAndEndsAnnouncedWithTheGroup) {
  Harness h;
  h.committer.SyncDirWhenDurable("/storage/jobs/7");
  h.committer.AnnounceWhenDurable(7);
  h.committer.Append(JobUpdate(7));
  h.committer.Start();
  h.committer.Flush();
  h.committer.Stop();
  EXPECT_EQ(h.synced, (std::vector<std::string>{"/storage/jobs/7"}));
  ASSERT_EQ(h.announced.size(), 1u);
  EXPECT_EQ(h.announced[0], (std::vector<int64_t>{7}));
}

TEST(GroupCommitterTest, AfterStopChangesCommitAtOnce) {
  Harness h;
  auto link = std::make_shared<ProbeLink>(&h.db);
  h.committer.Start();
  h.committer.Stop();
  h.committer.Append(JobUpdate(9));
  h.committer.SendWhenDurable(link, Assign(9));
  EXPECT_EQ(h.db.single_commits, 1);
  EXPECT_EQ(link->sent, (std::vector<int64_t>{9}));
  h.committer.Flush();  // returns: nothing is pending
}

}  // namespace
}  // namespace ff
