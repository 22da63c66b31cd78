#include "scheduler/group_committer.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

namespace ff {

namespace pb = frameflow::v1;

GroupCommitter::GroupCommitter(ResourceDatabase* db, OnDurable on_durable, SyncDirFn sync_dir)
    : db_(db), on_durable_(std::move(on_durable)), sync_dir_(std::move(sync_dir)) {}

GroupCommitter::~GroupCommitter() { Stop(); }

void GroupCommitter::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void GroupCommitter::Stop() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
    // Never started: nothing will drain the group, so mark the exit here.
    if (!thread_.joinable()) exited_ = true;
  }
  work_cv_.Signal();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(&mu_);
  if (!pending_.empty()) {
    // Appended between the drain and the exit flag (only possible before
    // Start()): written now.
    Group rest = std::move(pending_);
    pending_ = Group();
    lock.Unlock();
    for (const auto& b : rest.batches) CommitOrDie(b, "state change after stop");
    for (auto& [link, msg] : rest.sends) link->Send(msg);
  }
}

uint64_t GroupCommitter::Append(WriteBatch&& batch) {
  MutexLock lock(&mu_);
  if (batch.empty()) return appended_seq_;
  if (exited_) {
    lock.Unlock();
    CommitOrDie(batch, "state change after stop");
    lock.Lock();
    return appended_seq_;
  }
  pending_.batches.push_back(std::move(batch));
  work_cv_.Signal();
  return ++appended_seq_;
}

void GroupCommitter::SendWhenDurable(const std::shared_ptr<RenderServerLink>& link,
                                     pb::ScheduleServerMessage msg) {
  if (!link) return;
  MutexLock lock(&mu_);
  if (exited_) {
    lock.Unlock();
    link->Send(msg);
    return;
  }
  pending_.sends.emplace_back(link, std::move(msg));
  work_cv_.Signal();
  ++appended_seq_;
}

void GroupCommitter::SyncDirWhenDurable(std::string dir) {
  MutexLock lock(&mu_);
  pending_.dirs.insert(std::move(dir));
}

void GroupCommitter::AnnounceWhenDurable(int64_t job_id) {
  MutexLock lock(&mu_);
  pending_.ended_jobs.push_back(job_id);
  work_cv_.Signal();
}

uint64_t GroupCommitter::appended() {
  MutexLock lock(&mu_);
  return appended_seq_;
}

void GroupCommitter::WaitDurable(uint64_t seq) {
  MutexLock lock(&mu_);
  while (durable_seq_ < seq && !exited_) durable_cv_.Wait(lock);
}

void GroupCommitter::Flush() {
  MutexLock lock(&mu_);
  const uint64_t seq = appended_seq_;
  while (durable_seq_ < seq && !exited_) durable_cv_.Wait(lock);
}

void GroupCommitter::CommitOrDie(const WriteBatch& batch, const char* what) {
  if (batch.empty()) return;
  Status st = db_->Commit(batch);
  if (!st.ok()) {
    // The in-memory state is already ahead of the database; continuing would
    // acknowledge changes that are not durable. Exit and let the restart
    // resume from the last durable state.
    spdlog::critical("cannot record {} in the resource database: {}; exiting", what, st.message());
    std::_Exit(70);
  }
}

void GroupCommitter::Loop() {
  MutexLock lock(&mu_);
  while (true) {
    while (!stop_ && pending_.empty()) work_cv_.Wait(lock);
    if (pending_.empty()) {  // stopping, and everything is written
      exited_ = true;
      durable_cv_.SignalAll();
      return;
    }
    Group group = std::move(pending_);
    pending_ = Group();
    const uint64_t seq = appended_seq_;
    lock.Unlock();
    // Frames and logs were renamed into these directories before their
    // results were appended; the renames must be durable before the rows
    // that point at them.
    for (const std::string& dir : group.dirs) {
      Status st = sync_dir_(dir);
      if (!st.ok()) {
        spdlog::critical("cannot make frames durable on storage: {}; exiting", st.message());
        std::_Exit(70);
      }
    }
    if (!group.batches.empty()) {
      Status st = db_->CommitGroup(group.batches);
      if (!st.ok()) {
        spdlog::critical("cannot record {} state change(s) in the resource database: {}; exiting",
                         group.batches.size(), st.message());
        std::_Exit(70);
      }
    }
    for (auto& [link, msg] : group.sends) link->Send(msg);
    lock.Lock();
    durable_seq_ = seq;
    durable_cv_.SignalAll();
    lock.Unlock();
    on_durable_(group.ended_jobs);
    lock.Lock();
  }
}

}  // namespace ff
