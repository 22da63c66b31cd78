// Client-side operations shared by the CLI subcommands and the demo:
// connecting, submitting (with file upload), waiting, fetching, printing.
#pragma once

#include <cstdint>
#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "rpc/services.h"

namespace ff {

struct ClientOptions {
  std::string server;     // host:port; empty: site_root's address file, $FRAMEFLOW_SERVER, default
  std::string site_root;  // reads <site_root>/schedule-server.addr
  bool json = false;

  Result<std::unique_ptr<frameflow::v1::ScheduleServer::Stub>> Connect() const;
};

// Validates the description locally, uploads the files it names (only those
// the site lacks, by SHA-256) and submits it. Returns the job id.
Result<int64_t> SubmitJob(frameflow::v1::ScheduleServer::Stub* stub,
                          const std::string& description_path,
                          std::vector<std::string>* warnings = nullptr);

// Follows the job until it is done, failed or cancelled; draws a progress
// bar on stderr when `show_progress`. Survives schedule server restarts.
// `timeout_ms` > 0 bounds the wait (Unavailable when it passes).
Result<frameflow::v1::JobInfo> WaitForJob(frameflow::v1::ScheduleServer::Stub* stub, int64_t job_id,
                                          bool show_progress, int64_t timeout_ms = 0);

// `m` as pretty-printed JSON with proto field names, every field present,
// and every number a JSON number (64-bit integers too, unlike protobuf's
// own mapping): the one rule of every `--json` output.
std::string ToJson(const google::protobuf::Message& m);

Result<frameflow::v1::JobInfo> GetJobInfo(frameflow::v1::ScheduleServer::Stub* stub,
                                          int64_t job_id);

// Downloads every finished frame of the job into `dir` (verified by SHA-256).
Status FetchOutputs(frameflow::v1::ScheduleServer::Stub* stub, int64_t job_id,
                    const std::string& dir, int* count);

// One line: "job 7 [#####.....] 8/24 frames, 2 rendering  running".
std::string ProgressLine(const frameflow::v1::JobInfo& j);
// Queue and place in it: "active #2", "outsourced #1 -> render-co", "-".
std::string QueueText(const frameflow::v1::JobInfo& j);
void PrintJobs(const std::vector<frameflow::v1::JobInfo>& jobs, bool json, std::ostream& out);
void PrintJob(const frameflow::v1::JobInfo& job, bool json, std::ostream& out);
void PrintPeers(const frameflow::v1::ListPeersResponse& peers, bool json, std::ostream& out);
void PrintHosts(const frameflow::v1::ListHostsResponse& hosts, bool json, std::ostream& out);

}  // namespace ff
