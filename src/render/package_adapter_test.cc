#include "render/package_adapter.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "render/image_check.h"
#include "render/render_config.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

bool Contains(const std::vector<std::string>& v, const std::string& x) {
  for (const auto& e : v) {
    if (e == x) return true;
  }
  return false;
}

// Index of `x` in `v`, or -1.
int IndexOf(const std::vector<std::string>& v, const std::string& x) {
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == x) return static_cast<int>(i);
  }
  return -1;
}

class AdapterTest : public TempDirFixture {
 protected:
  void Touch(const std::string& name) {
    ASSERT_TRUE(MakeDirs(DirName(Path(name))).ok());
    ASSERT_TRUE(WriteFileAtomic(Path(name), "x").ok());
  }
};

// --- POV-Ray -----------------------------------------------------------------

ChunkSpec PovSpec() {
  ChunkSpec s;
  s.job_id = 7;
  s.chunk = 2;
  s.frames = {1, 2, 3, 5, 6, 9};
  s.job_first_frame = 1;
  s.job_last_frame = 10;
  s.job_dir = "/w/job";
  s.scene = "scenes/clock.pov";
  s.out_dir = "/w/out";
  s.width = 64;
  s.height = 48;
  s.threads = 2;
  s.output_pattern = "clock_####.png";
  s.args = {"+A0.3", "Declare=Speed=2"};
  return s;
}

TEST(BuiltInAdapterTest, JobWithoutOutputFailsNamingRenderOutput) {
  ChunkSpec s = PovSpec();
  s.output_pattern.clear();
  for (const auto& adapter : {MakePovrayAdapter("povray"), MakeBlenderAdapter("blender")}) {
    SCOPED_TRACE(adapter->kind());
    auto cmds = adapter->Commands(s);
    ASSERT_FALSE(cmds.ok());
    EXPECT_EQ(cmds.status().code(), StatusCode::kFailedPrecondition);
    EXPECT_EQ(cmds.status().message(),
              "render.output: the job names no output pattern, but package '" + adapter->kind() +
                  "' renders image frames and needs one");
  }
}

// A job that sets no size: POV-Ray renders 320x240, Blender keeps the
// .blend's own resolution (the prelude sets none).
// POV-Ray gets the render server's renderer home (its user configuration)
// as HOME; without one, HOME is left alone.
TEST(PovrayAdapterTest, RendererHomeIsPovraysHome) {
  ChunkSpec s = PovSpec();
  auto pov = MakePovrayAdapter("/usr/bin/povray");
  auto none = pov->Commands(s);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE((*none)[0].env.empty());
  s.renderer_home = "/etc/frameflow-home";
  auto with = pov->Commands(s);
  ASSERT_TRUE(with.ok());
  EXPECT_EQ((*with)[0].env, std::vector<std::string>{"HOME=/etc/frameflow-home"});
}

TEST(PovrayAdapterTest, SizeDefaultsOnlyWhereTheRendererNeedsOne) {
  ChunkSpec s = PovSpec();
  s.width = s.height = 0;
  auto pov = MakePovrayAdapter("/usr/bin/povray")->Commands(s);
  ASSERT_TRUE(pov.ok());
  EXPECT_GE(IndexOf((*pov)[0].argv, "+W320"), 0);
  EXPECT_GE(IndexOf((*pov)[0].argv, "+H240"), 0);
  s.scene = "b/shot.blend";
  s.output_pattern = "f_####.png";
  auto blend = MakeBlenderAdapter("/usr/bin/blender")->Commands(s);
  ASSERT_TRUE(blend.ok());
  const auto& a = (*blend)[0].argv;
  const std::string& prelude = a[IndexOf(a, "--python-expr") + 1];
  EXPECT_FALSE(HasSubstr(prelude, "resolution_x")) << prelude;
  EXPECT_FALSE(HasSubstr(prelude, "{RESOLUTION}")) << prelude;
}

TEST(PovrayAdapterTest, OneProcessPerConsecutiveRun) {
  auto adapter = MakePovrayAdapter("/usr/bin/povray");
  EXPECT_EQ(adapter->kind(), "povray");
  Result<std::vector<ProcessSpec>> cmds = adapter->Commands(PovSpec());
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 3u);

  // The whole command line of the first run: the job's arguments after
  // frameflow's clock and size (so they can change them), before the frames
  // and the output (which stay frameflow's).
  const std::vector<std::string> first = {"/usr/bin/povray",
                                          "+Iclock.pov",
                                          "+KFI1",
                                          "+KFF10",
                                          "+KI0",
                                          "+KF1",
                                          "-D",
                                          "-P",
                                          "+W64",
                                          "+H48",
                                          "+A0.3",
                                          "Declare=Speed=2",
                                          "+SF1",
                                          "+EF3",
                                          "+FN",
                                          "+O/w/out/f.png",
                                          "+WT2"};
  EXPECT_EQ((*cmds)[0].argv, first);

  const std::pair<std::string, std::string> runs[] = {
      {"+SF1", "+EF3"}, {"+SF5", "+EF6"}, {"+SF9", "+EF9"}};
  for (size_t i = 0; i < 3; ++i) {
    const ProcessSpec& p = (*cmds)[i];
    SCOPED_TRACE("run " + std::to_string(i));
    EXPECT_EQ(p.cwd, "/w/job/scenes");
    EXPECT_EQ(p.argv[0], "/usr/bin/povray");
    EXPECT_TRUE(Contains(p.argv, runs[i].first));
    EXPECT_TRUE(Contains(p.argv, runs[i].second));
    // The animation is the job's, not the chunk's: clock values agree
    // between chunks.
    EXPECT_TRUE(Contains(p.argv, "+KFI1"));
    EXPECT_TRUE(Contains(p.argv, "+KFF10"));
    EXPECT_TRUE(Contains(p.argv, "-D"));
    EXPECT_TRUE(Contains(p.argv, "+W64"));
    EXPECT_TRUE(Contains(p.argv, "+H48"));
    EXPECT_TRUE(Contains(p.argv, "+O/w/out/f.png"));
    EXPECT_TRUE(Contains(p.argv, "+A0.3"));
    EXPECT_TRUE(Contains(p.argv, "Declare=Speed=2"));
    EXPECT_TRUE(p.env.empty());
  }
}

TEST(PovrayAdapterTest, SingleFrameChunkAndThreadsAtLeastOne) {
  ChunkSpec s = PovSpec();
  s.frames = {4};
  s.threads = 0;
  auto cmds = MakePovrayAdapter("povray")->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 1u);
  EXPECT_TRUE(Contains((*cmds)[0].argv, "+SF4"));
  EXPECT_TRUE(Contains((*cmds)[0].argv, "+EF4"));
  EXPECT_TRUE(Contains((*cmds)[0].argv, "+WT1"));
}

TEST(PovrayAdapterTest, IniSceneIsPassedBareWithoutAnimationOptions) {
  ChunkSpec s = PovSpec();
  s.scene = "scenes/render.ini";
  s.frames = {3, 4};
  auto cmds = MakePovrayAdapter("povray")->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 1u);
  const ProcessSpec& p = (*cmds)[0];
  EXPECT_EQ(p.cwd, "/w/job/scenes");
  ASSERT_GE(p.argv.size(), 2u);
  EXPECT_EQ(p.argv[1], "render.ini");
  EXPECT_FALSE(Contains(p.argv, "+Irender.ini"));
  for (const auto& a : p.argv) {
    EXPECT_NE(a.rfind("+KFI", 0), 0u) << a;
    EXPECT_NE(a.rfind("+KFF", 0), 0u) << a;
    EXPECT_NE(a.rfind("+KI", 0), 0u) << a;
    EXPECT_NE(a.rfind("+KF1", 0), 0u) << a;
  }
  EXPECT_TRUE(Contains(p.argv, "+SF3"));
  EXPECT_TRUE(Contains(p.argv, "+EF4"));
  EXPECT_TRUE(Contains(p.argv, "+A0.3"));
  EXPECT_TRUE(Contains(p.argv, "+O/w/out/f.png"));
}

TEST(PovrayAdapterTest, SceneAtJobRoot) {
  ChunkSpec s = PovSpec();
  s.scene = "clock.pov";
  auto cmds = MakePovrayAdapter("povray")->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  EXPECT_EQ((*cmds)[0].cwd, "/w/job");
  EXPECT_EQ((*cmds)[0].argv[1], "+Iclock.pov");
}

TEST(PovrayAdapterTest, ObserveLineTracksFramesFromOutputFileLines) {
  auto adapter = MakePovrayAdapter("povray");
  ChunkProgressState s;
  adapter->ObserveLine("Rendering frame 1 of 2", &s);
  EXPECT_EQ(s.current_frame, -1);
  EXPECT_EQ(s.frames_done, 0);

  adapter->ObserveLine("  Output file........../x/out/f07.png, 24 bpp PNG", &s);
  EXPECT_EQ(s.current_frame, 7);
  EXPECT_EQ(s.frames_done, 0);
  adapter->ObserveLine("==== [Rendering...] ========================================", &s);
  adapter->ObserveLine("  Output file........../x/out/f08.png, 24 bpp PNG", &s);
  EXPECT_EQ(s.current_frame, 8);
  EXPECT_EQ(s.frames_done, 1);
  // The next run of the same chunk, a separate POV-Ray process.
  adapter->ObserveLine("  Output file........../x/out/f10.png, 24 bpp PNG", &s);
  EXPECT_EQ(s.current_frame, 10);
  EXPECT_EQ(s.frames_done, 2);
  EXPECT_EQ(s.last_error_line, "");
}

TEST(PovrayAdapterTest, ObserveLineRecordsErrorsButNotTheOptionListing) {
  auto adapter = MakePovrayAdapter("povray");
  ChunkProgressState s;
  // Printed by every run of the Debian build and in every option listing;
  // none of them is an error.
  for (const char* benign : {
           "povray: cannot open the user configuration file /root/.povray/3.7/povray.conf: No "
           "such file or directory",
           "  Fatal Stream to console.........On ",
           "  Warning Stream to console.......On ",
       }) {
    adapter->ObserveLine(benign, &s);
    EXPECT_EQ(s.last_error_line, "") << benign;
  }
  adapter->ObserveLine(
      "File 'clock.pov' line 3: Parse Error: No matching } in 'sphere', undeclared", &s);
  EXPECT_EQ(s.last_error_line,
            "File 'clock.pov' line 3: Parse Error: No matching } in 'sphere', undeclared");
  // The parser's own error stays the chunk's error: what POV-Ray prints
  // after it ("Fatal error in parser", "Render failed") says less.
  adapter->ObserveLine("Fatal error in parser: Cannot parse input.", &s);
  adapter->ObserveLine("Render failed", &s);
  adapter->ObserveLine(" identifier 'pigmnt' found instead", &s);
  EXPECT_EQ(s.last_error_line,
            "File 'clock.pov' line 3: Parse Error: No matching } in 'sphere', undeclared");
  EXPECT_EQ(s.current_frame, -1);
}

// The progress state after `adapter` saw `lines`, in order.
ChunkProgressState ObserveAll(const PackageAdapter& adapter,
                              std::initializer_list<const char*> lines) {
  ChunkProgressState s;
  for (const char* line : lines) adapter.ObserveLine(line, &s);
  return s;
}

// What POV-Ray 3.7 prints for a missing include: the "Possible Parse Error"
// warning, then the error, then generic lines; the error is the one kept.
TEST(RendererOutputTest, PovrayMissingIncludeNamesTheFile) {
  auto pov = MakePovrayAdapter("povray");
  ChunkProgressState s = ObserveAll(
      *pov, {"File 's.pov' line 1: Possible Parse Error: Cannot find file 'missing.inc', even",
             " after trying to append file type extension.",
             "File 's.pov' line 1: Parse Error: Cannot open include file missing.inc.",
             "Fatal error in parser: Cannot parse input.", "Render failed"});
  EXPECT_EQ(s.last_error_line,
            "File 's.pov' line 1: Parse Error: Cannot open include file missing.inc.");
  // A longer name: POV-Ray wraps the line at 80 columns; the rest is joined.
  ChunkProgressState w = ObserveAll(
      *pov, {"File 'broken.pov' line 1: Parse Error: Cannot open include file",
             "missing_parts.inc.", "Fatal error in parser: Cannot parse input.", "Render failed"});
  EXPECT_EQ(w.last_error_line,
            "File 'broken.pov' line 1: Parse Error: Cannot open include file missing_parts.inc.");
}

// Blender: frameflow's missing-file check and Blender's own "Error: " lines
// are the cause; Blender quoting the check script back never is.
TEST(RendererOutputTest, BlenderErrorIsTheCauseNotTheScriptEcho) {
  auto blender = MakeBlenderAdapter("blender");
  ChunkProgressState s = ObserveAll(
      *blender, {"Error: Python: Traceback (most recent call last):",
                 "  File \"<string>\", line 16, in <module>",
                 "RuntimeError: frameflow: missing file(s) the scene needs: //textures/wood.png",
                 "", "Error: script failed, expr: '", "import bpy, os",
                 "    raise RuntimeError('frameflow: "
                 "missing file(s) the scene needs: ' + ', '.join(missing))"});
  EXPECT_EQ(s.last_error_line, "frameflow: missing file(s) the scene needs: //textures/wood.png");
  ChunkProgressState t;
  blender->ObserveLine("Error: Cannot read file '/job/shot.blend': No such file or directory", &t);
  blender->ObserveLine("Blender quit", &t);
  EXPECT_EQ(t.last_error_line,
            "Error: Cannot read file '/job/shot.blend': No such file or directory");
}

TEST(RendererOutputTest, LongLinesAreMatchedWithoutRecursion) {
  // Found by tests/fuzz/render_assignment_fuzz: std::regex recursed once per
  // character, and one 64 KiB line of renderer output (what the process
  // reader keeps; a scene can print it) overflowed the slot's stack.
  const std::string dots(64 * 1024 - 40, '.');
  auto pov = MakePovrayAdapter("povray");
  ChunkProgressState s;
  pov->ObserveLine("  Output file" + dots + "/x/out/f-12.png, 24 bpp PNG", &s);
  EXPECT_EQ(s.current_frame, -12);
  pov->ObserveLine("  Output file" + dots, &s);
  EXPECT_EQ(s.current_frame, -12);
  pov->ObserveLine(std::string(64 * 1024, 'x') + " error", &s);
  EXPECT_EQ(s.last_error_line.size(), 64u * 1024 + 6);
  // The pattern's details: the last "/f<n>.png" after the dots, the first
  // "Output file" followed by a dot.
  pov->ObserveLine("Output file: none; Output file.../a/f1.png /b/f2.png /f3.pngx", &s);
  EXPECT_EQ(s.current_frame, 3);
  pov->ObserveLine("Output file./f4.png", &s);
  EXPECT_EQ(s.current_frame, 4);
  pov->ObserveLine("Output file /f5.png", &s);  // no dot
  EXPECT_EQ(s.current_frame, 4);
  pov->ObserveLine("Output file../f5.png", &s);
  EXPECT_EQ(s.current_frame, 5);
  pov->ObserveLine("Output file.../f-.png /fx.png", &s);
  EXPECT_EQ(s.current_frame, 5);

  auto blender = MakeBlenderAdapter("blender");
  ChunkProgressState b;
  blender->ObserveLine("Fra:" + std::string(64 * 1024, '7') + " Mem", &b);
  EXPECT_EQ(b.current_frame, -1);  // too many digits: not a frame
  blender->ObserveLine("Fra:-2 Mem:1M", &b);
  EXPECT_EQ(b.current_frame, -2);
  blender->ObserveLine("Fra:9", &b);  // no space after the number
  EXPECT_EQ(b.current_frame, -2);
  blender->ObserveLine(" Fra:9 Mem", &b);  // not at the start
  EXPECT_EQ(b.current_frame, -2);
}

TEST_F(AdapterTest, PovrayFindOutputsScansNumberedFiles) {
  Touch("out/f01.png");
  Touch("out/f10.png");
  Touch("out/f.png");        // not a frame when the chunk has several
  Touch("out/fx1.png");      // not a number
  Touch("out/g02.png");      // not ours
  Touch("out/f03.png.tmp");  // not a PNG name
  Touch("out/f04.tga");
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {1, 2, 10};
  auto found = MakePovrayAdapter("povray")->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  std::map<int64_t, std::string> want = {{1, Path("out/f01.png")}, {10, Path("out/f10.png")}};
  EXPECT_EQ(*found, want);
}

TEST_F(AdapterTest, PovrayFindOutputsSingleFrameWithoutNumber) {
  // A one-frame animation is no animation to POV-Ray: it writes f.png.
  Touch("out/f.png");
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {5};
  auto found = MakePovrayAdapter("povray")->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  std::map<int64_t, std::string> want = {{5, Path("out/f.png")}};
  EXPECT_EQ(*found, want);

  // A numbered single frame is found as well.
  ASSERT_TRUE(RemoveAll(Path("out/f.png")).ok());
  Touch("out/f5.png");
  found = MakePovrayAdapter("povray")->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  want = {{5, Path("out/f5.png")}};
  EXPECT_EQ(*found, want);
}

TEST_F(AdapterTest, PovrayFindOutputsMissingDirectoryIsAnError) {
  ChunkSpec s = PovSpec();
  s.out_dir = Path("no-such-dir");
  auto found = MakePovrayAdapter("povray")->FindOutputs(s);
  EXPECT_FALSE(found.ok());
}

// Looks `name` up in $PATH; empty if absent.
std::string FindInPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = JoinPath(p.substr(start, end - start), name);
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return "";
}

// Points $HOME elsewhere for its lifetime (children inherit it).
class ScopedHome {
 public:
  explicit ScopedHome(const std::string& dir) {
    const char* old = std::getenv("HOME");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("HOME", dir.c_str(), 1);
  }
  ~ScopedHome() {
    if (had_) {
      ::setenv("HOME", old_.c_str(), 1);
    } else {
      ::unsetenv("HOME");
    }
  }

 private:
  bool had_ = false;
  std::string old_;
};

constexpr const char* kTinyScene = R"(// Moves with the animation clock.
camera { location <0, 0, -5> look_at <0, 0, 0> }
light_source { <10, 10, -10> color rgb 1 }
sphere { <clock * 2 - 1, 0, 0>, 1 pigment { color rgb <1, clock, 0> } }
)";

TEST_F(AdapterTest, PovrayRendersFramesThroughTheLauncher) {
  std::string povray = FindInPath("povray");
  if (povray.empty()) GTEST_SKIP() << "povray is not installed";
  ASSERT_TRUE(MakeDirs(Path("job/scenes")).ok());
  ASSERT_TRUE(MakeDirs(Path("out")).ok());
  ASSERT_TRUE(WriteFileAtomic(Path("job/scenes/tiny.pov"), kTinyScene).ok());
  // A user's ~/.povray/3.7/povray.ini must not change the render.
  ScopedHome home(dir_);

  ChunkSpec s;
  s.job_id = 1;
  s.chunk = 0;
  s.frames = {1, 2, 4};
  s.job_first_frame = 1;
  s.job_last_frame = 4;
  s.job_dir = Path("job");
  s.scene = "scenes/tiny.pov";
  s.out_dir = Path("out");
  s.width = 32;
  s.height = 24;
  s.threads = 1;
  s.output_pattern = "tiny_#.png";
  auto adapter = MakePovrayAdapter(povray);
  auto cmds = adapter->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 2u);

  ChunkProgressState progress;
  std::string log;
  for (const ProcessSpec& p : *cmds) {
    // Wait() returns after the last line was delivered, so the callback's
    // writes are visible here without a lock.
    auto proc = DefaultProcessLauncher()->Start(p, [&](const std::string& line) {
      adapter->ObserveLine(line, &progress);
      log += line + "\n";
    });
    ASSERT_TRUE(proc.ok()) << proc.status().ToString();
    EXPECT_EQ((*proc)->Wait(), 0) << log;
  }

  EXPECT_EQ(progress.current_frame, 4) << log;
  EXPECT_EQ(progress.frames_done, 2) << log;
  EXPECT_EQ(progress.last_error_line, "") << log;
  auto found = adapter->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_EQ(found->size(), 3u) << log;
  for (int64_t f : s.frames) {
    SCOPED_TRACE("frame " + std::to_string(f));
    auto it = found->find(f);
    ASSERT_NE(it, found->end()) << log;
    Result<ImageInfo> img = CheckImage(it->second);
    ASSERT_TRUE(img.ok()) << img.status().ToString();
    EXPECT_EQ(img->format, "png");
    EXPECT_EQ(img->width, 32);
    EXPECT_EQ(img->height, 24);
  }
  EXPECT_EQ(found->count(3), 0u);
}

// --- Blender -----------------------------------------------------------------

TEST(BlenderAdapterTest, ArgumentOrder) {
  ChunkSpec s = PovSpec();
  s.scene = "b/shot.blend";
  s.frames = {1, 2, 3, 7, 9, 10};
  s.args = {"-E", "CYCLES"};
  s.threads = 0;
  auto adapter = MakeBlenderAdapter("/opt/blender/blender");
  EXPECT_EQ(adapter->kind(), "blender");
  auto cmds = adapter->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 1u);
  const ProcessSpec& p = (*cmds)[0];
  EXPECT_EQ(p.cwd, "/w/job/b");
  const std::vector<std::string>& a = p.argv;
  ASSERT_GE(a.size(), 7u);
  EXPECT_EQ(a[0], "/opt/blender/blender");
  // The scene is loaded first: later options apply to it.
  EXPECT_EQ(a[1], "-b");
  EXPECT_EQ(a[2], "/w/job/b/shot.blend");
  EXPECT_EQ(a[3], "-noaudio");

  int exit_code = IndexOf(a, "--python-exit-code");
  int expr = IndexOf(a, "--python-expr");
  ASSERT_GE(exit_code, 0);
  ASSERT_GE(expr, 0);
  EXPECT_LT(exit_code, expr);
  EXPECT_EQ(a[exit_code + 1], "3");
  const std::string& prelude = a[expr + 1];
  EXPECT_TRUE(HasSubstr(prelude, "resolution_x = 64"));
  EXPECT_TRUE(HasSubstr(prelude, "resolution_y = 48"));
  EXPECT_FALSE(HasSubstr(prelude, "{W}"));
  EXPECT_FALSE(HasSubstr(prelude, "{H}"));

  int user = IndexOf(a, "-E");
  int out = IndexOf(a, "-o");
  int format = IndexOf(a, "-F");
  ASSERT_GE(user, 0);
  ASSERT_GE(out, 0);
  ASSERT_GE(format, 0);
  EXPECT_GT(user, expr + 1);
  EXPECT_EQ(a[user + 1], "CYCLES");
  EXPECT_EQ(a[out + 1], "/w/out/f_#####");
  EXPECT_EQ(a[format + 1], "PNG");
  EXPECT_TRUE(Contains(a, "-t"));
  EXPECT_EQ(a[IndexOf(a, "-t") + 1], "1");

  // The per-run groups come last, each "-s a -e b -a".
  const std::vector<std::string> tail = {"-s", "1",  "-e", "3", "-a", "-s", "7", "-e",
                                         "7",  "-a", "-s", "9", "-e", "10", "-a"};
  ASSERT_GE(a.size(), tail.size());
  std::vector<std::string> got_tail(a.end() - static_cast<long>(tail.size()), a.end());
  EXPECT_EQ(got_tail, tail);
  int first_s = static_cast<int>(a.size() - tail.size());
  EXPECT_LT(out, first_s);
  EXPECT_LT(format, first_s);
  EXPECT_LT(user, first_s);
}

TEST(BlenderAdapterTest, ObserveLine) {
  auto adapter = MakeBlenderAdapter("blender");
  ChunkProgressState s;
  adapter->ObserveLine("Blender 3.4.1 (hash 55485cb379f7 built 2023-01-01 00:00:00)", &s);
  adapter->ObserveLine("Read blend: /w/job/b/shot.blend", &s);
  EXPECT_EQ(s.current_frame, -1);
  adapter->ObserveLine("Fra:3 Mem:10.50M (Peak 11.00M) | Time:00:00.05 | Syncing Cube", &s);
  EXPECT_EQ(s.current_frame, 3);
  EXPECT_EQ(s.frames_done, 0);
  adapter->ObserveLine("Saved: '/x/f_00003.png'", &s);
  EXPECT_EQ(s.frames_done, 1);
  EXPECT_EQ(s.current_frame, 3);
  adapter->ObserveLine(" Time: 00:00.11 (Saving: 00:00.00)", &s);
  adapter->ObserveLine("Fra:4 Mem:10.50M (Peak 11.00M) | Time:00:00.01 | Rendering 1 / 16", &s);
  EXPECT_EQ(s.current_frame, 4);
  adapter->ObserveLine("Saved: '/x/f_00004.png'", &s);
  EXPECT_EQ(s.frames_done, 2);
  EXPECT_EQ(s.last_error_line, "");
  adapter->ObserveLine("Error: Cannot read file '/w/job/b/tex.png': No such file or directory", &s);
  EXPECT_EQ(s.last_error_line,
            "Error: Cannot read file '/w/job/b/tex.png': No such file or directory");
}

TEST_F(AdapterTest, BlenderFindOutputs) {
  Touch("out/f_00003.png");
  Touch("out/f_00012.png");
  Touch("out/f00004.png");  // no underscore: not Blender's name
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {3, 12};
  auto found = MakeBlenderAdapter("blender")->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  std::map<int64_t, std::string> want = {{3, Path("out/f_00003.png")},
                                         {12, Path("out/f_00012.png")}};
  EXPECT_EQ(*found, want);
}

// --- Command templates -------------------------------------------------------

CommandPackageConfig Package(const std::string& command) {
  CommandPackageConfig p;
  p.name = "mytool";
  p.version = "1.0";
  p.command = command;
  return p;
}

TEST_F(AdapterTest, CommandPerFrameTemplate) {
  ChunkSpec s = PovSpec();
  s.scene = "scenes/shot.txt";
  s.out_dir = Path("out");
  s.frames = {4, 5, 9};
  s.output_pattern = "sub/img_###.png";
  s.args = {"--extra"};
  auto adapter = MakeCommandAdapter(
      Package("mytool --frame {frame} --out={output} '{scene} x' \"{width}x{height}\" "
              "{frame}-{frame} -t{threads} {job}/{chunk}"));
  EXPECT_EQ(adapter->kind(), "command");
  auto cmds = adapter->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 3u);
  const int64_t frames[] = {4, 5, 9};
  for (size_t i = 0; i < 3; ++i) {
    const ProcessSpec& p = (*cmds)[i];
    std::string f = std::to_string(frames[i]);
    std::string padded = std::string(3 - f.size(), '0') + f;
    std::vector<std::string> want = {"mytool",
                                     "--frame",
                                     f,
                                     "--out=" + Path("out/sub/img_" + padded + ".png"),
                                     "/w/job/scenes/shot.txt x",
                                     "64x48",
                                     f + "-" + f,
                                     "-t2",
                                     "7/2",
                                     "--extra"};
    EXPECT_EQ(p.argv, want);
    EXPECT_EQ(p.cwd, "/w/job/scenes");
    EXPECT_TRUE(Contains(p.env, "FRAMEFLOW_JOB=7"));
    EXPECT_TRUE(Contains(p.env, "FRAMEFLOW_CHUNK=2"));
  }
  // The adapter touches no filesystem (its paths may be the I/O wrapper's);
  // the render server makes the sub-directories OutputSubdirs() names.
  EXPECT_FALSE(PathExists(Path("out/sub")));
  EXPECT_EQ(OutputSubdirs(s), std::vector<std::string>{"sub"});
}

TEST_F(AdapterTest, CommandPerChunkTemplate) {
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {3, 4, 5};
  s.output_pattern = "img_####.png";
  s.args.clear();
  auto cmds = MakeCommandAdapter(Package("render -s {first} -e {last} -d {outdir} -o {output}"))
                  ->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 1u);
  std::vector<std::string> want = {
      "render", "-s", "3", "-e", "5", "-d", Path("out"), "-o", Path("out/img_####.png")};
  EXPECT_EQ((*cmds)[0].argv, want);
}

TEST_F(AdapterTest, CommandPerFrameFirstAndLastAreTheFrame) {
  // {first}/{last} in a per-frame template are the frame itself.
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {8};
  s.output_pattern = "o_#.png";
  s.args.clear();
  auto cmds = MakeCommandAdapter(Package("t {frame} {first} {last}"))->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 1u);
  std::vector<std::string> want = {"t", "8", "8", "8"};
  EXPECT_EQ((*cmds)[0].argv, want);
}

TEST_F(AdapterTest, CommandBadTemplateIsAnError) {
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.output_pattern = "o_#.png";
  auto cmds = MakeCommandAdapter(Package("t '{frame}"))->Commands(s);
  ASSERT_FALSE(cmds.ok());
  EXPECT_TRUE(HasSubstr(cmds.status().message(), "unterminated"));
}

TEST_F(AdapterTest, CommandObserveLineAndFindOutputs) {
  auto adapter = MakeCommandAdapter(Package("t {frame}"));
  ChunkProgressState st;
  adapter->ObserveLine("frame 3 of 5", &st);
  EXPECT_EQ(st.last_error_line, "");
  adapter->ObserveLine("mytool: cannot open input", &st);
  EXPECT_EQ(st.last_error_line, "mytool: cannot open input");

  Touch("out/sub/img_004.png");
  Touch("out/sub/img_009.png");
  Touch("out/sub/img_006.png");  // not in the chunk
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {4, 5, 9};
  s.output_pattern = "sub/img_###.png";
  auto found = adapter->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  std::map<int64_t, std::string> want = {{4, Path("out/sub/img_004.png")},
                                         {9, Path("out/sub/img_009.png")}};
  EXPECT_EQ(*found, want);
}

TEST_F(AdapterTest, CommandJobWithoutOutput) {
  ChunkSpec s = PovSpec();
  s.out_dir = Path("out");
  s.frames = {4, 5};
  s.output_pattern.clear();
  s.args.clear();
  // {outdir} is still a scratch directory; nothing is collected from it.
  auto adapter = MakeCommandAdapter(Package("/bin/true {frame} {outdir}"));
  auto cmds = adapter->Commands(s);
  ASSERT_TRUE(cmds.ok()) << cmds.status().ToString();
  ASSERT_EQ(cmds->size(), 2u);
  std::vector<std::string> want = {"/bin/true", "5", Path("out")};
  EXPECT_EQ((*cmds)[1].argv, want);
  Touch("out/stray_0004.png");
  auto found = adapter->FindOutputs(s);
  ASSERT_TRUE(found.ok()) << found.status().ToString();
  EXPECT_TRUE(found->empty());

  // A template that writes {output} cannot run a job that has none.
  cmds = MakeCommandAdapter(Package("mytool --out {output}"))->Commands(s);
  ASSERT_FALSE(cmds.ok());
  EXPECT_EQ(cmds.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(cmds.status().message(),
            "render.output: the job names no output pattern, but the command template of "
            "package 'mytool' uses {output}");
}

TEST(SplitCommandTemplateTest, WhitespaceAndQuotes) {
  auto words = SplitCommandTemplate("  a  b\t'c d' \"e 'f'\" g\"h i\"j '' \n");
  ASSERT_TRUE(words.ok()) << words.status().ToString();
  std::vector<std::string> want = {"a", "b", "c d", "e 'f'", "gh ij", ""};
  EXPECT_EQ(*words, want);

  words = SplitCommandTemplate("--out={output} x'{frame}'");
  ASSERT_TRUE(words.ok());
  want = {"--out={output}", "x{frame}"};
  EXPECT_EQ(*words, want);
}

TEST(SplitCommandTemplateTest, Errors) {
  auto words = SplitCommandTemplate("tool 'unterminated arg");
  ASSERT_FALSE(words.ok());
  EXPECT_EQ(words.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(HasSubstr(words.status().message(), "unterminated quote"));
  EXPECT_TRUE(HasSubstr(words.status().message(), "tool 'unterminated arg"));

  words = SplitCommandTemplate("tool \"x");
  ASSERT_FALSE(words.ok());
  EXPECT_TRUE(HasSubstr(words.status().message(), "unterminated quote"));

  words = SplitCommandTemplate(" \t ");
  ASSERT_FALSE(words.ok());
  EXPECT_TRUE(HasSubstr(words.status().message(), "empty"));
}

TEST(ExpandOutputPatternTest, PadsEachRun) {
  EXPECT_EQ(ExpandOutputPattern("f_####.png", 7), "f_0007.png");
  EXPECT_EQ(ExpandOutputPattern("f_#.png", 123), "f_123.png");
  EXPECT_EQ(ExpandOutputPattern("s##/f_###.png", 5), "s05/f_005.png");
  EXPECT_EQ(ExpandOutputPattern("f_####.png", 12345), "f_12345.png");
  EXPECT_EQ(ExpandOutputPattern("f_###.png", -3), "f_-003.png");
  EXPECT_EQ(ExpandOutputPattern("still.png", 3), "still.png");
}

}  // namespace
}  // namespace ff
