// ResultReport: report.json of a result package (job_package.h), the typed
// record of what a remote site rendered for a job: every frame's file in the
// package with its SHA-256, size and who rendered it, and every chunk with
// its state, attempts and log. Written by the remote site's exchange, read
// by the origin's scheduler when it places the frames on storage.
//
// The reader trusts nothing: every number is checked to be an integer in
// range (a float or an out-of-range number is an error naming its key), and
// strings must be strings. Whether the files exist and match is checked
// against the package manifest by the caller.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ff {

struct ResultReport {
  struct Frame {
    int64_t frame = 0;
    std::string file;    // path inside the package ("frames/clock_0001.png")
    std::string sha256;  // lower-case hex
    int64_t size = 0;
    std::string render_server;  // at the remote site
    int chunk = 0;              // remote chunk index
  };
  struct Chunk {
    int index = 0;
    std::string frames;  // FrameSet text
    std::string state;   // remote chunk state (ChunkStateName)
    std::string render_server;
    std::string slot;
    int attempts = 0;
    int exit_code = 0;
    int64_t started_ms = 0;
    int64_t ended_ms = 0;
    std::string error;
    std::string log;  // path inside the package, "" when none
  };
  std::string site;  // the remote site that wrote it
  int64_t job_id = 0;
  std::string origin_site;
  int64_t origin_job_id = 0;
  std::string state;  // the remote job's final state (JobStateName)
  std::string error;
  std::vector<Frame> frames;
  std::vector<Chunk> chunks;
};

// JSON text of a report (2-space indented, trailing newline).
std::string ResultReportToJson(const ResultReport& report);

// Parses a report. `frames` and `chunks` must be arrays; errors name the
// key at fault ("size: not an integer in 0..9223372036854775807").
Result<ResultReport> ParseResultReport(std::string_view json);

}  // namespace ff
