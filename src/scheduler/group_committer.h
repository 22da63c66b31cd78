// GroupCommitter: makes the scheduler's state changes durable in groups.
//
// The scheduler changes its in-memory state under its dispatch mutex and
// appends each change here as a WriteBatch, together with what may happen
// only once the change is durable: messages to render servers (assignments,
// cancels), storage directories to fsync (frames and logs renamed into
// them), jobs whose end is to be announced. One committer thread takes the
// whole pending group, fsyncs the directories, writes every batch in one
// transaction (ResourceDatabase::CommitGroup: one fsync), then sends the
// messages in order and reports the group durable. While it writes, the
// next changes form the next group, so under load hundreds of results and
// assignments share one fsync; on a quiet site a group holds one change.
//
// A failed fsync or commit is fatal (exit 70): the in-memory state is
// already ahead of the database, and going on would acknowledge changes that
// are not durable. The restart resumes from the last durable state.
//
// After Stop() nothing batches any more: an Append() commits at once and a
// SendWhenDurable() sends at once.
//
// Thread-safety: every method may be called from any thread. Appends are
// applied in the order of the calls; callers that need an order between
// changes (the scheduler) make them under one lock of their own. The
// on-durable callback runs on the committer thread with no lock of this
// class held.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/mutex.h"
#include "rpc/protocol.h"
#include "scheduler/render_server_link.h"
#include "store/resource_db.h"

namespace ff {

class GroupCommitter {
 public:
  // Called once a group is durable and its messages are sent, with the jobs
  // whose end the group made durable (AnnounceWhenDurable).
  using OnDurable = std::function<void(const std::vector<int64_t>& ended_jobs)>;
  // Fsyncs a directory (SyncDir in production; tests may count calls).
  using SyncDirFn = std::function<Status(const std::string& dir)>;

  GroupCommitter(ResourceDatabase* db, OnDurable on_durable, SyncDirFn sync_dir);
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Starts the committer thread.
  void Start();
  // Writes (and sends) everything pending, then stops the thread.
  void Stop();

  // Appends a state change; returns its sequence number (see WaitDurable).
  uint64_t Append(WriteBatch&& batch);
  // Queues a message that leaves only once everything appended so far is
  // durable. Ignored when `link` is null.
  void SendWhenDurable(const std::shared_ptr<RenderServerLink>& link,
                       frameflow::v1::ScheduleServerMessage msg);
  // Fsyncs `dir` before the group is written (frames or logs were renamed
  // into it before their rows were appended).
  void SyncDirWhenDurable(std::string dir);
  // Reports `job_id` to OnDurable once the group holding its end is durable.
  void AnnounceWhenDurable(int64_t job_id);

  // The sequence number of the last change appended.
  uint64_t appended() FF_EXCLUDES(mu_);
  // Returns once change `seq` is durable (or the committer stopped).
  void WaitDurable(uint64_t seq) FF_EXCLUDES(mu_);
  // WaitDurable(appended()).
  void Flush() FF_EXCLUDES(mu_);

  // Commits one batch at once, outside any group; fatal when it fails.
  void CommitOrDie(const WriteBatch& batch, const char* what);

 private:
  struct Group {
    std::vector<WriteBatch> batches;
    std::vector<std::pair<std::shared_ptr<RenderServerLink>, frameflow::v1::ScheduleServerMessage>>
        sends;
    std::set<std::string> dirs;
    std::vector<int64_t> ended_jobs;
    bool empty() const {
      return batches.empty() && sends.empty() && dirs.empty() && ended_jobs.empty();
    }
  };
  void Loop();

  ResourceDatabase* const db_;
  const OnDurable on_durable_;
  const SyncDirFn sync_dir_;

  Mutex mu_;
  CondVar work_cv_;     // the group has work, or stop
  CondVar durable_cv_;  // durable_seq_ advanced, or the committer exited
  Group pending_ FF_GUARDED_BY(mu_);
  uint64_t appended_seq_ FF_GUARDED_BY(mu_) = 0;
  uint64_t durable_seq_ FF_GUARDED_BY(mu_) = 0;
  bool stop_ FF_GUARDED_BY(mu_) = false;
  bool exited_ FF_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace ff
