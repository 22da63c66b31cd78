#include "store/resource_db.h"

#include <iterator>
#include <utility>

namespace ff {

namespace {

// Appends `from` to the end of `to`, keeping order: ops of `from` are later.
template <typename T>
void MoveAppend(std::vector<T>& to, std::vector<T>& from) {
  if (to.empty()) {
    to = std::move(from);
  } else {
    to.insert(to.end(), std::make_move_iterator(from.begin()), std::make_move_iterator(from.end()));
  }
  from.clear();
}

}  // namespace

const char* ServerStatusName(ServerStatus s) {
  switch (s) {
    case ServerStatus::kUp:
      return "up";
    case ServerStatus::kDown:
      return "down";
    case ServerStatus::kDraining:
      return "draining";
  }
  return "unknown";
}

const char* SlotStateName(SlotState s) {
  switch (s) {
    case SlotState::kIdle:
      return "idle";
    case SlotState::kBusy:
      return "busy";
    case SlotState::kDown:
      return "down";
  }
  return "unknown";
}

const char* JobStateName(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "queued";
    case JobState::kRunning:
      return "running";
    case JobState::kDone:
      return "done";
    case JobState::kFailed:
      return "failed";
    case JobState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

std::optional<JobState> ParseJobState(std::string_view name) {
  for (JobState s : {JobState::kQueued, JobState::kRunning, JobState::kDone, JobState::kFailed,
                     JobState::kCancelled}) {
    if (name == JobStateName(s)) return s;
  }
  return std::nullopt;
}

bool JobStateFinal(JobState s) {
  return s == JobState::kDone || s == JobState::kFailed || s == JobState::kCancelled;
}

const char* ChunkStateName(ChunkState s) {
  switch (s) {
    case ChunkState::kQueued:
      return "queued";
    case ChunkState::kRunning:
      return "running";
    case ChunkState::kDone:
      return "done";
    case ChunkState::kFailed:
      return "failed";
    case ChunkState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

const char* FrameStateName(FrameState s) {
  switch (s) {
    case FrameState::kQueued:
      return "queued";
    case FrameState::kRunning:
      return "running";
    case FrameState::kDone:
      return "done";
    case FrameState::kFailed:
      return "failed";
    case FrameState::kCancelled:
      return "cancelled";
  }
  return "unknown";
}

bool WriteBatch::empty() const {
  return hosts.empty() && packages.empty() && render_servers.empty() && slot_sets.empty() &&
         slot_updates.empty() && new_jobs.empty() && job_updates.empty() && chunk_updates.empty() &&
         frame_updates.empty() && job_events.empty() && meta.empty();
}

void WriteBatch::Append(WriteBatch&& other) {
  if (&other == this) return;  // appending a batch to itself would alias its vectors
  MoveAppend(hosts, other.hosts);
  MoveAppend(packages, other.packages);
  MoveAppend(job_events, other.job_events);
  MoveAppend(render_servers, other.render_servers);
  MoveAppend(slot_sets, other.slot_sets);
  MoveAppend(slot_updates, other.slot_updates);
  MoveAppend(new_jobs, other.new_jobs);
  MoveAppend(job_updates, other.job_updates);
  MoveAppend(chunk_updates, other.chunk_updates);
  MoveAppend(frame_updates, other.frame_updates);
  MoveAppend(meta, other.meta);
}

Status CheckResourceDatabaseUrl(const std::string& url) {
  if (url.empty() || url == "sqlite:") return Status::Ok();
  if (url.rfind("sqlite:", 0) == 0) {
    const std::string path = url.substr(7);
    if (path.empty() || path[0] != '/') {
      return InvalidArgument("'" + url + "': a SQLite path must be absolute (sqlite:/var/lib/...)");
    }
    return Status::Ok();
  }
  const size_t colon = url.find(':');
  const std::string scheme = colon == std::string::npos ? url : url.substr(0, colon);
  return InvalidArgument("'" + url + "': the '" + scheme +
                         "' database is not supported by this build; use \"sqlite:\" (the "
                         "embedded database, the default) or \"sqlite:/absolute/path\"");
}

Result<std::unique_ptr<ResourceDatabase>> OpenResourceDatabase(
    const std::string& url, const std::string& default_sqlite_path) {
  FF_RETURN_IF_ERROR(CheckResourceDatabaseUrl(url).WithContext("database.url"));
  if (url.empty() || url == "sqlite:") return OpenSqliteResourceDatabase(default_sqlite_path);
  return OpenSqliteResourceDatabase(url.substr(7));
}

}  // namespace ff
