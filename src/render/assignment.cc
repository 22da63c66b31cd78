#include "render/assignment.h"

#include "base/text.h"
#include "core/frame_set.h"
#include "core/job_profile.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {

namespace pb = frameflow::v1;

std::string ChunkName(const pb::Assignment& a) {
  return "job " + std::to_string(a.job_id()) + " chunk " + std::to_string(a.chunk()) + " attempt " +
         std::to_string(a.attempt());
}

namespace {

// A clean relative job path: what NormaliseJobPath leaves unchanged.
bool CleanJobPath(const std::string& p) {
  auto n = NormaliseJobPath(p, "");
  return n.ok() && *n == p;
}

bool CleanCentralPath(const std::string& p) {
  auto n = NormaliseCentralPath(p, "");
  return n.ok() && *n == p;
}

// Limits in seconds are multiplied by 1000 on the way: bounded well below
// int64 (a thousand years).
constexpr int64_t kMaxLimitSeconds = int64_t{1000} * 366 * 86400;

}  // namespace

Status CheckAssignment(const pb::Assignment& a) {
  if (a.frames_size() == 0) return InvalidArgument("assignment has no frames");
  auto bad = [&](const std::string& field, const std::string& problem) {
    return InvalidArgument("assignment " + ChunkName(a) + ": " + field + ": " + problem);
  };
  auto in_range = [](int64_t f) { return f >= FrameSet::kMinFrame && f <= FrameSet::kMaxFrame; };
  for (int i = 0; i < a.frames_size(); ++i) {
    if (!in_range(a.frames(i))) return bad("frames", "frame outside the frame range");
    if (i > 0 && a.frames(i) <= a.frames(i - 1)) return bad("frames", "not ascending");
  }
  if (!in_range(a.job_first_frame()) || !in_range(a.job_last_frame())) {
    return bad("job_first_frame, job_last_frame", "outside the frame range");
  }
  if (!CleanJobPath(a.scene())) return bad("scene", "not a clean relative path");
  for (int i = 0; i < a.files_size(); ++i) {
    const pb::JobFile& f = a.files(i);
    const std::string field = "files[" + std::to_string(i) + "]";
    if (!CleanJobPath(f.path())) return bad(field + ".path", "not a clean relative path");
    if (!IsSha256Hex(f.sha256())) return bad(field + ".sha256", "not a SHA-256 digest");
    if (f.size() < 0) return bad(field + ".size", "negative");
  }
  const std::string& out = a.output();
  if (!out.empty()) {
    if (out.find('#') == std::string::npos) return bad("output", "has no '#'");
    if (out[0] == '/' ? !CleanCentralPath(out) : !CleanJobPath(out)) {
      return bad("output", "not a clean relative or central path");
    }
  }
  // 0: not set by the job (Blender keeps the scene's own resolution).
  if (a.width() < 0 || a.width() > 65536 || a.height() < 0 || a.height() > 65536) {
    return bad("width, height", "outside 0..65536");
  }
  const pb::SandboxPolicy& p = a.sandbox();
  if (!p.wrap()) return Status::Ok();
  for (int i = 0; i < p.central_size(); ++i) {
    const std::string field = "sandbox.central[" + std::to_string(i) + "]";
    if (!CleanCentralPath(p.central(i).path())) return bad(field + ".path", "not a central path");
    if (p.central(i).source() != "." && !CleanJobPath(p.central(i).source())) {
      return bad(field + ".source", "not '.' or a clean relative path");
    }
  }
  if (!p.output_dir().empty() && !CleanCentralPath(p.output_dir())) {
    return bad("sandbox.output_dir", "not a central path");
  }
  for (int64_t v :
       {p.memory(), p.processes(), p.wall_ms(), p.output_bytes(), p.file_bytes(), p.tmp_bytes()}) {
    if (v < 0) return bad("sandbox", "a negative limit");
  }
  if (p.cpu_seconds() < 0 || p.cpu_seconds() > kMaxLimitSeconds) {
    return bad("sandbox.cpu_seconds", "outside 0.." + std::to_string(kMaxLimitSeconds));
  }
  return Status::Ok();
}

ChunkSpec ChunkSpecOf(const pb::Assignment& a, int threads) {
  ChunkSpec spec;
  spec.job_id = a.job_id();
  spec.chunk = a.chunk();
  spec.frames.assign(a.frames().begin(), a.frames().end());
  spec.job_first_frame = a.job_first_frame();
  spec.job_last_frame = a.job_last_frame();
  spec.scene = a.scene();
  spec.width = a.width();
  spec.height = a.height();
  spec.threads = threads;
  // An absolute (central) output names its directory as the output area;
  // the pattern proper is its file name.
  spec.output_pattern = a.output().empty() || a.output()[0] != '/'
                            ? a.output()
                            : a.output().substr(a.output().rfind('/') + 1);
  spec.args.assign(a.args().begin(), a.args().end());
  return spec;
}

Result<sandbox::WrapSpec> WrapSpecOf(const pb::Assignment& a, const WrapSlot& slot,
                                     const ProcessSpec& ps, const std::string& out_dir,
                                     const std::vector<std::string>& dirs, int index,
                                     int64_t used_ms, int64_t used_cpu_ms) {
  const pb::SandboxPolicy& p = a.sandbox();
  // What earlier commands of the chunk left of its time limits.
  if (p.wall_ms() > 0 && used_ms >= p.wall_ms()) {
    return FailedPrecondition("wall-time limit: the chunk's earlier commands used its " +
                              std::to_string(p.wall_ms() / 1000) + " s");
  }
  if (p.cpu_seconds() > 0 && used_cpu_ms >= p.cpu_seconds() * 1000) {
    return FailedPrecondition("CPU-time limit: the chunk's earlier commands used its " +
                              std::to_string(p.cpu_seconds()) + " s of CPU");
  }
  sandbox::WrapSpec ws;
  ws.name = slot.run_name;
  ws.uid = slot.uid;
  ws.gid = slot.uid;
  ws.system = slot.system;
  ws.input = JoinPath(slot.secure_dir, "input");
  for (const auto& c : p.central()) {
    ws.central.push_back({c.source() == "." ? ws.input : JoinPath(ws.input, c.source()), c.path()});
  }
  ws.output = out_dir;
  ws.output_dirs = dirs;
  ws.collect_to = JoinPath(slot.secure_dir, "output");
  ws.cwd = ps.cwd;
  ws.env = ps.env;
  ws.limits.memory_bytes = p.memory() > 0 ? p.memory() : slot.memory_bytes;
  ws.limits.processes = p.processes();
  ws.limits.cpu_seconds =
      p.cpu_seconds() > 0 ? (p.cpu_seconds() * 1000 - used_cpu_ms + 999) / 1000 : 0;
  ws.limits.wall_ms = p.wall_ms() > 0 ? p.wall_ms() - used_ms : 0;
  if (p.output_bytes() > 0) ws.limits.output_bytes = p.output_bytes();
  ws.limits.file_bytes = p.file_bytes();
  if (p.tmp_bytes() > 0) ws.limits.tmp_bytes = p.tmp_bytes();
  ws.landlock_min_abi = slot.landlock_min_abi;
  ws.cgroup_parent = slot.cgroup_parent;
  ws.report = JoinPath(slot.secure_dir, "report.json");
  ws.summary = index == 0;  // once per chunk, at the top of its log
  ws.argv = ps.argv;
  return ws;
}

}  // namespace ff
