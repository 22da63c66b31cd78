#include "transfer/result_report.h"

#include <limits>
#include <nlohmann/json.hpp>

#include "base/json_fields.h"

namespace ff {

namespace {

using Json = nlohmann::json;
constexpr int64_t kIntMax = std::numeric_limits<int>::max();
constexpr int64_t kIntMin = std::numeric_limits<int>::min();

Result<ResultReport::Frame> ParseFrame(const Json& f) {
  ResultReport::Frame out;
  FF_ASSIGN_OR_RETURN(out.frame, JsonInt(f, "frame"));
  FF_ASSIGN_OR_RETURN(out.file, JsonString(f, "file"));
  FF_ASSIGN_OR_RETURN(out.sha256, JsonString(f, "sha256"));
  FF_ASSIGN_OR_RETURN(out.size, JsonInt(f, "size", std::nullopt, 0));
  FF_ASSIGN_OR_RETURN(out.render_server, JsonString(f, "render_server", ""));
  FF_ASSIGN_OR_RETURN(int64_t chunk, JsonInt(f, "chunk", 0, 0, kIntMax));
  out.chunk = static_cast<int>(chunk);
  return out;
}

Result<ResultReport::Chunk> ParseChunk(const Json& c) {
  ResultReport::Chunk out;
  FF_ASSIGN_OR_RETURN(int64_t index, JsonInt(c, "index", 0, 0, kIntMax));
  out.index = static_cast<int>(index);
  FF_ASSIGN_OR_RETURN(out.frames, JsonString(c, "frames", ""));
  FF_ASSIGN_OR_RETURN(out.state, JsonString(c, "state", ""));
  FF_ASSIGN_OR_RETURN(out.render_server, JsonString(c, "render_server", ""));
  FF_ASSIGN_OR_RETURN(out.slot, JsonString(c, "slot", ""));
  FF_ASSIGN_OR_RETURN(int64_t attempts, JsonInt(c, "attempts", 0, 0, kIntMax));
  out.attempts = static_cast<int>(attempts);
  FF_ASSIGN_OR_RETURN(int64_t exit_code, JsonInt(c, "exit_code", 0, kIntMin, kIntMax));
  out.exit_code = static_cast<int>(exit_code);
  FF_ASSIGN_OR_RETURN(out.started_ms, JsonInt(c, "started_ms", 0));
  FF_ASSIGN_OR_RETURN(out.ended_ms, JsonInt(c, "ended_ms", 0));
  FF_ASSIGN_OR_RETURN(out.error, JsonString(c, "error", ""));
  FF_ASSIGN_OR_RETURN(out.log, JsonString(c, "log", ""));
  return out;
}

}  // namespace

std::string ResultReportToJson(const ResultReport& r) {
  Json frames = Json::array();
  for (const auto& f : r.frames) {
    frames.push_back({{"frame", f.frame},
                      {"file", f.file},
                      {"sha256", f.sha256},
                      {"size", f.size},
                      {"render_server", f.render_server},
                      {"chunk", f.chunk}});
  }
  Json chunks = Json::array();
  for (const auto& c : r.chunks) {
    Json cj = {{"index", c.index},         {"frames", c.frames},
               {"state", c.state},         {"render_server", c.render_server},
               {"slot", c.slot},           {"attempts", c.attempts},
               {"exit_code", c.exit_code}, {"started_ms", c.started_ms},
               {"ended_ms", c.ended_ms},   {"error", c.error}};
    if (!c.log.empty()) cj["log"] = c.log;
    chunks.push_back(std::move(cj));
  }
  Json report = {{"site", r.site},
                 {"job_id", r.job_id},
                 {"origin_site", r.origin_site},
                 {"origin_job_id", r.origin_job_id},
                 {"state", r.state},
                 {"error", r.error},
                 {"frames", std::move(frames)},
                 {"chunks", std::move(chunks)}};
  return report.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
}

Result<ResultReport> ParseResultReport(std::string_view json) {
  Json j = Json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("frames") || !j["frames"].is_array() ||
      !j.contains("chunks") || !j["chunks"].is_array()) {
    return InvalidArgument("not a result report (frames, chunks)");
  }
  ResultReport r;
  FF_ASSIGN_OR_RETURN(r.site, JsonString(j, "site", ""));
  FF_ASSIGN_OR_RETURN(r.job_id, JsonInt(j, "job_id", 0));
  FF_ASSIGN_OR_RETURN(r.origin_site, JsonString(j, "origin_site", ""));
  FF_ASSIGN_OR_RETURN(r.origin_job_id, JsonInt(j, "origin_job_id", 0));
  FF_ASSIGN_OR_RETURN(r.state, JsonString(j, "state", ""));
  FF_ASSIGN_OR_RETURN(r.error, JsonString(j, "error", ""));
  for (const auto& f : j["frames"]) {
    FF_ASSIGN_OR_RETURN(ResultReport::Frame frame, ParseFrame(f));
    r.frames.push_back(std::move(frame));
  }
  for (const auto& c : j["chunks"]) {
    FF_ASSIGN_OR_RETURN(ResultReport::Chunk chunk, ParseChunk(c));
    r.chunks.push_back(std::move(chunk));
  }
  return r;
}

}  // namespace ff
