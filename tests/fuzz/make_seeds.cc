// Writes the binary seed inputs of the protobuf-driven fuzz targets into
// tests/fuzz/corpus/<target>/ (the text seeds are written by hand). Run
// after changing a harness's input format, and commit what it writes:
//
//   build-fuzz/tests/fuzz/fuzz_make_seeds tests/fuzz/corpus
//
// Every seed is a sequence of records: op | arg | length (2 bytes, little
// endian) | payload, in the format of the target's header comment.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

#include "rpc/protocol.h"
#include "util/sha256.h"

namespace {

namespace pb = frameflow::v1;

class Seed {
 public:
  Seed& Add(uint8_t op, uint8_t arg, const std::string& payload = "") {
    bytes_ += static_cast<char>(op);
    bytes_ += static_cast<char>(arg);
    bytes_ += static_cast<char>(payload.size() & 0xff);
    bytes_ += static_cast<char>(payload.size() >> 8);
    bytes_ += payload;
    return *this;
  }
  Seed& Add(uint8_t op, uint8_t arg, const google::protobuf::Message& m) {
    return Add(op, arg, m.SerializeAsString());
  }
  const std::string& bytes() const { return bytes_; }

 private:
  std::string bytes_;
};

std::string g_dir;

void Write(const std::string& target, const std::string& name, const Seed& seed) {
  const std::filesystem::path dir = std::filesystem::path(g_dir) / target;
  std::filesystem::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out << seed.bytes();
  std::printf("%s/%s: %zu bytes\n", target.c_str(), name.c_str(), seed.bytes().size());
}

// ------------------------------------------------------------ scheduler ---
// Ops of scheduler_fuzz.cc.
enum SchedulerOp : uint8_t {
  kRegister,
  kHeartbeat,
  kProgress,
  kResult,
  kFailResult,
  kDisconnect,
  kTime,
  kSubmit,
  kCancel,
  kQuery,
  kSwitch,
  kReregister,
};

void SchedulerSeeds() {
  {
    // One render server renders both jobs to the end.
    Seed s;
    s.Add(kRegister, 0);
    for (int i = 0; i < 12; ++i) {
      s.Add(kProgress, static_cast<uint8_t>(2 * i));
      s.Add(kHeartbeat, 0);
      s.Add(kResult, static_cast<uint8_t>(2 * i + (i % 2)));
    }
    s.Add(kQuery, 0).Add(kQuery, 4).Add(kQuery, 3 | 8);
    Write("scheduler", "render_everything", s);
  }
  {
    // Two render servers; one goes silent, comes back with its chunks.
    pb::Register b;
    b.set_render_server("rs-b");
    b.set_host("host-b");
    Seed s;
    s.Add(kRegister, 0).Add(kRegister, 0, b);
    s.Add(kResult, 0).Add(kSwitch, 0).Add(kResult, 0);
    s.Add(kTime, 12).Add(kHeartbeat, 0).Add(kTime, 12);
    s.Add(kReregister, 0).Add(kResult, 2).Add(kSwitch, 1).Add(kReregister, 1);
    s.Add(kQuery, 2);
    Write("scheduler", "two_servers_timeout", s);
  }
  {
    // Failures on every host until the chunks fail for good.
    pb::Register b;
    b.set_render_server("rs-b");
    b.set_host("host-b");
    Seed s;
    s.Add(kRegister, 0).Add(kRegister, 0, b);
    for (int i = 0; i < 8; ++i) s.Add(kSwitch, static_cast<uint8_t>(i)).Add(kFailResult, 2 * i);
    s.Add(kQuery, 0);
    Write("scheduler", "failures", s);
  }
  {
    // A stream ends mid-chunk; the server reconnects within the grace.
    Seed s;
    s.Add(kRegister, 0).Add(kProgress, 0).Add(kDisconnect, 0).Add(kTime, 4);
    s.Add(kReregister, 0).Add(kProgress, 0).Add(kResult, 0).Add(kResult, 2);
    Write("scheduler", "reconnect", s);
  }
  {
    // Cancels while chunks run; late results of a cancelled job.
    Seed s;
    s.Add(kRegister, 0).Add(kCancel, 0).Add(kResult, 0).Add(kResult, 2).Add(kCancel, 1);
    s.Add(kCancel, 0x80 | 1).Add(kCancel, 0x80 | 99).Add(kQuery, 1 | 0x40);
    Write("scheduler", "cancel_running", s);
  }
  {
    // A job submitted by the input: auto chunks, a deadline, auto placement.
    pb::SubmitRequest req;
    req.set_description(R"(name = "c"
priority = 90
placement = "auto"
deadline = "2030-01-01T00:00:00Z"
frames = "1-40x3, 7"
chunk_size = "auto"
files = ["inc/parts.inc"]

[package]
name = "povray"

[render]
scene = "scene.pov"
output = "c/c_##.png"

[requirements]
memory = "2G"
)");
    req.set_request_id("retry-1");
    Seed s;
    s.Add(kRegister, 0).Add(kSubmit, 0, req).Add(kSubmit, 0, req);
    for (int i = 0; i < 6; ++i) s.Add(kResult, static_cast<uint8_t>(2 * i));
    s.Add(kQuery, 5, req.description()).Add(kQuery, 0 | (2 << 3));
    Write("scheduler", "submit_auto", s);
  }
  {
    // Messages about chunks that do not exist, and a bad registration.
    pb::ChunkResult r;
    r.set_job_id(99999);
    r.set_chunk(-1);
    r.set_attempt(7);
    pb::ChunkProgress p;
    p.set_job_id(1);
    p.set_chunk(1000);
    p.set_frames_done(-5);
    pb::Register dup;
    dup.add_slots()->set_name("s0");
    pb::Register running;
    auto* rc = running.add_running();
    rc->set_job_id(2);
    rc->set_chunk(3);
    rc->set_attempt(1);
    rc->set_slot("s1");
    Seed s;
    s.Add(kResult, 0, r).Add(kProgress, 0, p).Add(kRegister, 0, dup).Add(kRegister, 0, running);
    s.Add(kResult, 0, r).Add(kProgress, 0, p).Add(kResult, 1);
    Write("scheduler", "unknown_chunks", s);
  }
  {
    // A result reporting times far off the schedule server's clock, then a
    // placement that uses the measured frame times.
    pb::ChunkResult r;
    r.set_ended_ms(std::numeric_limits<int64_t>::max());
    pb::SubmitRequest req;
    req.set_description(R"(name = "d"
placement = "auto"
deadline = "2030-01-01T00:00:00Z"
frames = "1-4"
files = ["inc/parts.inc"]
[package]
name = "povray"
[render]
scene = "scene.pov"
output = "d_#.png"
)");
    Seed s;
    s.Add(kRegister, 0).Add(kResult, 0, r).Add(kResult, 2, r).Add(kSubmit, 0, req);
    s.Add(kQuery, 5, req.description());
    Write("scheduler", "regress-clock-skew", s);
  }
}

// ------------------------------------------------------------ site link ---
// Ops of site_link_fuzz.cc.
enum SiteLinkOp : uint8_t {
  kAuth,
  kOffer,
  kPush,
  kDeliver,
  kIngest,
  kQuote,
  kRemoteJobs,
  kSend,
  kBlob,
  kClock,
  kRender,
};

// Package baselines of site_link_fuzz.cc, by arg.
constexpr uint8_t kJobPackage = 0, kResultPackage = 1, kCancelPackage = 2, kRejectionPackage = 3;

void SiteLinkSeeds() {
  {
    Seed s;
    pb::RemoteJobsRequest jobs;
    jobs.add_origin_job_ids(7);
    jobs.add_origin_job_ids(-1);
    s.Add(kSend, kJobPackage).Add(kRender, 0).Add(kRemoteJobs, 0, jobs).Add(kQuote, 0);
    s.Add(kRender, 0).Add(kRemoteJobs, 4, jobs).Add(kSend, kJobPackage);
    Write("site_link", "deliver_job", s);
  }
  {
    Seed s;
    s.Add(kSend, kResultPackage).Add(kSend, kResultPackage);
    Write("site_link", "deliver_result", s);
  }
  {
    Seed s;
    s.Add(kSend, kCancelPackage).Add(kSend, kJobPackage).Add(kSend, kRejectionPackage);
    Write("site_link", "cancel_before_job", s);
  }
  {
    // The courier's steps one by one: a broken push resumed, then Deliver.
    Seed s;
    s.Add(kOffer, kJobPackage)
        .Add(kPush, kJobPackage | 0x20)
        .Add(kPush, kJobPackage | (1 << 3) | 0x40);
    s.Add(kOffer, kJobPackage).Add(kPush, kJobPackage | (1 << 3)).Add(kDeliver, kJobPackage);
    s.Add(kPush, kJobPackage | (2 << 3)).Add(kDeliver, kJobPackage).Add(kIngest, 0);
    s.Add(kOffer, kJobPackage).Add(kDeliver, kJobPackage | 4);
    Write("site_link", "offer_push_deliver", s);
  }
  {
    const std::string now = "1700001000000";
    Seed s;
    s.Add(kAuth, 0x80 | 0, "ff-peer=studio\nff-time=" + now + "\nff-auth=x");
    s.Add(kAuth, 0x80 | 1, "ff-peer=studio\nff-time=" + now + "\nff-peer=other");
    s.Add(kAuth, 0x80 | 3, "ff-peer=weak\nff-time=" + now);
    s.Add(kAuth, 2, "ff-peer=nobody\nff-time=1\nff-auth=00");
    s.Add(kAuth, 0x80 | 4, "ff-peer=other\nff-time=1699999000000");
    s.Add(kAuth, 0x80 | 4, "ff-peer=other\nff-time=9999999999999999999");
    Write("site_link", "authenticate", s);
  }
  {
    // A job package whose description and scene are the input's own.
    const std::string toml = R"(name = "custom"
frames = "-3-3x2"
chunk_size = "auto"
files = ["assets/a.inc"]
[package]
name = "povray"
[render]
scene = "s.pov"
output = "/studio/out/c/c_#.png"
[[central]]
path = "/studio/assets/c"
source = "assets"
)";
    const std::string manifest = R"({"format": "frameflow-package/1", "kind": "job",
 "name": "job-studio-8", "origin_site": "studio", "origin_job_id": 8, "from_site": "studio",
 "to_site": "render-co", "client": "studio-client", "created_ms": 1, "description": "job.toml",
 "files": [{"path": "job.toml", "size": @SIZE0@, "sha256": "@SHA0@"},
  {"path": "files/s.pov", "size": @SIZE1@, "sha256": "@SHA1@"},
  {"path": "files/assets/a.inc", "size": @SIZE1@, "sha256": "@SHA1@"}]})";
    Seed s;
    s.Add(kBlob, 0, toml)
        .Add(kBlob, 0, std::string("sphere { 0, 1 }\n"))
        .Add(kSend, kJobPackage, manifest);
    s.Add(kRender, 1).Add(kRender, 0);
    Write("site_link", "custom_job", s);
  }
  {
    // A result report of the input's own.
    const std::string report = R"({"frames": [{"frame": 1, "file": "frames/o_1.png",
 "sha256": "x", "size": 1e3, "chunk": 7}, {"frame": 2, "file": "report.json", "sha256": "",
 "size": 0}], "chunks": [{"index": 3, "frames": "1-2", "log": "report.json", "error": "e"}]})";
    const std::string manifest = R"({"format": "frameflow-package/1", "kind": "result",
 "name": "result-studio-render-co-1", "origin_site": "render-co", "origin_job_id": 1,
 "from_site": "studio", "to_site": "render-co", "client": "", "created_ms": 2,
 "state": "failed", "reason": "r", "remote_job_id": 9,
 "files": [{"path": "report.json", "size": @SIZE0@, "sha256": "@SHA0@"},
  {"path": "frames/o_1.png", "size": @SIZE1@, "sha256": "@SHA1@"}]})";
    Seed s;
    s.Add(kBlob, 0, report).Add(kBlob, 0, std::string("png")).Add(kSend, kResultPackage, manifest);
    Write("site_link", "custom_report", s);
  }
}

// ---------------------------------------------------- render assignment ---
// Ops of render_assignment_fuzz.cc.
enum RenderOp : uint8_t { kAssign, kLine, kReport, kFind };

void RenderSeeds() {
  {
    // The baseline (a wrapped POV-Ray chunk) and what POV-Ray prints.
    Seed s;
    s.Add(kAssign, 0).Add(kAssign, 0x35);
    for (const char* line : {"Persistence of Vision(tm) Ray Tracer Version 3.7.0.10.unofficial",
                             "  Fatal Stream to console.........On ", "Rendering frame 5 of 7",
                             "  Output file........../srv/out/f05.png, 24 bpp PNG",
                             "  Output file........../srv/out/f06.png, 24 bpp PNG",
                             "File 'clock.pov' line 3: Parse Error: No matching } in 'sphere'"}) {
      s.Add(kLine, 0, std::string(line));
    }
    s.Add(kReport, 0, std::string(R"({"exit_code": 0, "signal": 0, "limit": "", "reason": "",
 "setup_error": "", "collected": [{"path": "f05.png", "size": 1200}],
 "refused": [{"path": "../x", "why": "a symlink"}], "cpu_ms": 1500, "wall_ms": 2100,
 "peak_memory": 104857600, "launch_us": 900})"));
    s.Add(kFind, 0, std::string("f05.png\nf6.png\nf-7.png\nf_00005.png\nclock_0005.png\na5b6.exr"));
    Write("render_assignment", "povray_wrapped", s);
  }
  {
    // A plain command-template chunk without output files, per template.
    pb::Assignment a;
    a.set_package("tool");
    a.mutable_sandbox()->set_wrap(false);
    a.set_output("");
    Seed s;
    for (uint8_t t = 0; t < 4; ++t) s.Add(kAssign, t, a);
    a.set_output("sub/dir/x_#.exr");
    s.Add(kAssign, 1, a).Add(kLine, 0, std::string("tool: cannot open input"));
    Write("render_assignment", "command_plain", s);
  }
  {
    // Central paths: an absolute output and the whole job mounted.
    pb::Assignment a;
    a.set_package("blender");
    a.set_output("/studio/renders/clock/shot/clock_####.png");
    a.mutable_sandbox()->set_output_dir("/studio/renders/clock/shot");
    auto* c = a.mutable_sandbox()->add_central();
    c->set_path("/studio/all");
    c->set_source(".");
    a.mutable_sandbox()->set_memory(int64_t{1} << 30);
    a.mutable_sandbox()->set_file_bytes(1 << 20);
    Seed s;
    s.Add(kAssign, 0, a);
    for (const char* line : {"Fra:5 Mem:10.50M (Peak 11.00M) | Time:00:00.05 | Syncing Cube",
                             "Saved: '/x/f_00005.png'", "Fra:-6 Mem:1M", "Error: Cannot read"}) {
      s.Add(kLine, 0, std::string(line));
    }
    Write("render_assignment", "central_blender", s);
  }
  {
    // Time limits the chunk's earlier commands used up; odd frames.
    pb::Assignment a;
    a.mutable_sandbox()->set_cpu_seconds(60);
    a.mutable_sandbox()->set_wall_ms(120'000);
    a.clear_frames();
    for (int64_t f : {-1000000, -1, 0, 100000000}) a.add_frames(f);
    Seed s;
    s.Add(kAssign, 0xff, a).Add(kAssign, 0x11, a);
    Write("render_assignment", "limits_used", s);
  }
  {
    // What CheckAssignment refuses: paths leaving the job, bad digests,
    // frames out of order, limits out of range.
    Seed s;
    pb::Assignment a;
    a.set_scene("../../etc/passwd");
    s.Add(kAssign, 0, a);
    a.Clear();
    auto* f = a.add_files();
    f->set_path("/etc/shadow");
    f->set_sha256("x");
    s.Add(kAssign, 0, a);
    a.Clear();
    a.set_output("../../f_#.png");
    s.Add(kAssign, 0, a);
    a.Clear();
    a.add_frames(3);
    a.add_frames(2);
    s.Add(kAssign, 0, a);
    a.Clear();
    a.mutable_sandbox()->set_cpu_seconds(std::numeric_limits<int64_t>::max());
    s.Add(kAssign, 0, a);
    a.Clear();
    a.mutable_sandbox()->add_central()->set_source("../..");
    s.Add(kAssign, 0, a);
    Write("render_assignment", "refused", s);
  }
  {
    // Renderer output lines of 64 KiB (arg 255: the middle byte repeated).
    Seed s;
    s.Add(kLine, 255, std::string("  Output file......../x/f1.png"));
    s.Add(kLine, 255, std::string("Fra:1111111 Mem"));
    s.Add(kLine, 255, std::string("xxxxxxxxxxxxxxx error"));
    Write("render_assignment", "regress-long-output-line", s);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <tests/fuzz/corpus>\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  SchedulerSeeds();
  SiteLinkSeeds();
  RenderSeeds();
  return 0;
}
