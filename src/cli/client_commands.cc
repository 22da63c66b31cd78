#include "cli/client_commands.h"

#include <google/protobuf/util/json_util.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "core/job_profile.h"
#include "rpc/blob_client.h"
#include "rpc/grpc_status.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

void NumbersAsNumbers(const google::protobuf::Descriptor* d, nlohmann::json& j);

// One value of field `f` (an element, for a repeated field).
void NumberAsNumber(const google::protobuf::FieldDescriptor* f, nlohmann::json& v) {
  using FD = google::protobuf::FieldDescriptor;
  switch (f->cpp_type()) {
    case FD::CPPTYPE_INT64:
      if (v.is_string()) v = std::stoll(v.get<std::string>());
      break;
    case FD::CPPTYPE_UINT64:
      if (v.is_string()) v = std::stoull(v.get<std::string>());
      break;
    case FD::CPPTYPE_MESSAGE:
      if (v.is_object()) NumbersAsNumbers(f->message_type(), v);
      break;
    default:
      break;
  }
}

// protobuf's JSON mapping writes 64-bit integers as strings. frameflow's
// rule (docs: "--json"): every number is a JSON number — ids, frame
// numbers, times in ms and byte counts all stay far below 2^53.
void NumbersAsNumbers(const google::protobuf::Descriptor* d, nlohmann::json& j) {
  for (int i = 0; i < d->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* f = d->field(i);
    auto it = j.find(f->name());
    if (it == j.end()) continue;
    if (f->is_map()) {
      const auto* value = f->message_type()->FindFieldByName("value");
      for (auto& [key, v] : it->items()) NumberAsNumber(value, v);
    } else if (f->is_repeated()) {
      for (auto& v : *it) NumberAsNumber(f, v);
    } else {
      NumberAsNumber(f, *it);
    }
  }
}

}  // namespace

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  nlohmann::json j = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return out;
  NumbersAsNumbers(m.GetDescriptor(), j);
  return j.dump(2);
}

namespace {

std::string FormatTime(int64_t unix_ms) {
  if (unix_ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  std::ostringstream os;
  os << std::put_time(&tm, "%Y-%m-%d %H:%M:%S");
  return os.str();
}

}  // namespace

// "active #2", "outsourced #1 -> render-co", "-" once it left every queue.
std::string QueueText(const pb::JobInfo& j) {
  if (j.queue().empty()) return "-";
  std::string out = j.queue();
  if (j.queue_position() > 0) out += " #" + std::to_string(j.queue_position());
  if (!j.remote_site().empty()) out += " -> " + j.remote_site();
  return out;
}

std::string ProgressLine(const pb::JobInfo& j) {
  const int width = 30;
  int total = std::max(1, j.frames_total());
  int filled = static_cast<int>(static_cast<int64_t>(j.frames_done()) * width / total);
  std::string bar(static_cast<size_t>(filled), '#');
  bar += std::string(static_cast<size_t>(width - filled), '.');
  std::ostringstream os;
  os << "job " << j.job_id() << " [" << bar << "] " << j.frames_done() << "/" << j.frames_total()
     << " frames, " << j.frames_running() << " rendering";
  if (j.frames_failed() > 0) os << ", " << j.frames_failed() << " failed";
  os << "  " << j.state();
  if (!j.waiting_reason().empty()) os << " (" << j.waiting_reason() << ")";
  return os.str();
}

Result<std::unique_ptr<pb::ScheduleServer::Stub>> ClientOptions::Connect() const {
  std::string address = server;
  if (address.empty() && !site_root.empty()) {
    auto text = ReadFile(JoinPath(site_root, "schedule-server.addr"));
    if (!text.ok()) {
      return Unavailable("no schedule server is running for site root '" + site_root +
                         "' (no schedule-server.addr)");
    }
    address = *text;
    while (!address.empty() && (address.back() == '\n' || address.back() == ' ')) {
      address.pop_back();
    }
  }
  if (address.empty()) {
    const char* env = std::getenv("FRAMEFLOW_SERVER");
    address = env && *env ? env : "127.0.0.1:7450";
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5))) {
    return Unavailable("cannot reach the schedule server at " + address +
                       " (set --server or FRAMEFLOW_SERVER)");
  }
  return pb::ScheduleServer::NewStub(channel);
}

Result<int64_t> SubmitJob(pb::ScheduleServer::Stub* stub, const std::string& description_path,
                          std::vector<std::string>* warnings) {
  std::string source = BaseName(description_path);
  {
    // Checked before reading: a huge file would otherwise be read whole and
    // then refused by the transport without naming the file.
    struct stat st {};
    if (::stat(description_path.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        return InvalidArgument(description_path + ": is a directory, not a job description");
      }
      if (st.st_size > kMaxJobDescriptionBytes) {
        return InvalidArgument(source + ": the job description is " + std::to_string(st.st_size) +
                               " bytes, more than the limit of " +
                               std::to_string(kMaxJobDescriptionBytes));
      }
    }
  }
  FF_ASSIGN_OR_RETURN(std::string text, ReadFile(description_path));
  // Validate locally first: errors name the field and line before any upload.
  FF_ASSIGN_OR_RETURN(JobProfile profile, ParseJobDescription(text, source));
  const std::string base = DirName(description_path);
  pb::SubmitRequest req;
  req.set_description(text);
  req.set_description_name(source);
  std::vector<std::string> paths, shas;
  std::vector<int64_t> sizes;
  for (const auto& rel : profile.AllFiles()) {
    std::string abs = JoinPath(base, rel);
    std::string field = rel == profile.scene ? "render.scene" : "files";
    if (!PathExists(abs)) {
      return NotFound(source + ": " + field + ": file '" + rel + "' does not exist (looked for " +
                      abs + ")");
    }
    struct stat st {};
    if (::stat(abs.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return InvalidArgument(source + ": " + field + ": '" + rel +
                             "' is a directory; name the files in it (looked at " + abs + ")");
    }
    int64_t size = 0;
    auto sha = Sha256File(abs, &size);
    if (!sha.ok()) return sha.status().WithContext(source + ": " + field + ": file '" + rel + "'");
    auto* f = req.add_files();
    f->set_path(rel);
    f->set_sha256(*sha);
    f->set_size(size);
    paths.push_back(abs);
    shas.push_back(*sha);
    sizes.push_back(size);
  }
  FF_ASSIGN_OR_RETURN(auto missing, MissingBlobs(stub, shas));
  std::set<std::string> need(missing.begin(), missing.end());
  for (size_t i = 0; i < paths.size(); ++i) {
    if (!need.erase(shas[i])) continue;
    FF_RETURN_IF_ERROR(UploadFileBlob(stub, paths[i], shas[i], sizes[i])
                           .WithContext(source + ": uploading '" + req.files(i).path() + "'"));
  }
  // A lost answer is retried with the same request id: the job is created once.
  std::random_device rd;
  char rid[33];
  std::snprintf(rid, sizeof(rid), "%08x%08x%08x%08x", rd(), rd(), rd(), rd());
  req.set_request_id(rid);
  Status st;
  for (int attempt = 0; attempt < 5; ++attempt) {
    pb::SubmitResponse resp;
    grpc::ClientContext ctx;
    st = FromGrpc(stub->Submit(&ctx, req, &resp), "Submit");
    if (st.ok()) {
      if (warnings) warnings->assign(resp.warnings().begin(), resp.warnings().end());
      return resp.job_id();
    }
    if (st.code() != StatusCode::kUnavailable) break;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  return st;
}

Result<pb::JobInfo> WaitForJob(pb::ScheduleServer::Stub* stub, int64_t job_id, bool show_progress,
                               int64_t timeout_ms) {
  const bool tty = ::isatty(STDERR_FILENO);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last_line;
  pb::JobInfo last;
  // The watch stream ends when the job is final; a broken stream (schedule
  // server restart) is re-opened.
  for (int failures = 0; failures < 120;) {
    grpc::ClientContext ctx;
    if (timeout_ms > 0) {
      if (std::chrono::system_clock::now() >= deadline) break;
      ctx.set_deadline(deadline);
    }
    pb::JobRef ref;
    ref.set_job_id(job_id);
    auto reader = stub->WatchJob(&ctx, ref);
    pb::JobEvent ev;
    while (reader->Read(&ev)) {
      failures = 0;
      last = ev.job();
      if (show_progress) {
        std::string line = ProgressLine(last);
        if (tty) {
          std::cerr << "\r\033[K" << line << std::flush;
        } else if (line != last_line) {
          std::cerr << line << "\n";
        }
        last_line = line;
      }
    }
    grpc::Status st = reader->Finish();
    if (last.state() == "done" || last.state() == "failed" || last.state() == "cancelled") {
      if (show_progress && tty) std::cerr << "\n";
      return last;
    }
    if (st.error_code() == grpc::StatusCode::NOT_FOUND) return FromGrpc(st, "WatchJob");
    ++failures;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (timeout_ms > 0 && std::chrono::system_clock::now() >= deadline) {
    return Unavailable("job " + std::to_string(job_id) + " did not finish within " +
                       std::to_string(timeout_ms / 1000) + " s (it is " + last.state() + ")");
  }
  return Unavailable("lost the schedule server while waiting for job " + std::to_string(job_id));
}

Result<pb::JobInfo> GetJobInfo(pb::ScheduleServer::Stub* stub, int64_t job_id) {
  pb::JobRef ref;
  ref.set_job_id(job_id);
  pb::JobInfo info;
  grpc::ClientContext ctx;
  FF_RETURN_IF_ERROR(FromGrpc(stub->GetJob(&ctx, ref, &info), "GetJob"));
  return info;
}

Status FetchOutputs(pb::ScheduleServer::Stub* stub, int64_t job_id, const std::string& dir,
                    int* count) {
  pb::JobRef ref;
  ref.set_job_id(job_id);
  pb::OutputsResponse outs;
  grpc::ClientContext ctx;
  FF_RETURN_IF_ERROR(FromGrpc(stub->ListOutputs(&ctx, ref, &outs), "ListOutputs"));
  for (const auto& o : outs.outputs()) {
    std::string dest = JoinPath(dir, o.name());
    if (PathExists(dest)) {
      auto sha = Sha256File(dest);
      if (sha.ok() && *sha == o.sha256()) continue;  // already fetched
    }
    FF_RETURN_IF_ERROR(
        DownloadBlobToFile(stub, o.sha256(), dest)
            .WithContext("fetching frame " + std::to_string(o.frame()) + " to " + dest));
  }
  if (count) *count = outs.outputs_size();
  return Status::Ok();
}

void PrintJobs(const std::vector<pb::JobInfo>& jobs, bool json, std::ostream& out) {
  if (json) {
    pb::ListJobsResponse resp;
    for (const auto& j : jobs) *resp.add_jobs() = j;
    out << ToJson(resp) << "\n";
    return;
  }
  // Names and queues are never cut: their columns are as wide as the
  // longest one (at least the heading).
  size_t name_w = 4, queue_w = 5;
  for (const auto& j : jobs) {
    name_w = std::max(name_w, j.name().size());
    queue_w = std::max(queue_w, QueueText(j).size());
  }
  const int nw = static_cast<int>(name_w) + 2, qw = static_cast<int>(queue_w) + 2;
  out << std::left << std::setw(6) << "ID" << std::setw(nw) << "NAME" << std::setw(11) << "STATE"
      << std::setw(5) << "PRI" << std::setw(12) << "FRAMES" << std::setw(14) << "DONE"
      << std::setw(16) << "PACKAGE" << std::setw(qw) << "QUEUE"
      << "SUBMITTED\n";
  for (const auto& j : jobs) {
    std::string done = std::to_string(j.frames_done()) + "/" + std::to_string(j.frames_total());
    out << std::left << std::setw(6) << j.job_id() << std::setw(nw) << j.name() << std::setw(11)
        << j.state() << std::setw(5) << j.priority() << std::setw(12) << j.frames().substr(0, 11)
        << std::setw(14) << done << std::setw(16) << j.package().substr(0, 15) << std::setw(qw)
        << QueueText(j) << FormatTime(j.submit_time_ms()) << "\n";
  }
}

void PrintJob(const pb::JobInfo& j, bool json, std::ostream& out) {
  if (json) {
    out << ToJson(j) << "\n";
    return;
  }
  out << "job " << j.job_id() << " '" << j.name() << "': " << j.state() << "\n";
  out << "  package:   " << j.package() << "\n";
  out << "  frames:    " << j.frames() << " (" << j.frames_done() << "/" << j.frames_total()
      << " done, " << j.frames_running() << " rendering, " << j.frames_failed() << " failed)\n";
  out << "  priority:  " << j.priority() << "   queue: " << QueueText(j) << "\n";
  if (!j.placement().empty()) out << "  placement: " << j.placement() << "\n";
  if (!j.remote_site().empty()) {
    out << "  outsourced to " << j.remote_site();
    if (j.remote_job_id() != 0) out << " (its job " << j.remote_job_id() << ")";
    out << ", exchange: " << j.exchange();
    if (!j.remote_state().empty()) out << ", state there: " << j.remote_state();
    out << "\n";
  }
  if (!j.origin_site().empty()) {
    out << "  from " << j.origin_site() << " (its job " << j.origin_job_id() << "), client "
        << j.client() << ", exchange: " << (j.exchange().empty() ? "-" : j.exchange()) << "\n";
  }
  if (j.deadline_ms() != 0) out << "  deadline:  " << FormatTime(j.deadline_ms()) << "\n";
  out << "  submitted: " << FormatTime(j.submit_time_ms())
      << "   finished: " << FormatTime(j.finish_time_ms()) << "\n";
  if (!j.sandbox().empty()) out << "  sandbox:   " << j.sandbox() << "\n";
  if (!j.waiting_reason().empty()) out << "  waiting:   " << j.waiting_reason() << "\n";
  if (!j.error().empty()) out << "  error:     " << j.error() << "\n";
  out << "  storage:   " << j.storage_dir() << "\n";
  if (j.history_size() > 0) {
    out << "  history:\n";
    for (const auto& e : j.history()) {
      out << "    " << FormatTime(e.time_ms()) << "  " << std::left << std::setw(11)
          << (e.queue().empty() ? "-" : e.queue()) << std::setw(10) << e.state() << e.note()
          << "\n";
    }
  }
  // Which render server rendered which frames.
  std::map<std::string, std::vector<int64_t>> by_server;
  for (const auto& f : j.frame_info()) {
    if (f.state() == "done") by_server[f.render_server()].push_back(f.frame());
  }
  if (!by_server.empty()) {
    out << "  rendered by:\n";
    for (const auto& [server, frames] : by_server) {
      std::ostringstream fs;
      // Compact runs for reading.
      for (size_t i = 0; i < frames.size();) {
        size_t k = i;
        while (k + 1 < frames.size() && frames[k + 1] == frames[k] + 1) ++k;
        fs << (i ? "," : "") << frames[i];
        if (k > i) fs << "-" << frames[k];
        i = k + 1;
      }
      out << "    " << std::left << std::setw(16) << server << frames.size()
          << " frame(s): " << fs.str() << "\n";
    }
  }
  out << "  chunks:\n";
  out << "    " << std::left << std::setw(7) << "CHUNK" << std::setw(14) << "FRAMES"
      << std::setw(11) << "STATE" << std::setw(9) << "ATTEMPT" << std::setw(18) << "RENDER SERVER"
      << "ERROR\n";
  for (const auto& c : j.chunks()) {
    out << "    " << std::left << std::setw(7) << c.index() << std::setw(14) << c.frames()
        << std::setw(11) << c.state() << std::setw(9) << c.attempts() << std::setw(18)
        << (c.render_server().empty() ? "-" : c.render_server()) << c.error() << "\n";
  }
  out << "  frames:\n";
  out << "    " << std::left << std::setw(8) << "FRAME" << std::setw(11) << "STATE" << std::setw(18)
      << "RENDER SERVER"
      << "OUTPUT\n";
  for (const auto& f : j.frame_info()) {
    out << "    " << std::left << std::setw(8) << f.frame() << std::setw(11) << f.state()
        << std::setw(18) << (f.render_server().empty() ? "-" : f.render_server())
        << (f.output().empty() ? "-" : f.output()) << "\n";
  }
}

void PrintPeers(const pb::ListPeersResponse& peers, bool json, std::ostream& out) {
  if (json) {
    out << ToJson(peers) << "\n";
    return;
  }
  if (peers.peers_size() == 0) {
    out << "site '" << peers.site() << "' has no peers\n";
    return;
  }
  for (const auto& p : peers.peers()) {
    const auto& c = p.counters();
    out << p.name() << " at " << p.address() << ": " << p.state();
    if (!p.last_error().empty()) out << " (" << p.last_error() << ")";
    out << "\n  last ok: " << FormatTime(p.last_ok_ms())
        << "   packages waiting in hotfolders/out: " << p.packages_waiting() << "\n";
    out << "  sent: " << c.packages_sent() << " package(s), " << c.blobs_sent() << " file(s), "
        << FormatBytes(c.bytes_sent(), ByteStyle::kOneDecimal)
        << "; already there: " << c.blobs_skipped() << " file(s), "
        << FormatBytes(c.bytes_skipped(), ByteStyle::kOneDecimal)
        << "; resumed: " << FormatBytes(c.bytes_resumed(), ByteStyle::kOneDecimal)
        << "; refused: " << c.packages_rejected() << "; failed calls: " << c.failures() << "\n";
  }
}

void PrintHosts(const pb::ListHostsResponse& hosts, bool json, std::ostream& out) {
  if (json) {
    out << ToJson(hosts) << "\n";
    return;
  }
  if (hosts.hosts_size() == 0) out << "no render server has registered with this site\n";
  for (const auto& h : hosts.hosts()) {
    out << h.render_server() << " on " << h.host() << ": " << h.status() << " (last heartbeat "
        << FormatTime(h.last_heartbeat_ms()) << ")\n";
    out << "  hardware: " << h.hardware().cores() << " cores, "
        << FormatBytes(h.hardware().memory_bytes(), ByteStyle::kOneDecimal) << ", "
        << h.hardware().cpu_model();
    if (h.hardware().gpus_size() > 0) out << ", " << h.hardware().gpus_size() << " GPU(s)";
    out << ", " << h.hardware().os() << "\n";
    out << "  packages:";
    for (const auto& p : h.packages()) out << " " << p.name() << " " << p.version();
    if (h.packages_size() == 0) out << " none";
    out << "\n";
    for (const auto& s : h.slots()) {
      out << "  slot " << std::left << std::setw(14) << s.id() << s.spec().cores() << " cores, "
          << FormatBytes(s.spec().memory_bytes(), ByteStyle::kOneDecimal) << ", " << s.spec().gpus()
          << " GPU  " << s.state();
      if (s.state() == "busy") out << " (job " << s.job_id() << " chunk " << s.chunk() << ")";
      out << "\n";
    }
  }
}

}  // namespace ff
