// Cross-daemon tests: a real schedule server and real render servers as
// separate processes on loopback (LocalSite), rendering real frames with
// POV-Ray, Blender and command templates.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/local_site.h"
#include "render/image_check.h"
#include "site_client.h"
#include "test_support.h"
#include "util/fs.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;
using testing::RunCommand;
using testing::RunFrameflow;
using testing::TempDir;
using testing::WaitUntil;
using testing::WriteText;

class SiteTest : public ::testing::Test {
 protected:
  void StartSite(LocalSiteOptions opts) {
    opts.binary = testing::Binary();
    auto site = LocalSite::Start(dir_.path() + "/site", opts);
    ASSERT_TRUE(site.ok()) << site.status().message();
    site_ = std::move(site).value();
    Status st = site_->WaitForRenderServers(opts.render_servers, 60000);
    ASSERT_TRUE(st.ok()) << st.message();
    Connect();
  }
  void Connect() {
    auto stub = site_->client().Connect();
    ASSERT_TRUE(stub.ok()) << stub.status().message();
    stub_ = std::move(stub).value();
  }
  int64_t Submit(const std::string& description) {
    auto id = SubmitJob(stub_.get(), description);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  pb::JobInfo Wait(int64_t id) {
    auto info = WaitForJob(stub_.get(), id, false, 240'000);
    EXPECT_TRUE(info.ok()) << info.status().message();
    auto detail = GetJobInfo(stub_.get(), id);
    EXPECT_TRUE(detail.ok()) << detail.status().message();
    return detail.ok() ? *detail : pb::JobInfo();
  }
  pb::JobInfo Get(int64_t id) {
    auto detail = GetJobInfo(stub_.get(), id);
    return detail.ok() ? *detail : pb::JobInfo();
  }
  std::vector<std::string> SiteArgs() { return {"--site", site_->site_root()}; }
  // Whether the render server's log says it started rendering some chunk
  // (the schedule server marks a chunk running before its assignment arrives).
  bool StartedRendering(const std::string& render_server) {
    auto log = ReadFile(site_->log_path(render_server));
    return log.ok() && log->find(": rendering frames ") != std::string::npos;
  }

  // Frames per render server among finished frames.
  static std::map<std::string, std::set<int64_t>> FramesByServer(const pb::JobInfo& j) {
    std::map<std::string, std::set<int64_t>> out;
    for (const auto& f : j.frame_info()) {
      if (f.state() == "done") out[f.render_server()].insert(f.frame());
    }
    return out;
  }

  // Files under the job's storage directory (recursively, relative names).
  static std::vector<std::string> StoredFiles(const std::string& dir) {
    std::vector<std::string> out;
    auto names = ListDir(dir);
    if (!names.ok()) return out;
    for (const auto& n : *names) {
      if (n == "logs") continue;
      std::string p = JoinPath(dir, n);
      auto sub = ListDir(p);
      if (sub.ok()) {
        for (const auto& s : StoredFiles(p)) out.push_back(n + "/" + s);
      } else {
        out.push_back(n);
      }
    }
    return out;
  }

  // A command-template job whose frames are copies of a small PNG, each
  // taking `seconds` to "render".
  std::string SlowCopyJob(const std::string& frames, int chunk, const std::string& name,
                          const std::string& extra = "") {
    std::string jobdir = dir_.path() + "/" + name;
    (void)MakeDirs(jobdir);
    (void)LinkOrCopy(testing::SourceDir() + "/examples/clock/textures/dial.png",
                     jobdir + "/plate.png");
    WriteText(jobdir + "/job.toml",
              "name = \"" + name + "\"\nframes = \"" + frames +
                  "\"\nchunk_size = " + std::to_string(chunk) + "\n" + extra +
                  "\n[package]\nname = \"slowcopy\"\n[render]\n"
                  "scene = \"plate.png\"\noutput = \"shot/f#/out_####.png\"\n");
    return jobdir + "/job.toml";
  }
  static std::string SlowCopyPackage(double seconds) {
    return "[[packages]]\nname = \"slowcopy\"\nversion = \"1.0\"\ncommand = \"/bin/sh -c 'sleep " +
           std::to_string(seconds) + " && cp \\\"$0\\\" \\\"$1\\\"' {scene} {output} {frame}\"\n";
  }

  TempDir dir_;
  std::unique_ptr<LocalSite> site_;
  std::unique_ptr<pb::ScheduleServer::Stub> stub_;
};

TEST_F(SiteTest, PovrayAnimationSplitsAcrossTwoRenderServers) {
  LocalSiteOptions opts;
  opts.probe = {"povray"};
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(testing::SourceDir() + "/examples/clock/clock.toml");
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  ASSERT_EQ(job.frame_info_size(), 24);

  // Both render servers rendered a non-empty, disjoint share.
  auto by_server = FramesByServer(job);
  ASSERT_EQ(by_server.size(), 2u);
  std::set<int64_t> all;
  for (const auto& [server, frames] : by_server) {
    EXPECT_FALSE(frames.empty()) << server;
    for (int64_t f : frames) EXPECT_TRUE(all.insert(f).second) << "frame " << f << " twice";
  }
  EXPECT_EQ(all.size(), 24u);
  // Each chunk rendered exactly once.
  for (const auto& c : job.chunks()) {
    EXPECT_EQ(c.state(), "done");
    EXPECT_EQ(c.attempts(), 1) << "chunk " << c.index();
  }
  // Exactly one file per frame on storage.
  auto stored = StoredFiles(job.storage_dir());
  EXPECT_EQ(stored.size(), 24u);

  // Pixels equal a direct POV-Ray render of the same animation.
  TempDir direct;
  (void)RunCommand({"/bin/cp", "-r", testing::SourceDir() + "/examples/clock/.", direct.path()});
  (void)MakeDirs(direct.path() + "/out");
  auto r = RunCommand({"povray", "+Iclock.pov", "+KFI1", "+KFF24", "+KI0", "+KF1", "-D", "+W320",
                       "+H240", "+FN", "+O" + direct.path() + "/out/f.png"},
                      direct.path());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& f : job.frame_info()) {
    char name[32];
    std::snprintf(name, sizeof(name), "f%02lld.png", static_cast<long long>(f.frame()));
    std::string why;
    EXPECT_TRUE(testing::SamePixels(f.output(), direct.path() + "/out/" + name, &why))
        << "frame " << f.frame() << ": " << why;
  }

  // The client fetches the frames, verified by checksum.
  auto fetched = RunFrameflow(
      {"fetch", std::to_string(id), direct.path() + "/fetched", "--site", site_->site_root()});
  ASSERT_EQ(fetched.exit_code, 0) << fetched.err;
  EXPECT_EQ(StoredFiles(direct.path() + "/fetched").size(), 24u);
  // Logs of a frame are available.
  auto logs = RunFrameflow({"logs", std::to_string(id), "7", "--site", site_->site_root()});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("frame 7 ok"), std::string::npos) << logs.out;
}

// Builds a small animated Cycles scene with Blender's own Python.
std::string MakeBlendScene(const std::string& dir, const std::string& name,
                           const std::string& texture) {
  std::string script = dir + "/make_scene.py";
  WriteText(script, R"PY(
import bpy, sys
argv = sys.argv[sys.argv.index('--') + 1:]
out, texture = argv[0], (argv[1] if len(argv) > 1 else '')
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.render.engine = 'CYCLES'
scene.cycles.device = 'CPU'
scene.cycles.samples = 2
scene.cycles.use_denoising = False
scene.render.resolution_x = 32
scene.render.resolution_y = 24
scene.frame_start = 1
scene.frame_end = 6
bpy.ops.mesh.primitive_cube_add(size=1.0)
cube = bpy.context.active_object
cube.keyframe_insert(data_path='rotation_euler', frame=1)
cube.rotation_euler = (0, 0, 3.0)
cube.keyframe_insert(data_path='rotation_euler', frame=6)
if texture:
    mat = bpy.data.materials.new('Tex')
    mat.use_nodes = True
    node = mat.node_tree.nodes.new('ShaderNodeTexImage')
    node.image = bpy.data.images.new('wood', 4, 4)
    node.image.source = 'FILE'
    node.image.filepath = texture
    bsdf = mat.node_tree.nodes['Principled BSDF']
    mat.node_tree.links.new(node.outputs['Color'], bsdf.inputs['Base Color'])
    cube.data.materials.append(mat)
bpy.ops.object.camera_add(location=(3, -3, 2), rotation=(1.1, 0, 0.785))
scene.camera = bpy.context.active_object
bpy.ops.object.light_add(type='SUN', location=(2, 2, 5))
bpy.ops.wm.save_as_mainfile(filepath=out)
)PY");
  std::vector<std::string> argv = {"blender", "-b", "--factory-startup", "--python",
                                   script,    "--", dir + "/" + name};
  if (!texture.empty()) argv.push_back(texture);
  auto r = RunCommand(argv);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  return dir + "/" + name;
}

TEST_F(SiteTest, BlenderJobRendersAcrossTwoServersAndMissingTextureFails) {
  LocalSiteOptions opts;
  opts.probe = {"blender"};
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  std::string jobdir = dir_.path() + "/blender";
  (void)MakeDirs(jobdir);
  MakeBlendScene(jobdir, "anim.blend", "");
  MakeBlendScene(jobdir, "textured.blend", "//textures/wood.png");
  WriteText(jobdir + "/anim.toml",
            "name = \"cube\"\nframes = \"1-6\"\nchunk_size = 2\n[package]\nname = \"blender\"\n"
            "version = \">=3.0\"\n[render]\nscene = \"anim.blend\"\nwidth = 32\nheight = 24\n"
            "output = \"cube_####.png\"\n");
  WriteText(jobdir + "/textured.toml",
            "name = \"pink\"\nframes = \"1-2\"\nchunk_size = 2\nmax_attempts = 1\n"
            "[package]\nname = \"blender\"\n[render]\nscene = \"textured.blend\"\n"
            "width = 32\nheight = 24\noutput = \"pink_####.png\"\n");

  int64_t id = Submit(jobdir + "/anim.toml");
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(FramesByServer(job).size(), 2u);
  for (const auto& f : job.frame_info()) {
    auto img = CheckImage(f.output());
    ASSERT_TRUE(img.ok()) << img.status().message();
    EXPECT_EQ(img->width, 32);
    EXPECT_EQ(img->height, 24);
  }

  int64_t bad = Submit(jobdir + "/textured.toml");
  pb::JobInfo failed = Wait(bad);
  EXPECT_EQ(failed.state(), "failed");
  ASSERT_EQ(failed.chunks_size(), 1);
  EXPECT_NE(failed.chunks(0).error().find("exited with code 3"), std::string::npos)
      << failed.chunks(0).error();
  auto logs = RunFrameflow({"logs", std::to_string(bad), "1", "--site", site_->site_root()});
  EXPECT_NE(logs.out.find("missing file(s) the scene needs: //textures/wood.png"),
            std::string::npos)
      << logs.out;
  EXPECT_TRUE(StoredFiles(failed.storage_dir()).empty()) << "a pink frame was delivered";
}

TEST_F(SiteTest, CommandTemplateJobRendersAcrossTwoServersAndNotifies) {
  // A webhook receiver on loopback, port picked by the kernel.
  httplib::Server hook;
  std::mutex hook_mu;
  std::string hook_body;
  hook.Post("/done", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(hook_mu);
    hook_body = req.body;
    res.status = 204;
  });
  int port = hook.bind_to_any_port("127.0.0.1");
  ASSERT_GT(port, 0);
  std::thread hook_thread([&] { hook.listen_after_bind(); });

  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_server_extra = SlowCopyPackage(0.1);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  std::string marker = dir_.path() + "/notified.txt";
  int64_t id = Submit(SlowCopyJob(
      "1-8", 2, "copies",
      "[[notify]]\nwebhook = \"http://127.0.0.1:" + std::to_string(port) +
          "/done\"\ncommand = \"echo $FRAMEFLOW_JOB_ID $FRAMEFLOW_JOB_STATE > " + marker + "\"\n"));
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(FramesByServer(job).size(), 2u);
  auto stored = StoredFiles(job.storage_dir());
  EXPECT_EQ(stored.size(), 8u);
  // Sub-directories of the output pattern are made inside the wrapper.
  EXPECT_TRUE(PathExists(job.storage_dir() + "/shot/f8/out_0008.png"));

  // The client is told: the command ran with the job in its environment and
  // the webhook got a JSON body.
  EXPECT_TRUE(WaitUntil([&] { return ReadFile(marker).ok(); }, 10000));
  EXPECT_EQ(ReadFile(marker).ok() ? *ReadFile(marker) : "", std::to_string(id) + " done\n");
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::lock_guard<std::mutex> lock(hook_mu);
        return !hook_body.empty();
      },
      15000));
  {
    std::lock_guard<std::mutex> lock(hook_mu);
    EXPECT_NE(hook_body.find("\"state\":\"done\""), std::string::npos) << hook_body;
    EXPECT_NE(hook_body.find("\"job_id\":" + std::to_string(id)), std::string::npos) << hook_body;
  }
  hook.stop();
  hook_thread.join();
}

// A command-template job without render.output: chunks are done when the
// command exits 0, nothing lands on storage, logs are kept.
TEST_F(SiteTest, ValidateJobParsesOnTheServerAndNamesTheFilesToUpload) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  pb::ValidateJobRequest req;
  req.set_description(
      "name = \"shot\"\nframes = \"1-10x2\"\nfiles = [\"tex/wood.png\"]\n"
      "[package]\nname = \"povray\"\n[render]\nscene = \"scene.pov\"\n"
      "output = \"f_####.png\"\n");
  req.set_description_name("shot.toml");
  pb::ValidateJobResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = stub_->ValidateJob(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.name(), "shot");
  EXPECT_EQ(resp.frames_total(), 5);
  EXPECT_EQ(std::vector<std::string>(resp.files().begin(), resp.files().end()),
            (std::vector<std::string>{"scene.pov", "tex/wood.png"}));
  // The normalised description: frame sets as FrameSet writes them.
  EXPECT_NE(resp.profile().find("frames = \"1-9x2\""), std::string::npos) << resp.profile();
  // The same one-sentence error as submit, naming file, line and key.
  req.set_description(
      "name = \"shot\"\nframes = \"1-x\"\n[package]\nname = \"povray\"\n[render]\n"
      "scene = \"scene.pov\"\noutput = \"f_####.png\"\n");
  grpc::ClientContext ctx2;
  st = stub_->ValidateJob(&ctx2, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("shot.toml:2"), std::string::npos) << st.error_message();
  EXPECT_TRUE(testing::AllJobs(stub_.get()).empty());  // nothing was submitted
}

TEST_F(SiteTest, CommandJobWithoutOutputCompletesOnExitCodes) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_server_extra =
      "[[packages]]\nname = \"echo\"\nversion = \"1.0\"\n"
      "command = \"/bin/sh -c 'echo chunk of frame $0' {frame}\"\n";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  std::string jobdir = dir_.path() + "/noout";
  ASSERT_TRUE(MakeDirs(jobdir).ok());
  WriteText(jobdir + "/input.txt", "x\n");
  WriteText(jobdir + "/job.toml",
            "name = \"noout\"\nframes = \"1-20\"\nchunk_size = 2\n[package]\nname = \"echo\"\n"
            "[render]\nscene = \"input.txt\"\n");
  int64_t id = Submit(jobdir + "/job.toml");
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(job.frames_done(), 20);
  EXPECT_EQ(FramesByServer(job).size(), 2u);
  EXPECT_TRUE(StoredFiles(job.storage_dir()).empty());
  for (const auto& f : job.frame_info()) EXPECT_EQ(f.output(), "") << f.frame();
  auto logs = RunFrameflow({"logs", std::to_string(id), "7", "--site", site_->site_root()});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_NE(logs.out.find("chunk of frame 7"), std::string::npos) << logs.out;
}

TEST_F(SiteTest, CancelKillsRunningChunksAndStopsTheJob) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_server_extra = SlowCopyPackage(60);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-6", 1, "longjob"));
  ASSERT_TRUE(WaitUntil([&] { return Get(id).frames_running() == 2; }, 30000));
  auto r = RunFrameflow({"cancel", std::to_string(id), "--site", site_->site_root()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("cancelled"), std::string::npos);
  // The renderers (60 s sleeps) are killed: both slots report back long
  // before the sleeps would have ended, and take new work.
  ASSERT_TRUE(WaitUntil(
      [&] {
        pb::JobInfo j = Get(id);
        for (const auto& c : j.chunks()) {
          if (c.state() == "running") return false;
        }
        return true;
      },
      20000));
  pb::JobInfo job = Get(id);
  EXPECT_EQ(job.state(), "cancelled");
  EXPECT_TRUE(StoredFiles(job.storage_dir()).empty());
  for (const auto& c : job.chunks()) EXPECT_EQ(c.state(), "cancelled");
  auto wait = RunFrameflow({"wait", std::to_string(id), "--site", site_->site_root()});
  EXPECT_EQ(wait.exit_code, 1);
}

// The renderer's whole process tree dies on cancel and on render server
// shutdown. The renderer records its pid (it execs into `sleep`).
TEST_F(SiteTest, CancelAndShutdownKillTheRenderersProcessTree) {
  std::string pids = dir_.path() + "/pids";
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  // The renderer reports its pid through a host file: only a plain (not
  // wrapped) renderer can write there.
  opts.site_extra = "[sandbox]\nlocal_jobs = \"plain\"\n";
  // Plain renderers still run as the slot's uid, never as root: they may
  // append to this file, and nothing else of the test directory.
  ASSERT_EQ(::chmod(dir_.path().c_str(), 0755), 0);
  WriteText(pids, "");
  ASSERT_EQ(::chmod(pids.c_str(), 0666), 0);
  opts.render_server_extra =
      "[[packages]]\nname = \"pidsleep\"\nversion = \"1\"\ncommand = \"/bin/sh -c 'echo $$ >> " +
      pids + "; exec sleep 60' {frame}\"\n";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  auto write_job = [&](const std::string& name) {
    std::string jobdir = dir_.path() + "/" + name;
    WriteText(jobdir + "/scene.txt", "x");
    WriteText(jobdir + "/job.toml", "name = \"" + name +
                                        "\"\nframes = \"1\"\n[package]\nname = \"pidsleep\"\n"
                                        "[render]\nscene = \"scene.txt\"\noutput = \"f_#.png\"\n");
    return jobdir + "/job.toml";
  };
  auto nth_pid = [&](size_t n) -> pid_t {
    auto text = ReadFile(pids);
    if (!text.ok()) return 0;
    std::istringstream in(*text);
    pid_t pid = 0;
    for (size_t i = 0; i < n && in >> pid; ++i) {
    }
    return pid;
  };
  auto dead = [](pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; };

  int64_t first = Submit(write_job("cancelme"));
  ASSERT_TRUE(WaitUntil([&] { return nth_pid(1) > 0; }, 30000));
  pid_t renderer = nth_pid(1);
  EXPECT_FALSE(dead(renderer));
  auto status = ReadFile("/proc/" + std::to_string(renderer) + "/status");
  ASSERT_TRUE(status.ok());
  const size_t uid_at = status->find("\nUid:");
  ASSERT_NE(uid_at, std::string::npos);
  EXPECT_GE(std::strtoul(status->c_str() + uid_at + 5, nullptr, 10), 2000000000ul) << *status;
  auto r = RunFrameflow({"cancel", std::to_string(first), "--site", site_->site_root()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(WaitUntil([&] { return dead(renderer); }, 10000)) << "renderer survived cancel";

  Submit(write_job("shutdown"));
  ASSERT_TRUE(WaitUntil([&] { return nth_pid(2) > 0 && nth_pid(2) != renderer; }, 30000));
  pid_t second = nth_pid(2);
  // SIGINT stops at once (SIGTERM would let the chunk finish first).
  site_->StopRenderServer(0, SIGINT);
  EXPECT_TRUE(WaitUntil([&] { return dead(second); }, 10000)) << "renderer survived shutdown";
  // The chunk it held was handed back: queued again at once, not after the
  // reconnect window, and not counted as lost.
  EXPECT_TRUE(WaitUntil(
      [&] {
        pb::JobInfo j = Get(first + 1);
        return j.chunks_size() == 1 && j.chunks(0).state() == "queued" &&
               j.chunks(0).error().find("handed back") != std::string::npos;
      },
      1500))
      << Get(first + 1).DebugString();
}

TEST_F(SiteTest, SigtermDrainsARenderServerWithoutRenderingAnythingTwice) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(1.5);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-3", 1, "drain"));
  ASSERT_TRUE(WaitUntil([&] { return StartedRendering("rs1"); }, 30000));
  // Returns once rs1 exited: after its running chunk finished and was reported.
  site_->StopRenderServer(0, SIGTERM);
  pb::JobInfo j = Get(id);
  ASSERT_EQ(j.chunks_size(), 3);
  EXPECT_EQ(j.frames_done(), 1) << j.DebugString();
  EXPECT_EQ(j.chunks(0).state(), "done");
  EXPECT_EQ(j.chunks(0).attempts(), 1);
  // Nothing new went to the draining server.
  EXPECT_EQ(j.chunks(1).state(), "queued");
  EXPECT_EQ(j.chunks(1).attempts(), 0);
  auto log = ReadFile(site_->log_path("rs1"));
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("drained: every chunk finished and was reported"), std::string::npos) << *log;
  // A drained server is down at once, not after a reconnect window.
  auto hosts = RunFrameflow({"hosts", "--site", site_->site_root()});
  EXPECT_NE(hosts.out.find(": down"), std::string::npos) << hosts.out;
  ASSERT_TRUE(site_->StartRenderServer(0).ok());
  pb::JobInfo done = Wait(id);
  ASSERT_EQ(done.state(), "done") << done.error();
  for (const auto& c : done.chunks()) EXPECT_EQ(c.attempts(), 1) << c.DebugString();
  EXPECT_EQ(StoredFiles(done.storage_dir()).size(), 3u);
}

TEST_F(SiteTest, ARenderServerFinishesItsChunkWhileTheScheduleServerIsGoneAndReportsItLater) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(1.5);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-2", 1, "orphan"));
  ASSERT_TRUE(WaitUntil([&] { return StartedRendering("rs1"); }, 30000));
  site_->StopScheduleServer(SIGKILL);
  // The renderer ends while nobody listens; the render server keeps its
  // frames and waits to upload them.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto log = ReadFile(site_->log_path("rs1"));
        return log.ok() && log->find("the schedule server is away; waiting") != std::string::npos;
      },
      30000));
  ASSERT_TRUE(site_->StartScheduleServer().ok());
  Connect();
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  // Reported, not rendered again.
  EXPECT_EQ(job.chunks(0).attempts(), 1) << job.chunks(0).DebugString();
  EXPECT_EQ(job.chunks(1).attempts(), 1) << job.chunks(1).DebugString();
  EXPECT_EQ(StoredFiles(job.storage_dir()).size(), 2u);
}

// Processes whose command line is exactly `argv` and whose uid is a slot
// uid (the render servers' uid blocks start at 2000000000), by pid -> uid.
std::map<pid_t, uint32_t> SlotProcesses(const std::vector<std::string>& argv) {
  std::string want;
  for (const auto& a : argv) want += a + '\0';
  std::map<pid_t, uint32_t> out;
  auto entries = ListDir("/proc");
  if (!entries.ok()) return out;
  for (const auto& e : *entries) {
    if (e.find_first_not_of("0123456789") != std::string::npos) continue;
    auto cmdline = ReadFile("/proc/" + e + "/cmdline");
    auto status = ReadFile("/proc/" + e + "/status");
    if (!cmdline.ok() || !status.ok() || *cmdline != want) continue;
    size_t at = status->find("\nUid:");
    if (at == std::string::npos) continue;
    uint32_t uid = static_cast<uint32_t>(std::strtoul(status->c_str() + at + 5, nullptr, 10));
    if (uid >= 2000000000u) out[static_cast<pid_t>(std::stol(e))] = uid;
  }
  return out;
}

TEST_F(SiteTest, WrappedRendererRunsAsTheSlotUidAndCancelKillsEverythingItStarted) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  // A renderer that leaves a child behind, and one in a session of its own.
  opts.render_server_extra =
      "[[packages]]\nname = \"daemoniser\"\nversion = \"1\"\ncommand = \"/bin/sh -c "
      "'sleep 3141.5 & setsid sleep 3141.5 & exec sleep 3141.5' {frame}\"\n";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  std::string jobdir = dir_.path() + "/daemoniser";
  WriteText(jobdir + "/scene.txt", "x");
  WriteText(jobdir + "/job.toml",
            "name = \"daemoniser\"\nframes = \"1\"\n[package]\nname = \"daemoniser\"\n"
            "[render]\nscene = \"scene.txt\"\noutput = \"f_#.png\"\n");
  int64_t id = Submit(jobdir + "/job.toml");
  const std::vector<std::string> sleeper = {"sleep", "3141.5"};
  ASSERT_TRUE(WaitUntil([&] { return SlotProcesses(sleeper).size() == 3; }, 30000))
      << SlotProcesses(sleeper).size() << " sleepers";
  // All three run as the same unprivileged slot uid, never as root.
  std::set<uint32_t> uids;
  for (const auto& [pid, uid] : SlotProcesses(sleeper)) uids.insert(uid);
  EXPECT_EQ(uids.size(), 1u);
  auto show = RunFrameflow({"show", std::to_string(id), "--site", site_->site_root()});
  EXPECT_NE(show.out.find("sandbox:   I/O wrapper (local job); mounts: /job"), std::string::npos)
      << show.out;
  auto r = RunFrameflow({"cancel", std::to_string(id), "--site", site_->site_root()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(WaitUntil([&] { return SlotProcesses(sleeper).empty(); }, 10000))
      << SlotProcesses(sleeper).size() << " sleepers survived the cancel";
}

// A wrapped chunk that runs into a limit of the site's [sandbox] policy
// fails with a reason naming the limit.
TEST_F(SiteTest, WrappedChunksThatHitALimitFailNamingIt) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.slots_per_server = 2;
  opts.max_attempts = 1;
  opts.site_extra = "[sandbox]\nmemory = \"48M\"\nwall_time = \"3s\"\nfile_size = \"1M\"\n";
  // tail -c keeps 100 MB in memory; sleep outlives the wall time; head
  // writes a 2 MB file.
  opts.render_server_extra =
      "[[packages]]\nname = \"hog\"\nversion = \"1\"\ncommand = \"/bin/sh -c "
      "'head -c 200000000 /dev/zero | tail -c 100000000 > /dev/null' {frame}\"\n"
      "[[packages]]\nname = \"sleeper\"\nversion = \"1\"\ncommand = \"sleep 30 {frame}\"\n"
      "[[packages]]\nname = \"napper\"\nversion = \"1\"\ncommand = \"/bin/sh -c 'sleep 1.2' "
      "{frame}\"\n"
      "[[packages]]\nname = \"bigfile\"\nversion = \"1\"\ncommand = \"/bin/sh -c "
      "'head -c 2000000 /dev/zero > /tmp/big' {frame}\"\n";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  auto job = [&](const std::string& package) {
    std::string jobdir = dir_.path() + "/" + package;
    WriteText(jobdir + "/scene.txt", "x");
    // napper: three one-frame commands of 1.2 s in one chunk, which has 3 s.
    const std::string frames = package == "napper" ? "1-3\"\nchunk_size = 3" : "1\"";
    WriteText(jobdir + "/job.toml", "name = \"" + package + "\"\nframes = \"" + frames +
                                        "\n[package]\nname = \"" + package +
                                        "\"\n[render]\nscene = \"scene.txt\"\n");
    return Submit(jobdir + "/job.toml");
  };
  const std::map<std::string, std::string> want = {
      {"hog", "out of memory: killed at the memory limit of 48 MiB"},
      {"sleeper", "wall-time limit: still running after 3 s, killed"},
      {"napper", "wall-time limit: still running after 3 s, killed"},
      {"bigfile", "per-file size limit: a file reached 1 MiB"}};
  for (const auto& [package, reason] : want) {
    int64_t id = job(package);
    ASSERT_TRUE(WaitUntil([&] { return Get(id).state() == "failed"; }, 30000)) << package;
    pb::JobInfo info = Get(id);
    ASSERT_EQ(info.chunks_size(), 1);
    EXPECT_NE(info.chunks(0).error().find(reason), std::string::npos)
        << package << ": " << info.chunks(0).error();
  }
}

TEST_F(SiteTest, JobForMissingPackageStaysQueuedAndShowSaysWhy) {
  LocalSiteOptions opts;
  opts.probe = {"povray"};
  opts.render_servers = 1;
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  std::string jobdir = dir_.path() + "/maya";
  WriteText(jobdir + "/scene.ma", "// maya scene\n");
  WriteText(jobdir + "/job.toml",
            "name = \"needs-maya\"\nframes = \"1-4\"\n[package]\nname = \"maya\"\n"
            "version = \">=2024\"\n[render]\nscene = \"scene.ma\"\noutput = \"m_####.exr\"\n");
  int64_t id = Submit(jobdir + "/job.toml");
  auto show = RunFrameflow({"show", std::to_string(id), "--site", site_->site_root()});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("queued"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("no render server can render it: rs1 has no package 'maya'"),
            std::string::npos)
      << show.out;
  EXPECT_EQ(Get(id).frames_running(), 0);
}

TEST_F(SiteTest, KilledRenderServerChunksAreRequeuedAndJobCompletes) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_server_extra = SlowCopyPackage(0.3);
  opts.heartbeat_timeout = "2s";
  opts.heartbeat_interval = "250ms";
  opts.reconnect_grace = "1s";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-16", 2, "killrs"));
  // Wait until rs1 is rendering a chunk, then kill it without warning.
  ASSERT_TRUE(WaitUntil(
      [&] {
        pb::JobInfo now = Get(id);
        for (const auto& c : now.chunks()) {
          if (c.state() == "running" && c.render_server() == "rs1") return true;
        }
        return false;
      },
      30000));
  site_->StopRenderServer(0, SIGKILL);
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(StoredFiles(job.storage_dir()).size(), 16u);
  bool requeued = false;
  for (const auto& c : job.chunks()) {
    if (c.attempts() > 1) {
      requeued = true;
      EXPECT_EQ(c.render_server(), "rs2");
    }
  }
  EXPECT_TRUE(requeued) << "no chunk was requeued after rs1 died";
  auto hosts = RunFrameflow({"hosts", "--site", site_->site_root()});
  EXPECT_NE(hosts.out.find("rs1 on"), std::string::npos);
  EXPECT_NE(hosts.out.find(": down"), std::string::npos) << hosts.out;
}

TEST_F(SiteTest, ScheduleServerKilledAndRestartedMidJobLosesNothing) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_server_extra = SlowCopyPackage(0.3);
  opts.heartbeat_timeout = "3s";
  opts.heartbeat_interval = "250ms";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-20", 2, "killss"));
  ASSERT_TRUE(WaitUntil([&] { return Get(id).frames_done() >= 4; }, 30000));
  site_->StopScheduleServer(SIGKILL);
  ASSERT_TRUE(site_->StartScheduleServer().ok());
  Connect();
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  ASSERT_EQ(job.frame_info_size(), 20);
  std::set<int64_t> frames;
  for (const auto& f : job.frame_info()) {
    EXPECT_EQ(f.state(), "done");
    EXPECT_TRUE(frames.insert(f.frame()).second);
  }
  auto stored = StoredFiles(job.storage_dir());
  EXPECT_EQ(stored.size(), 20u);
  // The resumed job is in the restarted server's list.
  auto jobs = RunFrameflow({"jobs", "--all", "--site", site_->site_root()});
  EXPECT_NE(jobs.out.find("killss"), std::string::npos) << jobs.out;
}

TEST_F(SiteTest, RenderServersNoticeAHungScheduleServerAndComeBackToIt) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_server_extra = SlowCopyPackage(0.1);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  // A stopped process keeps its connections open, as a host that vanished
  // does: only keepalive pings can tell the render servers it is gone.
  const int pid = site_->schedule_server_pid();
  ASSERT_GT(pid, 0);
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  auto noticed = [&](const std::string& rs) {
    auto log = ReadFile(site_->log_path(rs));
    return log.ok() && log->find("lost the schedule server stream") != std::string::npos;
  };
  bool both = WaitUntil([&] { return noticed("rs1") && noticed("rs2"); }, 60000);
  ASSERT_EQ(::kill(pid, SIGCONT), 0);
  ASSERT_TRUE(both) << "the render servers never noticed the hung schedule server";
  // Back, the schedule server gets both render servers again and renders.
  ASSERT_TRUE(site_->WaitForRenderServers(2, 60000).ok());
  int64_t id = Submit(SlowCopyJob("1-4", 1, "hungss"));
  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(StoredFiles(job.storage_dir()).size(), 4u);
}

// A second render server process started with a name already connected is
// refused and waits: it neither takes the name over nor costs the running
// one's chunks an attempt.
TEST_F(SiteTest, ASecondRenderServerWithTheSameNameIsRefusedAndLosesNothing) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(0.5);
  opts.heartbeat_timeout = "2s";
  opts.heartbeat_interval = "250ms";
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-8", 1, "twins"));
  ASSERT_TRUE(WaitUntil(
      [&] {
        pb::JobInfo now = Get(id);
        for (const auto& c : now.chunks()) {
          if (c.state() == "running" && c.render_server() == "rs1") return true;
        }
        return false;
      },
      30000));
  // The same config (name = "rs1"), another root: a copy of the host, say.
  auto config = ReadFile(site_->root() + "/config/rs1.toml");
  ASSERT_TRUE(config.ok());
  const std::string root_line = "root = \"" + site_->root() + "/rs1\"";
  const size_t at = config->find(root_line);
  ASSERT_NE(at, std::string::npos) << *config;
  std::string twin_config = *config;
  twin_config.replace(at, root_line.size(), "root = \"" + site_->root() + "/rs1-twin\"");
  WriteText(site_->root() + "/config/rs1-twin.toml", twin_config);
  auto twin = site_->StartExtraRenderServer(site_->root() + "/config/rs1-twin.toml", "rs1-twin");
  ASSERT_TRUE(twin.ok()) << twin.status().message();
  const std::string twin_log = site_->log_path("rs1-twin");
  const bool refused = WaitUntil(
      [&] {
        auto log = ReadFile(twin_log);
        return log.ok() &&
               log->find("render server names must be unique on a site") != std::string::npos;
      },
      30000);

  pb::JobInfo job = Wait(id);
  ::kill((*twin)->pid(), SIGINT);
  (*twin)->Wait();
  ASSERT_TRUE(refused) << "the duplicate never logged the refusal";
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(StoredFiles(job.storage_dir()).size(), 8u);
  for (const auto& c : job.chunks()) {
    EXPECT_EQ(c.attempts(), 1) << "chunk " << c.index() << " was lost and rendered again";
    EXPECT_EQ(c.render_server(), "rs1");
  }
  auto log = ReadFile(twin_log);
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("render server 'rs1' is already connected from host"), std::string::npos)
      << *log;
  EXPECT_EQ(log->find("registered with schedule server"), std::string::npos) << *log;
  auto ss_log = ReadFile(site_->log_path("schedule-server"));
  ASSERT_TRUE(ss_log.ok());
  EXPECT_EQ(ss_log->find("registered again"), std::string::npos);
  auto hosts = RunFrameflow({"hosts", "--site", site_->site_root()});
  EXPECT_NE(hosts.out.find("rs1 on"), std::string::npos) << hosts.out;
  EXPECT_EQ(hosts.out.find(": down"), std::string::npos) << hosts.out;
}

// The same host.toml started twice (same name, same root) while the first
// renders: the second process is refused before it touches the root (the
// root lock), so the first one's secure locations, work directories and
// cgroups are left alone and no running chunk loses an attempt.
TEST_F(SiteTest, ASecondRenderServerOnTheSameRootIsRefusedAndTouchesNothing) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(0.5);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  int64_t id = Submit(SlowCopyJob("1-8", 1, "sameroot"));
  ASSERT_TRUE(WaitUntil(
      [&] {
        const pb::JobInfo now = Get(id);
        for (const auto& c : now.chunks()) {
          if (c.state() == "running" && c.render_server() == "rs1") return true;
        }
        return false;
      },
      30000));
  auto dup = site_->StartExtraRenderServer(site_->root() + "/config/rs1.toml", "rs1-dup");
  ASSERT_TRUE(dup.ok()) << dup.status().message();
  const std::optional<int> exit_code = (*dup)->WaitFor(60000);
  ASSERT_TRUE(exit_code.has_value()) << "the duplicate did not exit";
  EXPECT_NE(*exit_code, 0);
  auto log = ReadFile(site_->log_path("rs1-dup"));
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("is in use by render server pid"), std::string::npos) << *log;
  EXPECT_NE(log->find("frameflow.lock"), std::string::npos) << *log;

  pb::JobInfo job = Wait(id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(StoredFiles(job.storage_dir()).size(), 8u);
  for (const auto& c : job.chunks()) {
    EXPECT_EQ(c.attempts(), 1) << "chunk " << c.index() << " lost an attempt: " << c.error();
  }
}

// Frames rendered before a cancel are kept: `show` counts them as done,
// they stay in the job's storage, and `fetch` of the cancelled job gives
// them (exit 1: the job is not done). `cancel` of a job that had already
// ended says so and exits non-zero.
TEST_F(SiteTest, CancelKeepsTheFramesFinishedBeforeIt) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(0.3);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  // One chunk of 40 frames, one command per frame.
  int64_t id = Submit(SlowCopyJob("1-40", 40, "keep"));
  ASSERT_TRUE(WaitUntil([&] { return Get(id).frames_done() >= 3; }, 60000));
  const std::string job_id = std::to_string(id);
  auto cancelled = RunFrameflow({"cancel", job_id, "--site", site_->site_root()});
  ASSERT_EQ(cancelled.exit_code, 0) << cancelled.err;
  // The render server reports the cancelled chunk with what it finished.
  ASSERT_TRUE(WaitUntil([&] { return Get(id).chunks(0).state() == "cancelled"; }, 60000));
  pb::JobInfo job = Get(id);
  ASSERT_EQ(job.state(), "cancelled");
  const int kept = job.frames_done();
  EXPECT_GE(kept, 3);
  EXPECT_LT(kept, 40);
  int done_rows = 0;
  for (const auto& f : job.frame_info()) done_rows += f.state() == "done" ? 1 : 0;
  EXPECT_EQ(done_rows, kept);
  EXPECT_EQ(static_cast<int>(StoredFiles(job.storage_dir()).size()), kept);

  auto fetched =
      RunFrameflow({"fetch", job_id, dir_.path() + "/fetched", "--site", site_->site_root()});
  EXPECT_EQ(fetched.exit_code, 1) << fetched.out << fetched.err;
  EXPECT_NE(fetched.out.find("fetched " + std::to_string(kept) + " frame(s)"), std::string::npos)
      << fetched.out;
  EXPECT_NE(fetched.err.find("is cancelled"), std::string::npos) << fetched.err;
  EXPECT_EQ(static_cast<int>(StoredFiles(dir_.path() + "/fetched").size()), kept);

  // Kept across a restart of the schedule server (from the frame rows).
  site_->StopScheduleServer(SIGKILL);
  ASSERT_TRUE(site_->StartScheduleServer().ok());
  ASSERT_NO_FATAL_FAILURE(Connect());
  EXPECT_EQ(Get(id).frames_done(), kept);

  // The history records the cancel once.
  int cancels = 0;
  const pb::JobInfo after = Get(id);
  for (const auto& e : after.history()) cancels += e.state() == "cancelled" ? 1 : 0;
  EXPECT_EQ(cancels, 1);

  // A finished job cannot be cancelled: said, and a non-zero exit.
  int64_t quick = Submit(SlowCopyJob("1", 1, "quick"));
  ASSERT_EQ(Wait(quick).state(), "done");
  auto late = RunFrameflow({"cancel", std::to_string(quick), "--site", site_->site_root()});
  EXPECT_NE(late.exit_code, 0);
  EXPECT_NE(late.err.find("had already ended (done)"), std::string::npos) << late.err;
  EXPECT_EQ(Get(quick).state(), "done");
}

// Every --json output is one JSON document (nothing before or after it),
// pretty-printed, and every number in it is a JSON number (64-bit ids and
// times too): docs/configuration.md's rule.
TEST_F(SiteTest, JsonOutputIsOneDocumentWithNumbersAsNumbers) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(0);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  auto submitted = RunFrameflow(
      {"submit", SlowCopyJob("1-2", 1, "json"), "--json", "--site", site_->site_root()});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  auto sub = nlohmann::json::parse(submitted.out, nullptr, false);
  ASSERT_FALSE(sub.is_discarded()) << submitted.out;
  ASSERT_TRUE(sub["job_id"].is_number_integer()) << submitted.out;
  EXPECT_NE(submitted.out.find("\n  \"job_id\""), std::string::npos) << "pretty: " << submitted.out;
  const std::string id = std::to_string(sub["job_id"].get<int64_t>());
  ASSERT_EQ(Wait(sub["job_id"].get<int64_t>()).state(), "done");

  for (const std::vector<std::string>& args : {std::vector<std::string>{"show", id},
                                               {"jobs", "--all"},
                                               {"logs", id, "1"},
                                               {"hosts"},
                                               {"fetch", id, dir_.path() + "/json-fetched"}}) {
    std::vector<std::string> full = args;
    full.insert(full.end(), {"--json", "--site", site_->site_root()});
    auto r = RunFrameflow(full);
    ASSERT_EQ(r.exit_code, 0) << args[0] << ": " << r.err;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << args[0] << " is not one JSON document: " << r.out;
    if (args[0] == "show") {
      EXPECT_TRUE(j["job_id"].is_number_integer()) << r.out;
      EXPECT_TRUE(j["submit_time_ms"].is_number_integer()) << r.out;
      EXPECT_TRUE(j["frame_info"][0]["frame"].is_number_integer()) << r.out;
    }
    if (args[0] == "logs") {
      EXPECT_TRUE(j["text"].is_string()) << r.out;
    }
    if (args[0] == "fetch") {
      EXPECT_EQ(j["fetched"], 2) << r.out;
    }
  }
  // A package no render server has: accepted, with a warning (stderr, and
  // in the JSON document).
  const std::string typo = SlowCopyJob("1", 1, "typo");
  auto toml = ReadFile(typo);
  ASSERT_TRUE(toml.ok());
  std::string text = *toml;
  text.replace(text.find("name = \"slowcopy\""), 17, "name = \"slowcopi\"");
  WriteText(typo, text);
  auto warned = RunFrameflow({"submit", typo, "--json", "--site", site_->site_root()});
  ASSERT_EQ(warned.exit_code, 0) << warned.err;
  EXPECT_NE(warned.err.find("warning: no render server of this site has package 'slowcopi'"),
            std::string::npos)
      << warned.err;
  auto wj = nlohmann::json::parse(warned.out, nullptr, false);
  ASSERT_FALSE(wj.is_discarded()) << warned.out;
  EXPECT_EQ(wj["warnings"].size(), 1u) << warned.out;

  // The text table never cuts a name (or a queue: "outsourced #1 -> farmco").
  const std::string long_name = "a-rather-long-job-name-for-the-columns";
  ASSERT_EQ(Wait(Submit(SlowCopyJob("1", 1, long_name))).state(), "done");
  auto table = RunFrameflow({"jobs", "--all", "--site", site_->site_root()});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find(long_name + "  "), std::string::npos) << table.out;
}

// A bare .pov maps frames to its clock over the animation's range, which
// is the scene's ([render] animation), not the subset a job renders: frames
// 2 and 5 re-rendered alone are pixel-identical to the same frames of the
// whole animation. Without the key the subset is its own animation.
TEST_F(SiteTest, PartialRerenderOfAPovAnimationIsPixelIdentical) {
  LocalSiteOptions opts;
  opts.probe = {"povray"};
  opts.render_servers = 1;
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  const std::string d = dir_.path() + "/anim";
  ASSERT_TRUE(MakeDirs(d).ok());
  WriteText(d + "/ball.pov",
            "camera { location <0, 0, -3> look_at <0, 0, 0> }\n"
            "light_source { <2, 4, -3> color rgb 1 }\n"
            "background { color rgb 0 }\n"
            "sphere { <clock * 2 - 1, 0, 0>, 0.4 pigment { color rgb <1, 0.5, 0> } }\n");
  auto job = [&](const std::string& name, const std::string& frames, const std::string& extra) {
    WriteText(d + "/" + name + ".toml",
              "name = \"" + name + "\"\nframes = \"" + frames +
                  "\"\nchunk_size = 3\n[package]\nname = \"povray\"\n[render]\n"
                  "scene = \"ball.pov\"\nwidth = 32\nheight = 24\noutput = \"" +
                  name + "_####.png\"\n" + extra);
    pb::JobInfo info = Wait(Submit(d + "/" + name + ".toml"));
    EXPECT_EQ(info.state(), "done") << info.error();
    // POV-Ray finds a (frameflow's) user configuration: no warning about a
    // missing one in every log.
    auto log =
        RunFrameflow({"logs", std::to_string(info.job_id()),
                      std::to_string(info.frame_info(0).frame()), "--site", site_->site_root()});
    EXPECT_EQ(log.exit_code, 0) << log.err;
    EXPECT_NE(log.out.find("+KFI"), std::string::npos) << log.out;
    EXPECT_EQ(log.out.find("cannot open the user configuration file"), std::string::npos)
        << log.out;
    std::map<int64_t, std::vector<uint8_t>> pixels;
    for (const auto& f : info.frame_info()) {
      auto img = ReadPngRgba(f.output());
      EXPECT_TRUE(img.ok()) << f.output();
      if (img.ok()) pixels[f.frame()] = img->rgba;
    }
    return pixels;
  };
  auto whole = job("whole", "1-6", "");
  auto subset = job("subset", "2,5", "animation = \"1-6\"\n");
  auto alone = job("alone", "2,5", "");
  ASSERT_EQ(whole.size(), 6u);
  ASSERT_EQ(subset.size(), 2u);
  EXPECT_TRUE(subset[2] == whole[2]) << "frame 2 differs from the whole animation's";
  EXPECT_TRUE(subset[5] == whole[5]) << "frame 5 differs from the whole animation's";
  EXPECT_FALSE(alone[2] == whole[2]) << "without animation the subset is its own clock";
}

// A scene that cannot be parsed (a missing include) fails on every host:
// the chunk's error is POV-Ray's own line naming the file (not "Render
// failed"), and the job fails as soon as two hosts agree, without every
// chunk spending every attempt.
TEST_F(SiteTest, ASceneErrorNamesTheFileAndFailsTheJobFast) {
  LocalSiteOptions opts;
  opts.probe = {"povray"};
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  const std::string d = dir_.path() + "/broken";
  ASSERT_TRUE(MakeDirs(d).ok());
  WriteText(d + "/broken.pov", "#include \"missing_parts.inc\"\nsphere { 0, 1 }\n");
  WriteText(d + "/job.toml",
            "name = \"broken\"\nframes = \"1-12\"\nmax_attempts = 3\n[package]\n"
            "name = \"povray\"\n[render]\nscene = \"broken.pov\"\nwidth = 32\n"
            "height = 24\noutput = \"b_####.png\"\n");
  pb::JobInfo job = Wait(Submit(d + "/job.toml"));
  ASSERT_EQ(job.state(), "failed");
  EXPECT_NE(job.error().find("the scene fails the same way"), std::string::npos) << job.error();
  EXPECT_NE(job.error().find("Parse Error: Cannot open include file missing_parts.inc"),
            std::string::npos)
      << job.error();
  int attempts = 0;
  for (const auto& c : job.chunks()) {
    attempts += c.attempts();
    if (!c.error().empty()) {
      EXPECT_EQ(c.error().find("Render failed"), std::string::npos) << c.error();
    }
  }
  EXPECT_LT(attempts, 12) << "12 chunks x 3 attempts would be 36";
}

TEST_F(SiteTest, BadDescriptionsAreRefusedNamingFieldOrFile) {
  LocalSiteOptions opts;
  opts.probe = {};
  opts.render_servers = 1;
  opts.render_server_extra = SlowCopyPackage(0);
  ASSERT_NO_FATAL_FAILURE(StartSite(opts));
  // An accepted job first: nothing refused later may disturb it.
  int64_t good = Submit(SlowCopyJob("1-2", 1, "good"));
  ASSERT_EQ(Wait(good).state(), "done");

  std::string d = dir_.path() + "/bad";
  WriteText(d + "/plate.png", "not used");
  struct Case {
    std::string file, text, expect;
  };
  const std::string pkg = "[package]\nname = \"slowcopy\"\n";
  const std::string render = "[render]\nscene = \"plate.png\"\noutput = \"o_#.png\"\n";
  std::vector<Case> cases = {
      {"syntax.toml", "name = \"x\"\nframes = \"1-3\n", "syntax.toml:2"},
      {"unknown.toml", "name = \"x\"\nframes = \"1-3\"\ncolour = 3\n" + pkg + render,
       "colour: unknown key"},
      {"frames.toml", "name = \"x\"\nframes = \"1-x\"\n" + pkg + render, "frames"},
      {"missing.toml",
       "name = \"x\"\nframes = \"1\"\nfiles = [\"tex/nowhere.png\"]\n" + pkg + render,
       "tex/nowhere.png"},
      {"escape.toml", "name = \"x\"\nframes = \"1\"\nfiles = [\"../etc/passwd\"]\n" + pkg + render,
       "files"},
      {"priority.toml", "name = \"x\"\nframes = \"1\"\npriority = 400\n" + pkg + render,
       "priority"},
      {"remote.toml", "name = \"x\"\nframes = \"1\"\nplacement = \"remote\"\n" + pkg + render,
       "no remote site configured"},
      {"big.toml",
       "name = \"x\"\nframes = \"1\"\n" + pkg + render + "#" + std::string(1100000, 'x') + "\n",
       "big.toml: the job description is 1100"},
  };
  for (const auto& c : cases) {
    WriteText(d + "/" + c.file, c.text);
    auto r = RunFrameflow({"submit", d + "/" + c.file, "--site", site_->site_root()});
    EXPECT_NE(r.exit_code, 0) << c.file;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.file << ": " << r.err;
    EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "one sentence: " << r.err;
  }
  // A declared file that is a directory is bad input (exit 2), not an I/O error.
  (void)MakeDirs(d + "/texdir");
  WriteText(d + "/dir.toml", "name = \"x\"\nframes = \"1\"\nfiles = [\"texdir\"]\n" + pkg + render);
  auto dir = RunFrameflow({"submit", d + "/dir.toml", "--site", site_->site_root()});
  EXPECT_EQ(dir.exit_code, 2) << dir.err;
  EXPECT_NE(dir.err.find("dir.toml: files: 'texdir' is a directory"), std::string::npos) << dir.err;
  // Over the size limit: refused by the client before any upload (exit 2).
  auto big = RunFrameflow({"submit", d + "/big.toml", "--site", site_->site_root()});
  EXPECT_EQ(big.exit_code, 2) << big.err;
  EXPECT_NE(big.err.find("more than the limit of 1048576"), std::string::npos) << big.err;
  auto jobs = RunFrameflow({"jobs", "--all", "--json", "--site", site_->site_root()});
  EXPECT_NE(jobs.out.find("\"name\": \"good\""), std::string::npos) << jobs.out;
  EXPECT_EQ(jobs.out.find("\"name\": \"x\""), std::string::npos) << jobs.out;
  EXPECT_EQ(Get(good).state(), "done");
}

}  // namespace
}  // namespace ff
