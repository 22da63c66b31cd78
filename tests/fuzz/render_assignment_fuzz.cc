// Fuzz target: what a render server does with what its schedule server
// sends (Assignment) and with what its renderers print, up to the point
// where a process would be started (nothing is spawned):
// CheckAssignment, ChunkSpecOf, the package adapters (POV-Ray, Blender,
// command templates: Commands, OutputSubdirs, ExpandOutputPattern,
// ObserveLine, FindOutputs) and the I/O wrapper spec of each command
// (WrapSpecOf, ValidateSpec, ToArgs and the wrapper's own ParseWrapArgs),
// plus the wrapper's JSON report (ReportFromJson).
// (CancelChunk only matches queued and running chunks by id: it reaches
// no parsing or path code.)
//
//   record = op (1 byte) | arg (1 byte) | length (2 bytes, little endian) | payload
//
// Ops: 0 an Assignment (payload merged over a valid wrapped povray chunk,
// its repeated fields replacing the baseline's; arg is the time the chunk's
// earlier commands used), 1 a line of renderer output (payload with arg *
// 256 copies of its middle byte, at most 64 KiB as the process reader
// keeps),
// 2 a wrapper report (payload: JSON), 3 output files (payload: one name
// per line, created in an empty directory) found by each adapter.
//
// Checks: an assignment CheckAssignment accepts yields commands whose
// working directories, scene paths and output files stay inside the job
// and output directories; a wrapper spec that validates turns into
// arguments the wrapper parses back to the same arguments.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_common.h"
#include "render/package_adapter.h"
#include "render/render_server.h"
#include "rpc/protocol.h"
#include "sandbox/spec.h"
#include "sandbox/wrapper.h"
#include "util/fs.h"

namespace {

namespace pb = frameflow::v1;

constexpr size_t kMaxRecords = 16;
constexpr size_t kMaxLine = 64 * 1024;
const char kJobDir[] = "/srv/rs/work/s0.0/job";
const char kOutDir[] = "/srv/rs/work/s0.0/out";

// Command templates of the command-package adapter (render_config.h).
const char* const kTemplates[] = {
    "/usr/bin/tool --frame {frame} --out {output} {scene}",
    "tool -s {first} -e {last} -o {outdir}/x_{frame}.exr -w {width} -h {height} -t {threads}",
    "sh -c 'render \"{scene}\" > {output}' {job} {chunk}",
    "{scene} {output} {outdir} {frame}{frame}",
};

pb::Assignment Baseline() {
  pb::Assignment a;
  a.set_job_id(17);
  a.set_chunk(2);
  a.set_attempt(1);
  a.set_slot("rs1/s0");
  for (int64_t f : {5, 6, 7}) a.add_frames(f);
  a.set_package("povray");
  a.set_scene("scenes/clock.pov");
  a.set_width(320);
  a.set_height(240);
  a.set_output("frames/clock_####.png");
  a.add_args("+A0.3");
  auto* f = a.add_files();
  f->set_path("scenes/clock.pov");
  f->set_sha256(std::string(64, 'a'));
  f->set_size(100);
  f = a.add_files();
  f->set_path("tex/wood.png");
  f->set_sha256(std::string(64, 'b'));
  f->set_size(2000);
  a.set_job_first_frame(1);
  a.set_job_last_frame(24);
  a.set_client("studio");
  pb::SandboxPolicy* p = a.mutable_sandbox();
  p->set_wrap(true);
  p->set_processes(1024);
  p->set_cpu_seconds(600);
  p->set_wall_ms(900'000);
  p->set_output_bytes(int64_t{4} << 30);
  p->set_tmp_bytes(int64_t{1} << 30);
  auto* c = p->add_central();
  c->set_path("/studio/assets/clock");
  c->set_source("tex");
  return a;
}

ff::WrapSlot Slot(int index) {
  ff::WrapSlot s;
  s.run_name = "s0-j17-c2-a1-" + std::to_string(index);
  s.uid = 2'000'000'000;
  s.secure_dir = "/srv/rs/secure/studio/17/s0";
  s.memory_bytes = int64_t{2} << 30;
  for (const char* p : {"/usr", "/lib", "/lib64", "/bin"}) s.system.push_back({p, p});
  s.system.push_back({"/srv/rs/sandbox/povray.conf", "/etc/povray/3.7/povray.conf"});
  s.cgroup_parent = "frameflow/rs1-2000000000";
  s.landlock_min_abi = 1;
  return s;
}

// `path` lexically inside `dir` (or `dir` itself): "..", "." and empty
// components resolved without the filesystem.
bool Within(const std::string& path, const std::string& dir) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string part = path.substr(start, end - start);
    if (part == "..") {
      if (parts.empty()) return false;
      parts.pop_back();
    } else if (!part.empty() && part != ".") {
      parts.push_back(part);
    }
    start = end + 1;
  }
  std::string norm;
  for (const auto& p : parts) norm += "/" + p;
  return norm == dir || norm.rfind(dir + "/", 0) == 0;
}

struct Adapters {
  std::vector<std::unique_ptr<ff::PackageAdapter>> all;
  std::vector<ff::ChunkProgressState> progress;
  Adapters() {
    all.push_back(ff::MakePovrayAdapter("/usr/bin/povray"));
    all.push_back(ff::MakeBlenderAdapter("/usr/bin/blender"));
    for (const char* t : kTemplates) {
      all.push_back(ff::MakeCommandAdapter(ff::CommandPackageConfig{"tool", "1.0", t}));
    }
    progress.resize(all.size());
  }
};

void CheckWrapped(const pb::Assignment& a, const ff::ProcessSpec& ps, const std::string& out_dir,
                  const std::vector<std::string>& dirs, int index, uint8_t arg) {
  const int64_t used_ms = int64_t{arg >> 4} * 60'000;
  const int64_t used_cpu_ms = int64_t{arg & 0x0f} * 50'000;
  auto ws = ff::WrapSpecOf(a, Slot(index), ps, out_dir, dirs, index, used_ms, used_cpu_ms);
  if (!ws.ok()) return;
  (void)ff::sandbox::SummaryLines(*ws);
  if (!ff::sandbox::ValidateSpec(*ws).ok()) return;
  const std::vector<std::string> args = ff::sandbox::ToArgs(*ws);
  auto parsed = ff::sandbox::ParseWrapArgs(args);
  FUZZ_CHECK(parsed.ok(),
             "the wrapper refuses a spec that validated: " + parsed.status().message());
  FUZZ_CHECK(ff::sandbox::ToArgs(*parsed) == args, "the wrapper reads other arguments back");
  for (const auto& c : ws->central) {
    FUZZ_CHECK(Within(c.host, ws->input), "central mount source " + c.host + " outside the input");
  }
}

void Assign(Adapters& adapters, const std::string& payload, uint8_t arg) {
  pb::Assignment a = Baseline();
  pb::Assignment extra;
  if (!extra.ParseFromString(payload)) return;
  // Repeated fields the payload gives replace the baseline's.
  if (extra.frames_size() > 0) a.clear_frames();
  if (extra.files_size() > 0) a.clear_files();
  if (extra.args_size() > 0) a.clear_args();
  if (extra.sandbox().central_size() > 0) a.mutable_sandbox()->clear_central();
  a.MergeFrom(extra);
  if (!ff::CheckAssignment(a).ok()) return;  // the chunk fails, touching nothing

  ff::ChunkSpec spec = ff::ChunkSpecOf(a, 2);
  const bool wrap = a.sandbox().wrap();
  spec.job_dir = wrap ? ff::sandbox::kInputPath : kJobDir;
  spec.out_dir =
      wrap ? (a.sandbox().output_dir().empty() ? "/out" : a.sandbox().output_dir()) : kOutDir;
  FUZZ_CHECK(Within(ff::JoinPath(spec.job_dir, spec.scene), spec.job_dir), spec.scene);
  for (const auto& f : a.files()) {
    FUZZ_CHECK(Within(ff::JoinPath(spec.job_dir, f.path()), spec.job_dir), f.path());
  }
  const std::vector<std::string> dirs = ff::OutputSubdirs(spec);
  for (const std::string& d : dirs) {
    FUZZ_CHECK(!d.empty() && d[0] != '/' && Within(ff::JoinPath(spec.out_dir, d), spec.out_dir),
               "output sub-directory " + d);
  }
  for (int64_t f : spec.frames) {
    if (spec.output_pattern.empty()) break;
    const std::string name = ff::ExpandOutputPattern(spec.output_pattern, f);
    FUZZ_CHECK(Within(ff::JoinPath(spec.out_dir, name), spec.out_dir), "output file " + name);
  }
  for (size_t i = 0; i < adapters.all.size(); ++i) {
    auto commands = adapters.all[i]->Commands(spec);
    if (!commands.ok()) continue;
    for (size_t c = 0; c < commands->size(); ++c) {
      const ff::ProcessSpec& ps = (*commands)[c];
      FUZZ_CHECK(!ps.argv.empty() && !ps.argv[0].empty(), "a command without a program");
      FUZZ_CHECK(Within(ps.cwd, spec.job_dir), "working directory " + ps.cwd);
      if (wrap && c < 2) CheckWrapped(a, ps, spec.out_dir, dirs, static_cast<int>(c), arg);
    }
  }
}

void Observe(Adapters& adapters, std::string line, uint8_t arg) {
  // Long lines from short inputs: arg * 256 copies of the middle byte.
  if (arg > 0 && !line.empty()) {
    const size_t mid = line.size() / 2;
    line.insert(mid, size_t{arg} * 256, line[mid]);
  }
  if (line.size() > kMaxLine) line.resize(kMaxLine);
  // The process reader splits on both line ends.
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  for (size_t i = 0; i < adapters.all.size(); ++i) {
    adapters.all[i]->ObserveLine(line, &adapters.progress[i]);
    FUZZ_CHECK(adapters.progress[i].frames_done >= 0, "negative progress");
  }
}

void Find(Adapters& adapters, const std::string& payload) {
  auto dir = ff::MakeTempDir("ff-render-fuzz");
  FUZZ_CHECK(dir.ok(), dir.status().message());
  size_t start = 0, n = 0;
  while (start < payload.size() && n < 8) {
    size_t end = payload.find('\n', start);
    if (end == std::string::npos) end = payload.size();
    std::string name = payload.substr(start, end - start);
    start = end + 1;
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos || name.size() > 200) {
      continue;
    }
    std::ofstream(ff::JoinPath(*dir, name)) << "x";
    ++n;
  }
  ff::ChunkSpec spec = ff::ChunkSpecOf(Baseline(), 1);
  spec.out_dir = *dir;
  for (const std::string pattern : {"f_####.png", "a#b#.exr", ""}) {
    spec.output_pattern = pattern;
    for (auto& adapter : adapters.all) {
      auto found = adapter->FindOutputs(spec);
      if (!found.ok()) continue;
      for (const auto& [frame, path] : *found) {
        FUZZ_CHECK(Within(path, *dir), "an output outside the output directory: " + path);
      }
    }
  }
  (void)ff::RemoveAll(*dir);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogging();
  if (::access("/dev/shm", W_OK) == 0) ::setenv("TMPDIR", "/dev/shm", 1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Adapters adapters;
  size_t pos = 0;
  for (size_t n = 0; n < kMaxRecords && pos + 4 <= size; ++n) {
    const uint8_t op = data[pos], arg = data[pos + 1];
    size_t len = data[pos + 2] | (size_t{data[pos + 3]} << 8);
    pos += 4;
    if (len > size - pos) len = size - pos;
    const std::string payload(reinterpret_cast<const char*>(data + pos), len);
    pos += len;
    switch (op % 4) {
      case 0:
        Assign(adapters, payload, arg);
        break;
      case 1:
        Observe(adapters, payload, arg);
        break;
      case 2:
        if (auto report = ff::sandbox::ReportFromJson(payload); report.ok()) {
          const std::string json = ff::sandbox::ReportToJson(*report);
          auto again = ff::sandbox::ReportFromJson(json);
          FUZZ_CHECK(again.ok() && ff::sandbox::ReportToJson(*again) == json,
                     "a report does not read back: " + json);
        }
        break;
      case 3:
        Find(adapters, payload);
        break;
    }
  }
  return 0;
}
