#include "core/job_profile.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "util/test_fixtures.h"

namespace ff {
namespace {

::testing::AssertionResult StartsWith(const std::string& s, const std::string& prefix) {
  if (s.compare(0, prefix.size(), prefix) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << s << "' does not start with '" << prefix << "'";
}

// The example from job_profile.h, verbatim apart from the comments.
constexpr const char* kHeaderExample = R"(name = "clock"
priority = 50
placement = "local"
frames = "1-24"
chunk_size = 4
max_attempts = 3

[package]
name = "povray"
version = ">=3.7"

[render]
scene = "clock.pov"
width = 320
height = 240
output = "clock_####.png"
args = ["+A0.3"]

[requirements]
cores = 1
memory = "512M"
gpus = 0

files = ["clock.inc", "tex/wood.png"]

[[notify]]
webhook = "http://127.0.0.1:8080/done"
command = "notify-send done"
)";

// Lines: 1 name, 2 frames, 4 [package], 5 package.name, 7 [render],
// 8 scene, 9 output. Keys appended to it land in [render] at line 10.
constexpr const char* kMinimal = R"(name = "clock"
frames = "1-24"

[package]
name = "povray"

[render]
scene = "clock.pov"
output = "clock_####.png"
)";

Result<JobProfile> Parse(const std::string& text) {
  return ParseJobDescription(text, "clock.toml");
}

JobProfile ParseOk(const std::string& text) {
  auto r = Parse(text);
  EXPECT_TRUE(r.ok()) << r.status().message() << "\n--- description ---\n" << text;
  return r.ok() ? *r : JobProfile{};
}

std::string Error(const std::string& text) {
  auto r = Parse(text);
  EXPECT_FALSE(r.ok()) << "unexpectedly parsed:\n" << text;
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  return r.status().message();
}

// The minimal description with line 2 set to `frames = <value>`.
std::string WithFrames(const std::string& value) {
  std::string text = kMinimal;
  const std::string old = "frames = \"1-24\"";
  return text.replace(text.find(old), old.size(), "frames = " + value);
}

// Prepends `line` as line 1 of the minimal description.
std::string WithTop(const std::string& line) { return line + "\n" + kMinimal; }

// Appends `lines` to the minimal description, starting at line 10.
std::string WithTail(const std::string& lines) { return std::string(kMinimal) + lines; }

void ExpectProfilesEqual(const JobProfile& a, const JobProfile& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.priority, b.priority);
  EXPECT_EQ(a.placement, b.placement);
  EXPECT_EQ(a.remote_site, b.remote_site);
  EXPECT_EQ(a.frames, b.frames);
  EXPECT_EQ(a.chunk_size, b.chunk_size);
  EXPECT_EQ(a.max_attempts, b.max_attempts);
  EXPECT_EQ(a.package, b.package);
  EXPECT_EQ(a.package_version.text(), b.package_version.text());
  EXPECT_EQ(a.package_version.MatchesAny(), b.package_version.MatchesAny());
  for (const char* v : {"0.1", "3.6.9", "3.7", "3.7.0.10", "3.8", "4", "4.0.1", "10"}) {
    auto version = Version::Parse(v);
    ASSERT_TRUE(version.ok());
    EXPECT_EQ(a.package_version.Matches(*version), b.package_version.Matches(*version)) << v;
  }
  EXPECT_EQ(a.scene, b.scene);
  EXPECT_EQ(a.width, b.width);
  EXPECT_EQ(a.height, b.height);
  EXPECT_EQ(a.animation_first, b.animation_first);
  EXPECT_EQ(a.animation_last, b.animation_last);
  EXPECT_EQ(a.output, b.output);
  EXPECT_EQ(a.args, b.args);
  EXPECT_EQ(a.requirements.cores, b.requirements.cores);
  EXPECT_EQ(a.requirements.memory_bytes, b.requirements.memory_bytes);
  EXPECT_EQ(a.requirements.gpus, b.requirements.gpus);
  EXPECT_EQ(a.files, b.files);
  ASSERT_EQ(a.central.size(), b.central.size());
  for (size_t i = 0; i < a.central.size(); ++i) {
    EXPECT_EQ(a.central[i].path, b.central[i].path) << i;
    EXPECT_EQ(a.central[i].source, b.central[i].source) << i;
  }
  ASSERT_EQ(a.notify.size(), b.notify.size());
  for (size_t i = 0; i < a.notify.size(); ++i) {
    EXPECT_EQ(a.notify[i].webhook, b.notify[i].webhook) << i;
    EXPECT_EQ(a.notify[i].command, b.notify[i].command) << i;
  }
}

void ExpectRoundTrip(const JobProfile& p) {
  const std::string text = ProfileToToml(p);
  auto back = ParseJobDescription(text, "db");
  ASSERT_TRUE(back.ok()) << back.status().message() << "\n" << text;
  ExpectProfilesEqual(*back, p);
  EXPECT_EQ(ProfileToToml(*back), text) << "serialisation must be stable";
}

// ---- happy paths ----------------------------------------------------------

TEST(ParseJobDescription, HeaderExample) {
  JobProfile p = ParseOk(kHeaderExample);
  EXPECT_EQ(p.name, "clock");
  EXPECT_EQ(p.priority, 50);
  EXPECT_EQ(p.placement, Placement::kLocal);
  EXPECT_EQ(p.remote_site, "");
  EXPECT_EQ(p.frames, *FrameSet::Parse("1-24"));
  EXPECT_EQ(p.chunk_size, 4);
  EXPECT_EQ(p.max_attempts, 3);
  EXPECT_EQ(p.package, "povray");
  EXPECT_EQ(p.package_version.text(), ">=3.7");
  EXPECT_TRUE(p.package_version.Matches(*Version::Parse("3.7.0.10")));
  EXPECT_FALSE(p.package_version.Matches(*Version::Parse("3.6")));
  EXPECT_EQ(p.scene, "clock.pov");
  EXPECT_EQ(p.width, 320);
  EXPECT_EQ(p.height, 240);
  EXPECT_EQ(p.output, "clock_####.png");
  EXPECT_EQ(p.args, std::vector<std::string>({"+A0.3"}));
  EXPECT_EQ(p.requirements.cores, 1);
  EXPECT_EQ(p.requirements.memory_bytes, 512 * 1024 * 1024);
  EXPECT_EQ(p.requirements.gpus, 0);
  EXPECT_EQ(p.files, std::vector<std::string>({"clock.inc", "tex/wood.png"}));
  ASSERT_EQ(p.notify.size(), 1u);
  EXPECT_EQ(p.notify[0].webhook, "http://127.0.0.1:8080/done");
  EXPECT_EQ(p.notify[0].command, "notify-send done");
}

TEST(ParseJobDescription, MinimalGetsDefaults) {
  JobProfile p = ParseOk(kMinimal);
  EXPECT_EQ(p.name, "clock");
  EXPECT_EQ(p.priority, 50);
  EXPECT_EQ(p.placement, Placement::kLocal);
  EXPECT_EQ(p.chunk_size, 1);
  EXPECT_EQ(p.max_attempts, 0);
  EXPECT_TRUE(p.package_version.MatchesAny());
  EXPECT_EQ(p.width, 0) << "not set: the renderer's or the scene's own";
  EXPECT_EQ(p.height, 0);
  EXPECT_EQ(p.AnimationFirst(), p.frames.first());
  EXPECT_EQ(p.AnimationLast(), p.frames.last());
  EXPECT_TRUE(p.args.empty());
  EXPECT_EQ(p.requirements.cores, 1);
  EXPECT_EQ(p.requirements.memory_bytes, 0);
  EXPECT_EQ(p.requirements.gpus, 0);
  EXPECT_TRUE(p.files.empty());
  EXPECT_TRUE(p.notify.empty());
}

TEST(ParseJobDescription, TopLevelFilesBeforeTables) {
  JobProfile p = ParseOk(WithTop(R"(files = ["a.inc", "tex//wood.png", "./a.inc", "b"])"));
  EXPECT_EQ(p.files, std::vector<std::string>({"a.inc", "tex/wood.png", "b"}))
      << "normalised, duplicates removed, first order kept";
}

TEST(ParseJobDescription, FilesInRequirementsTable) {
  JobProfile p = ParseOk(WithTail("[requirements]\nfiles = [\"x.inc\"]\n"));
  EXPECT_EQ(p.files, std::vector<std::string>({"x.inc"}));
}

TEST(ParseJobDescription, PlacementValues) {
  EXPECT_EQ(ParseOk(WithTop("placement = \"local\"")).placement, Placement::kLocal);
  EXPECT_EQ(ParseOk(WithTop("placement = \"auto\"")).placement, Placement::kAuto);
  // The parser accepts remote; whether a site can honour it is decided later.
  JobProfile p = ParseOk(WithTop("placement = \"remote\"\nremote_site = \"paris\""));
  EXPECT_EQ(p.placement, Placement::kRemote);
  EXPECT_EQ(p.remote_site, "paris");
  EXPECT_EQ(ParseOk(WithTop("placement = \"remote\"")).remote_site, "");
}

TEST(ParseJobDescription, PackageNameIsLowerCased) {
  JobProfile p = ParseOk(R"(name = "n"
frames = "1"
[package]
name = "POV-Ray_3.7"
[render]
scene = "s.pov"
output = "o#.png"
)");
  EXPECT_EQ(p.package, "pov-ray_3.7");
}

TEST(ParseJobDescription, PathsAreNormalised) {
  JobProfile p = ParseOk(R"(name = "n"
frames = "1"
[package]
name = "povray"
[render]
scene = "./scenes//clock.pov"
output = "out/./f_###.png"
)");
  EXPECT_EQ(p.scene, "scenes/clock.pov");
  EXPECT_EQ(p.output, "out/f_###.png");
}

TEST(ParseJobDescription, BoundaryValuesAccepted) {
  JobProfile p = ParseOk(R"(name = "a"
priority = 0
chunk_size = 100000
max_attempts = 100
frames = "-1000000,100000000"
[package]
name = "blender"
[render]
scene = "s.blend"
output = "#"
width = 65536
height = 1
[requirements]
cores = 4096
gpus = 64
memory = 0
)");
  EXPECT_EQ(p.priority, 0);
  EXPECT_EQ(p.chunk_size, 100000);
  EXPECT_EQ(p.max_attempts, 100);
  EXPECT_EQ(p.width, 65536);
  EXPECT_EQ(p.height, 1);
  EXPECT_EQ(p.requirements.cores, 4096);
  EXPECT_EQ(p.requirements.gpus, 64);
  EXPECT_EQ(ParseOk(WithTop("priority = 100")).priority, 100);
  EXPECT_EQ(ParseOk(WithTop("max_attempts = 0")).max_attempts, 0);
  EXPECT_EQ(ParseOk(WithTop("max_attempts = 1")).max_attempts, 1);
}

TEST(ParseJobDescription, NameOfSixtyFourCharacters) {
  const std::string name(64, 'x');
  JobProfile p = ParseOk("name = \"" + name + R"("
frames = "1"
[package]
name = "povray"
[render]
scene = "s.pov"
output = "o#.png"
)");
  EXPECT_EQ(p.name, name);
}

TEST(ParseJobDescription, MemoryForms) {
  auto memory = [](const std::string& value) {
    return ParseOk(WithTail("[requirements]\nmemory = " + value + "\n")).requirements.memory_bytes;
  };
  EXPECT_EQ(memory("\"512M\""), int64_t{512} << 20);
  EXPECT_EQ(memory("\"2G\""), int64_t{2} << 30);
  EXPECT_EQ(memory("\"1T\""), int64_t{1} << 40);
  EXPECT_EQ(memory("\"64K\""), int64_t{64} << 10);
  EXPECT_EQ(memory("\"1000\""), 1000);
  EXPECT_EQ(memory("123456789"), 123456789);
  EXPECT_EQ(memory("0"), 0);
}

TEST(ParseJobDescription, NotifyTargets) {
  JobProfile p = ParseOk(WithTail(R"(
[[notify]]
webhook = "https://example.com/hook?job=1"

[[notify]]
command = "echo done"

[[notify]]
webhook = "http://h/x"
command = "true"
)"));
  ASSERT_EQ(p.notify.size(), 3u);
  EXPECT_EQ(p.notify[0].webhook, "https://example.com/hook?job=1");
  EXPECT_EQ(p.notify[0].command, "");
  EXPECT_EQ(p.notify[1].webhook, "");
  EXPECT_EQ(p.notify[1].command, "echo done");
  EXPECT_EQ(p.notify[2].webhook, "http://h/x");
  EXPECT_EQ(p.notify[2].command, "true");
}

TEST(ParseJobDescription, InlineTablesAndDottedKeysWork) {
  JobProfile p = ParseOk(R"(name = "n"
frames = "1-3"
package = { name = "povray", version = "~3.7" }
render.scene = "s.pov"
render.output = "o_##.png"
notify = [{ command = "x" }]
)");
  EXPECT_EQ(p.package, "povray");
  EXPECT_EQ(p.package_version.text(), "~3.7");
  EXPECT_EQ(p.scene, "s.pov");
  ASSERT_EQ(p.notify.size(), 1u);
}

TEST(ParseJobDescription, ComplexFrameSet) {
  JobProfile p = ParseOk(WithFrames("\"10-1x3, -2, 5, 5\""));
  EXPECT_EQ(p.frames.frames(), std::vector<int64_t>({-2, 1, 4, 5, 7, 10}));
}

// ---- round trip -----------------------------------------------------------

TEST(ProfileToToml, RoundTripHeaderExample) { ExpectRoundTrip(ParseOk(kHeaderExample)); }

TEST(ProfileToToml, RoundTripMinimal) { ExpectRoundTrip(ParseOk(kMinimal)); }

TEST(ProfileToToml, RoundTripEveryFieldSet) {
  JobProfile p;
  p.name = "Shot_010.v2";
  p.priority = 99;
  p.placement = Placement::kRemote;
  p.remote_site = "site \"b\"";
  p.frames = *FrameSet::Parse("-5--1,1-100x7,200,201,1000");
  p.chunk_size = 13;
  p.max_attempts = 7;
  p.package = "blender";
  p.package_version = *VersionConstraint::Parse(">=3.6, <4, !=3.6.2");
  p.scene = "scenes/shot 010.blend";
  p.width = 1920;
  p.height = 1080;
  p.output = "renders/shot_####_#.exr";
  p.args = {"--engine",  "CYCLES", "quote\"back\\slash",         "tab\tnew\nline",
            "ünïcødé ✓", "",       std::string("ctl\x01\x7f", 5)};
  p.requirements.cores = 16;
  p.requirements.memory_bytes = (int64_t{3} << 30) + 17;
  p.requirements.gpus = 2;
  p.files = {"tex/wood.png", "lib/a.py", "weird 'name'.txt"};
  p.notify = {{"https://hooks.example/x?a=1&b=2", ""},
              {"", "notify-send \"done\" && echo $JOB"},
              {"http://127.0.0.1:1/", "true"}};
  ExpectRoundTrip(p);
}

TEST(ParseJobDescription, ChunkSizeAuto) {
  JobProfile p = ParseOk(WithTop("chunk_size = \"auto\""));
  EXPECT_EQ(p.chunk_size, JobProfile::kAutoChunkSize);
  EXPECT_EQ(p.chunk_size, 0);
}

TEST(ProfileToToml, RoundTripAutoChunkSize) {
  JobProfile p = ParseOk(WithTop("chunk_size = \"auto\""));
  EXPECT_NE(ProfileToToml(p).find("chunk_size = \"auto\"\n"), std::string::npos);
  ExpectRoundTrip(p);
}

TEST(ProfileToToml, RoundTripAutoPlacementAndAnyVersion) {
  JobProfile p = ParseOk(WithTop("placement = \"auto\""));
  p.package_version = *VersionConstraint::Parse("*");
  ExpectRoundTrip(p);
  p.package_version = *VersionConstraint::Parse("3.4");
  ExpectRoundTrip(p);
}

// A command-template package may run jobs that write no files.
constexpr const char* kNoOutput = R"(name = "batch"
frames = "1-1000"

[package]
name = "true-cmd"

[render]
scene = "input.txt"
)";

TEST(ParseJobDescription, CommandPackageWithoutOutput) {
  JobProfile p = ParseOk(kNoOutput);
  EXPECT_EQ(p.package, "true-cmd");
  EXPECT_EQ(p.output, "");
  EXPECT_EQ(p.OutputName(7), "");
  EXPECT_EQ(p.AllFiles(), std::vector<std::string>{"input.txt"});
  EXPECT_FALSE(PackageNeedsOutput(p.package));
  EXPECT_TRUE(PackageNeedsOutput("povray"));
  EXPECT_TRUE(PackageNeedsOutput("blender"));
  // An output given to a command package is still checked.
  EXPECT_EQ(Error(std::string(kNoOutput) + "output = \"out.txt\"\n"),
            "clock.toml:9: render.output: must contain at least one '#' (replaced by the frame "
            "number), got 'out.txt'");
}

TEST(ProfileToToml, RoundTripWithoutOutput) {
  JobProfile p = ParseOk(kNoOutput);
  EXPECT_EQ(ProfileToToml(p).find("output"), std::string::npos);
  ExpectRoundTrip(p);
}

TEST(ProfileToToml, SerialisedFilesStayTopLevel) {
  const std::string text = ProfileToToml(ParseOk(kHeaderExample));
  EXPECT_LT(text.find("files = "), text.find("[package]"));
}

// ---- errors: syntax -------------------------------------------------------

TEST(ParseJobDescriptionError, TomlSyntaxGivesLineAndColumn) {
  const std::string e = Error("name = \"clock\"\nframes = \"1-24\nchunk_size = 2\n");
  EXPECT_TRUE(StartsWith(e, "clock.toml:2:"));
  EXPECT_TRUE(HasSubstr(e, "string"));
  EXPECT_TRUE(StartsWith(Error("name = \"a\"\nname = \"b\"\n"), "clock.toml:2:"));
  EXPECT_TRUE(StartsWith(Error("[render\n"), "clock.toml:1:"));
  EXPECT_TRUE(StartsWith(Error("a = [1,\n 2\nb = 3"), "clock.toml:3:1: "));
}

TEST(ParseJobDescriptionError, EmptyDocument) {
  EXPECT_EQ(Error(""), "clock.toml: name: is required");
}

// ---- errors: unknown keys -------------------------------------------------

TEST(ParseJobDescriptionError, UnknownTopLevelKey) {
  EXPECT_EQ(Error(WithTop("colour = \"red\"")), "clock.toml:1: colour: unknown key");
  EXPECT_EQ(Error(WithTop("[extra]\nx = 1")), "clock.toml:1: extra: unknown key");
}

TEST(ParseJobDescriptionError, UnknownKeyInEveryTable) {
  EXPECT_EQ(Error(WithTail("widht = 640\n")), "clock.toml:10: render.widht: unknown key");
  EXPECT_EQ(Error(R"(name = "n"
frames = "1"
[package]
name = "povray"
flavour = "x"
[render]
scene = "s.pov"
output = "o#.png"
)"),
            "clock.toml:5: package.flavour: unknown key");
  EXPECT_EQ(Error(WithTail("[requirements]\ncpus = 4\n")),
            "clock.toml:11: requirements.cpus: unknown key");
  EXPECT_EQ(Error(WithTail("[[notify]]\ncommand = \"x\"\n[[notify]]\nurl = \"http://x\"\n")),
            "clock.toml:13: notify[1].url: unknown key");
}

// ---- errors: types --------------------------------------------------------

TEST(ParseJobDescriptionError, WrongTypesNameKeyLineAndType) {
  EXPECT_EQ(Error(WithTop("priority = \"high\"")),
            "clock.toml:1: priority: expected an integer, got a string");
  EXPECT_EQ(Error(WithTop("chunk_size = 2.5")),
            "clock.toml:1: chunk_size: expected an integer or \"auto\", got a floating-point "
            "number");
  EXPECT_EQ(Error(WithTop("chunk_size = true")),
            "clock.toml:1: chunk_size: expected an integer or \"auto\", got a boolean");
  EXPECT_EQ(Error(WithTop("max_attempts = true")),
            "clock.toml:1: max_attempts: expected an integer, got a boolean");
  EXPECT_EQ(Error(WithTop("placement = 1")),
            "clock.toml:1: placement: expected a string, got an integer");
  EXPECT_EQ(Error(WithTop("remote_site = []")),
            "clock.toml:1: remote_site: expected a string, got an array");
  EXPECT_EQ(Error(R"(name = "n"
frames = "1"
package = "povray"
render = { scene = "s.pov", output = "o#.png" }
)"),
            "clock.toml:3: package: expected a table, got a string");
  EXPECT_EQ(Error(WithTop("files = \"a.inc\"")),
            "clock.toml:1: files: expected an array of strings, got a string");
  EXPECT_EQ(Error(WithTop("files = [\"a\", 2]")),
            "clock.toml:1: files[1]: expected a string, got an integer");
  EXPECT_EQ(Error(WithTop("notify = \"x\"")),
            "clock.toml:1: notify: expected an array of tables ([[notify]]), got a string");
  EXPECT_EQ(Error(WithTop("notify = [\"x\"]")),
            "clock.toml:1: notify[0]: expected a table, got a string");
  EXPECT_EQ(Error(WithTail("width = 640.0\n")),
            "clock.toml:10: render.width: expected an integer, got a floating-point number");
  EXPECT_EQ(Error(WithTail("height = \"480\"\n")),
            "clock.toml:10: render.height: expected an integer, got a string");
  EXPECT_EQ(Error(WithTail("args = \"+A0.3\"\n")),
            "clock.toml:10: render.args: expected an array of strings, got a string");
  EXPECT_EQ(Error(WithTail("args = [\n  \"+A\",\n  3,\n]\n")),
            "clock.toml:12: render.args[1]: expected a string, got an integer");
  EXPECT_EQ(Error(WithTail("[requirements]\nmemory = true\n")),
            "clock.toml:11: requirements.memory: expected a string such as \"512M\" or an "
            "integer number of bytes, got a boolean");
  EXPECT_EQ(Error(WithTail("[requirements]\ngpus = 1979-05-27\n")),
            "clock.toml:11: requirements.gpus: expected an integer, got a date");
}

TEST(ParseJobDescriptionError, NameTypeAndFramesType) {
  EXPECT_EQ(Error(R"(name = 5
frames = "1"
[package]
name = "povray"
[render]
scene = "s.pov"
output = "o#.png"
)"),
            "clock.toml:1: name: expected a string, got an integer");
  EXPECT_EQ(Error(R"(name = "n"
frames = 7
[package]
name = "povray"
[render]
scene = "s.pov"
output = "o#.png"
)"),
            "clock.toml:2: frames: expected a string, got an integer");
}

// ---- errors: values -------------------------------------------------------

std::string WithName(const std::string& name) {
  return "name = \"" + name + R"("
frames = "1"
[package]
name = "povray"
[render]
scene = "s.pov"
output = "o#.png"
)";
}

TEST(ParseJobDescriptionError, NamePattern) {
  EXPECT_EQ(Error(WithName("my job")),
            "clock.toml:1: name: must be 1 to 64 characters from A-Z a-z 0-9 . _ -, got 'my job'");
  EXPECT_TRUE(StartsWith(Error(WithName("")), "clock.toml:1: name: must be 1 to 64 characters"));
  EXPECT_TRUE(StartsWith(Error(WithName(std::string(65, 'a'))),
                         "clock.toml:1: name: must be 1 to 64 characters"));
  EXPECT_TRUE(HasSubstr(Error(WithName("a/b")), "got 'a/b'"));
  EXPECT_TRUE(HasSubstr(Error(WithName("tab\\there")), "got 'tab\\x09here'"));
}

TEST(ParseJobDescriptionError, Priority) {
  EXPECT_EQ(Error(WithTop("priority = 101")),
            "clock.toml:1: priority: must be between 0 and 100, got 101");
  EXPECT_EQ(Error(WithTop("priority = -1")),
            "clock.toml:1: priority: must be between 0 and 100, got -1");
}

TEST(ParseJobDescriptionError, Placement) {
  EXPECT_EQ(Error(WithTop("placement = \"cloud\"")),
            "clock.toml:1: placement: must be one of local, remote, auto, got 'cloud'");
  EXPECT_EQ(Error(WithTop("placement = \"Local\"")),
            "clock.toml:1: placement: must be one of local, remote, auto, got 'Local'");
}

TEST(ParseJobDescriptionError, RemoteSiteOnlyWithRemotePlacement) {
  EXPECT_EQ(Error(WithTop("remote_site = \"paris\"")),
            "clock.toml:1: remote_site: is only allowed with placement = \"remote\", placement "
            "is \"local\"");
  EXPECT_EQ(Error(WithTop("remote_site = \"paris\"\nplacement = \"auto\"")),
            "clock.toml:1: remote_site: is only allowed with placement = \"remote\", placement "
            "is \"auto\"");
  EXPECT_EQ(Error(WithTop("placement = \"remote\"\nremote_site = \"\"")),
            "clock.toml:2: remote_site: must not be empty");
}

TEST(ParseJobDescriptionError, Frames) {
  EXPECT_EQ(Error(WithFrames("\"1-10,x3\"")),
            "clock.toml:2: frames: frame set item 'x3': expected a frame number");
  EXPECT_EQ(Error(WithFrames("\"\"")), "clock.toml:2: frames: frame set is empty");
  EXPECT_EQ(Error(WithFrames("\"1-99999999\"")),
            "clock.toml:2: frames: frame set item '1-99999999': 99999999 frames, more than the "
            "limit of 10000000");
  EXPECT_EQ(Error(WithFrames("\"1-10x0\"")),
            "clock.toml:2: frames: frame set item '1-10x0': step must be >= 1, got 0");
}

TEST(ParseJobDescriptionError, ChunkSizeAndAttempts) {
  EXPECT_EQ(Error(WithTop("chunk_size = 0")),
            "clock.toml:1: chunk_size: must be between 1 and 100000, got 0");
  EXPECT_EQ(Error(WithTop("chunk_size = 100001")),
            "clock.toml:1: chunk_size: must be between 1 and 100000, got 100001");
  EXPECT_EQ(Error(WithTop("chunk_size = \"big\"")),
            "clock.toml:1: chunk_size: expected an integer or \"auto\", got 'big'");
  EXPECT_EQ(Error(WithTop("chunk_size = \"Auto\"")),
            "clock.toml:1: chunk_size: expected an integer or \"auto\", got 'Auto'");
  EXPECT_EQ(Error(WithTop("chunk_size = \"4\"")),
            "clock.toml:1: chunk_size: expected an integer or \"auto\", got '4'");
  EXPECT_EQ(Error(WithTop("max_attempts = 101")),
            "clock.toml:1: max_attempts: must be between 1 and 100 (or 0 for the site default), "
            "got 101");
  EXPECT_EQ(Error(WithTop("max_attempts = -1")),
            "clock.toml:1: max_attempts: must be between 1 and 100 (or 0 for the site default), "
            "got -1");
}

std::string WithPackage(const std::string& body) {
  return R"(name = "n"
frames = "1"
[package]
)" + body +
         R"(
[render]
scene = "s.pov"
output = "o#.png"
)";
}

TEST(ParseJobDescriptionError, Package) {
  EXPECT_EQ(Error(WithPackage("version = \">=3\"")), "clock.toml:3: package.name: is required");
  EXPECT_EQ(Error(WithPackage("name = \"pov ray\"")),
            "clock.toml:4: package.name: must be one or more characters from a-z 0-9 . _ -, got "
            "'pov ray'");
  EXPECT_TRUE(StartsWith(Error(WithPackage("name = \"\"")), "clock.toml:4: package.name: must"));
  EXPECT_EQ(Error(WithPackage("name = \"povray\"\nversion = \">=x\"")),
            "clock.toml:5: package.version: version constraint '>=x': clause '>=x': version "
            "'x': must start with a number");
  EXPECT_EQ(Error(WithPackage("name = \"povray\"\nversion = 3.7")),
            "clock.toml:5: package.version: expected a string, got a floating-point number");
}

TEST(ParseJobDescriptionError, RenderRanges) {
  EXPECT_EQ(Error(WithTail("width = 0\n")),
            "clock.toml:10: render.width: must be between 1 and 65536, got 0");
  EXPECT_EQ(Error(WithTail("height = 65537\n")),
            "clock.toml:10: render.height: must be between 1 and 65536, got 65537");
}

std::string WithRender(const std::string& body) {
  return R"(name = "n"
frames = "1"
[package]
name = "povray"
[render]
)" + body +
         "\n";
}

TEST(ParseJobDescriptionError, RenderRequiredKeys) {
  EXPECT_EQ(Error(WithRender("output = \"o#.png\"")), "clock.toml:5: render.scene: is required");
  EXPECT_EQ(Error(WithRender("scene = \"s.pov\"")),
            "clock.toml:5: render.output: is required for package 'povray' (it renders image "
            "frames); only command-template packages may omit it");
}

TEST(ParseJobDescriptionError, BuiltInRenderersNeedAnOutput) {
  EXPECT_EQ(Error(R"(name = "n"
frames = "1"
[package]
name = "Blender"
[render]
scene = "s.blend"
)"),
            "clock.toml:5: render.output: is required for package 'blender' (it renders image "
            "frames); only command-template packages may omit it");
  // Without a [render] table the scene is reported first.
  EXPECT_EQ(Error("name = \"n\"\nframes = \"1\"\n[package]\nname = \"povray\"\n"),
            "clock.toml: render.scene: is required");
  // A bad output is reported as bad, not as missing.
  EXPECT_EQ(Error(WithRender("scene = \"s.pov\"\noutput = 7")),
            "clock.toml:7: render.output: expected a string, got an integer");
}

TEST(ParseJobDescriptionError, OutputNeedsHash) {
  EXPECT_EQ(Error(WithRender("scene = \"s.pov\"\noutput = \"out.png\"")),
            "clock.toml:7: render.output: must contain at least one '#' (replaced by the frame "
            "number), got 'out.png'");
}

TEST(ParseJobDescriptionError, PathEscapes) {
  EXPECT_EQ(Error(WithRender("scene = \"../x\"\noutput = \"o#.png\"")),
            "clock.toml:6: render.scene: path '../x' contains '..'; job paths may not leave the "
            "job directory");
  EXPECT_EQ(Error(WithRender("scene = \"/abs/s.pov\"\noutput = \"o#.png\"")),
            "clock.toml:6: render.scene: path '/abs/s.pov' is absolute; job paths are relative "
            "to the job directory");
  EXPECT_EQ(Error(WithRender("scene = \"s.pov\"\noutput = \"a/../../b#.png\"")),
            "clock.toml:7: render.output: path 'a/../../b#.png' contains '..'; job paths may not "
            "leave the job directory");
  EXPECT_EQ(Error(WithRender("scene = \"\"\noutput = \"o#.png\"")),
            "clock.toml:6: render.scene: path is empty");
  EXPECT_EQ(Error(WithTop("files = [\"ok.inc\", \"../x\"]")),
            "clock.toml:1: files[1]: path '../x' contains '..'; job paths may not leave the job "
            "directory");
  EXPECT_EQ(Error(WithTop("files = [\n  \"/etc/passwd\",\n]")),
            "clock.toml:2: files[0]: path '/etc/passwd' is absolute; job paths are relative to "
            "the job directory");
  EXPECT_EQ(Error(WithTop("files = [\"a/../../b\"]")),
            "clock.toml:1: files[0]: path 'a/../../b' contains '..'; job paths may not leave the "
            "job directory");
  EXPECT_EQ(Error(WithTop("files = [\"./\"]")), "clock.toml:1: files[0]: path './' names no file");
  EXPECT_EQ(Error(WithTop("files = [\"a\\u0000b\"]")),
            "clock.toml:1: files[0]: path 'a\\x00b' contains a NUL byte");
}

TEST(ParseJobDescriptionError, FilesGivenTwice) {
  EXPECT_EQ(Error(WithTop("files = [\"a\"]") + "[requirements]\nfiles = [\"b\"]\n"),
            "clock.toml:12: requirements.files: associated files are already given at line 1; "
            "list them once");
}

TEST(ParseJobDescriptionError, Requirements) {
  EXPECT_EQ(Error(WithTail("[requirements]\ncores = 0\n")),
            "clock.toml:11: requirements.cores: must be between 1 and 4096, got 0");
  EXPECT_EQ(Error(WithTail("[requirements]\ncores = 4097\n")),
            "clock.toml:11: requirements.cores: must be between 1 and 4096, got 4097");
  EXPECT_EQ(Error(WithTail("[requirements]\ngpus = 65\n")),
            "clock.toml:11: requirements.gpus: must be between 0 and 64, got 65");
  EXPECT_EQ(Error(WithTail("[requirements]\ngpus = -1\n")),
            "clock.toml:11: requirements.gpus: must be between 0 and 64, got -1");
  EXPECT_EQ(Error(WithTail("[requirements]\nmemory = \"12Q\"\n")),
            "clock.toml:11: requirements.memory: byte size '12Q': unknown suffix 'Q' (use K, M, "
            "G or T, powers of 1024)");
  EXPECT_EQ(Error(WithTail("[requirements]\nmemory = -5\n")),
            "clock.toml:11: requirements.memory: must be >= 0 bytes, got -5");
  EXPECT_EQ(Error(WithTail("[requirements]\nmemory = \"\"\n")),
            "clock.toml:11: requirements.memory: byte size is empty");
}

TEST(ParseJobDescriptionError, Notify) {
  EXPECT_EQ(Error(WithTail("[[notify]]\nwebhook = \"ftp://x/y\"\n")),
            "clock.toml:11: notify[0].webhook: must be an http:// or https:// URL without "
            "spaces, got 'ftp://x/y'");
  EXPECT_TRUE(StartsWith(Error(WithTail("[[notify]]\nwebhook = \"http://\"\n")),
                         "clock.toml:11: notify[0].webhook: must be an http://"));
  EXPECT_TRUE(StartsWith(Error(WithTail("[[notify]]\nwebhook = \"http://a b\"\n")),
                         "clock.toml:11: notify[0].webhook: must be an http://"));
  EXPECT_EQ(Error(WithTail("[[notify]]\ncommand = \"  \"\n")),
            "clock.toml:11: notify[0].command: must not be empty");
  EXPECT_EQ(Error(WithTail("[[notify]]\ncommand = \"a\"\n\n[[notify]]\n")),
            "clock.toml:13: notify[1]: needs a webhook or a command");
  EXPECT_EQ(Error(WithTail("[[notify]]\ncommand = 1\n")),
            "clock.toml:11: notify[0].command: expected a string, got an integer");
}

TEST(ParseJobDescriptionError, MissingRequired) {
  EXPECT_EQ(Error(R"(frames = "1"
[package]
name = "povray"
[render]
scene = "s.pov"
output = "o#.png"
)"),
            "clock.toml: name: is required");
  EXPECT_EQ(Error(R"(name = "n"
[package]
name = "povray"
[render]
scene = "s.pov"
output = "o#.png"
)"),
            "clock.toml: frames: is required");
  EXPECT_EQ(Error(R"(name = "n"
frames = "1"
[render]
scene = "s.pov"
output = "o#.png"
)"),
            "clock.toml: package.name: is required");
  EXPECT_EQ(Error(R"(name = "n"
frames = "1"
[package]
name = "povray"
)"),
            "clock.toml: render.scene: is required");
}

TEST(ParseJobDescriptionError, EarliestErrorIsReported) {
  // Keys are visited in name order, but the message names the first line.
  EXPECT_EQ(Error(WithTop("priority = 500\nchunk_size = 0\nzzz = 1")),
            "clock.toml:1: priority: must be between 0 and 100, got 500");
  EXPECT_EQ(Error(WithTop("zzz = 1\npriority = 500")), "clock.toml:1: zzz: unknown key");
  // A located error wins over a missing key.
  EXPECT_EQ(Error("priority = 500\n"),
            "clock.toml:1: priority: must be between 0 and 100, got 500");
}

TEST(ParseJobDescriptionError, MisspeltKeyIsReportedAsUnknownNotMissing) {
  EXPECT_EQ(Error(WithPackage("nmae = \"povray\"")), "clock.toml:4: package.nmae: unknown key");
  EXPECT_EQ(Error(WithRender("scene = \"s.pov\"\noutptu = \"o#.png\"")),
            "clock.toml:7: render.outptu: unknown key");
  EXPECT_EQ(Error("nmae = \"n\"\nframes = \"1\"\n[package]\nname = \"p\"\n[render]\nscene = "
                  "\"s\"\noutput = \"#\"\n"),
            "clock.toml:1: nmae: unknown key");
}

TEST(ParseJobDescriptionError, SourceNameIsUsed) {
  auto r = ParseJobDescription(WithTop("priority = 101"), "jobs/a.toml");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(StartsWith(r.status().message(), "jobs/a.toml:1: priority:"));
}

// ---- helpers --------------------------------------------------------------

TEST(NormaliseJobPath, Normalises) {
  EXPECT_EQ(*NormaliseJobPath("a/b/c", "f"), "a/b/c");
  EXPECT_EQ(*NormaliseJobPath("a//b/./c", "f"), "a/b/c");
  EXPECT_EQ(*NormaliseJobPath("./a", "f"), "a");
  EXPECT_EQ(*NormaliseJobPath("a/b/", "f"), "a/b");
  EXPECT_EQ(*NormaliseJobPath("a/.../b", "f"), "a/.../b") << "'...' is an ordinary name";
  EXPECT_EQ(*NormaliseJobPath("..a/b..", "f"), "..a/b..");
  EXPECT_EQ(*NormaliseJobPath("with space/ü.png", "f"), "with space/ü.png");
}

TEST(NormaliseJobPath, Rejects) {
  auto err = [](std::string_view p) {
    auto r = NormaliseJobPath(p, "render.scene");
    EXPECT_FALSE(r.ok()) << p;
    return r.ok() ? "" : r.status().message();
  };
  EXPECT_EQ(err(""), "render.scene: path is empty");
  EXPECT_EQ(err("/abs"),
            "render.scene: path '/abs' is absolute; job paths are relative to the job directory");
  EXPECT_EQ(err("//abs"),
            "render.scene: path '//abs' is absolute; job paths are relative to the "
            "job directory");
  EXPECT_TRUE(HasSubstr(err(".."), "contains '..'"));
  EXPECT_TRUE(HasSubstr(err("../x"), "contains '..'"));
  EXPECT_TRUE(HasSubstr(err("a/../../b"), "contains '..'"));
  EXPECT_TRUE(HasSubstr(err("a/../b"), "contains '..'")) << "'..' is refused even inside";
  EXPECT_TRUE(HasSubstr(err("a/.."), "contains '..'"));
  EXPECT_EQ(err("."), "render.scene: path '.' names no file");
  EXPECT_EQ(err("././/"), "render.scene: path '././/' names no file");
  EXPECT_EQ(err(std::string_view("a\0b", 3)), "render.scene: path 'a\\x00b' contains a NUL byte");
}

TEST(ParseByteSize, Values) {
  EXPECT_EQ(*ParseByteSize("0"), 0);
  EXPECT_EQ(*ParseByteSize("1024"), 1024);
  EXPECT_EQ(*ParseByteSize("1K"), 1024);
  EXPECT_EQ(*ParseByteSize("1k"), 1024);
  EXPECT_EQ(*ParseByteSize("512M"), 536870912);
  EXPECT_EQ(*ParseByteSize("2G"), 2147483648);
  EXPECT_EQ(*ParseByteSize("3T"), int64_t{3} << 40);
  EXPECT_EQ(*ParseByteSize(" 8g "), int64_t{8} << 30);
  EXPECT_EQ(*ParseByteSize("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(*ParseByteSize("8388607T"), int64_t{8388607} << 40);
}

TEST(ParseByteSize, Errors) {
  EXPECT_EQ(ParseByteSize("").status().message(), "byte size is empty");
  EXPECT_EQ(ParseByteSize("M").status().message(),
            "byte size 'M': expected a whole number of bytes, optionally followed by K, M, G or T");
  EXPECT_EQ(ParseByteSize("-1").status().message(),
            "byte size '-1': expected a whole number of bytes, optionally followed by K, M, G or "
            "T");
  EXPECT_EQ(ParseByteSize("1.5G").status().message(),
            "byte size '1.5G': unknown suffix '.5G' (use K, M, G or T, powers of 1024)");
  EXPECT_EQ(ParseByteSize("512MB").status().message(),
            "byte size '512MB': unknown suffix 'MB' (use K, M, G or T, powers of 1024)");
  EXPECT_EQ(ParseByteSize("512 M").status().message(),
            "byte size '512 M': unknown suffix ' M' (use K, M, G or T, powers of 1024)");
  EXPECT_EQ(ParseByteSize("9223372036854775808").status().message(),
            "byte size '9223372036854775808': too large");
  EXPECT_EQ(ParseByteSize("8388608T").status().message(), "byte size '8388608T': too large");
}

TEST(Rfc3339, ParsesAndFormats) {
  EXPECT_EQ(*ParseRfc3339("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(*ParseRfc3339("2026-11-21T18:00:00Z"), 1'795'284'000'000);
  EXPECT_EQ(*ParseRfc3339("2026-11-21T19:00:00+01:00"), 1'795'284'000'000);
  EXPECT_EQ(*ParseRfc3339("2026-11-21 17:30:00.25-00:30"), 1'795'284'000'250);
  EXPECT_EQ(*ParseRfc3339("2024-02-29t00:00:00.1239z"), 1'709'164'800'123);
  EXPECT_EQ(FormatRfc3339(1'795'284'000'000), "2026-11-21T18:00:00Z");
  EXPECT_EQ(FormatRfc3339(1'795'284'000'250), "2026-11-21T18:00:00.250Z");
  // Before 1970, and the ends of four-digit years: printed so they parse back.
  for (const char* t : {"1969-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z", "0999-03-01T12:00:00Z",
                        "9999-12-31T23:59:59.999Z"}) {
    auto ms = ParseRfc3339(t);
    ASSERT_TRUE(ms.ok()) << t << ": " << ms.status().message();
    EXPECT_EQ(FormatRfc3339(*ms), t);
  }
}

TEST(Rfc3339, RejectsWhatIsNotADateTime) {
  // Found by tests/fuzz/job_description_fuzz: signs and spaces in fields,
  // days a month does not have, and offsets past 23:59 used to be accepted.
  for (const char* t : {"2026-11-21T-1:00:00Z", "2026-11-21T18:-5:00Z", "2026-11-21T18:00: 1Z",
                        "-999-11-21T18:00:00Z", "+2026-11-21T18:00:00Z", "2026-02-29T00:00:00Z",
                        "2026-04-31T00:00:00Z", "2026-11-21T18:00:00+24:00",
                        "2026-11-21T18:00:00+01:60", "2026-11-21T18:00:00", "2026-11-21T18:00Z",
                        "2026-11-21T18:00:00.Z", "2026-11-21T18:00:00Z ", "2026-13-01T00:00:00Z"}) {
    EXPECT_FALSE(ParseRfc3339(t).ok()) << t;
  }
}

TEST(ParseJobDescription, DeadlineSurvivesTheDatabase) {
  // Found by tests/fuzz/job_description_fuzz: a deadline with milliseconds,
  // or a TOML date-time less than an hour west of UTC, changed when the
  // stored profile was read back.
  JobProfile p = ParseOk(WithTop(R"(deadline = "2026-11-21T18:00:00.250Z")"));
  EXPECT_EQ(p.deadline_ms, 1'795'284'000'250);
  ExpectRoundTrip(p);
  p = ParseOk(WithTop("deadline = 2026-11-21T17:30:00-00:30"));
  EXPECT_EQ(p.deadline_ms, 1'795'284'000'000);
  ExpectRoundTrip(p);
  p = ParseOk(WithTop("deadline = 2026-11-21T18:00:00.5+00:00"));
  EXPECT_EQ(p.deadline_ms, 1'795'284'000'500);
  ExpectRoundTrip(p);
}

TEST(ParseJobDescriptionError, DeadlineOutsideItsRange) {
  // 0 means "no deadline", and a deadline past year 9999 (UTC) could not be
  // stored and read back.
  for (const char* d : {R"("1970-01-01T00:00:00Z")", R"("1969-07-20T20:17:00Z")",
                        "9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00Z"}) {
    auto r = Parse(WithTop(std::string("deadline = ") + d));
    ASSERT_FALSE(r.ok()) << d;
    EXPECT_TRUE(HasSubstr(r.status().message(), "deadline: must be after 1970-01-01T00:00:00Z"))
        << r.status().message();
  }
  auto r = Parse(WithTop(R"(deadline = "2026-02-30T00:00:00Z")"));
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(
      HasSubstr(r.status().message(), "deadline: '2026-02-30T00:00:00Z' is not an RFC 3339"))
      << r.status().message();
}

TEST(JobProfile, OutputName) {
  JobProfile p;
  p.output = "f_####.png";
  EXPECT_EQ(p.OutputName(7), "f_0007.png");
  EXPECT_EQ(p.OutputName(0), "f_0000.png");
  EXPECT_EQ(p.OutputName(1234), "f_1234.png");
  EXPECT_EQ(p.OutputName(123456), "f_123456.png") << "longer numbers are written in full";
  EXPECT_EQ(p.OutputName(-7), "f_-0007.png");
  EXPECT_EQ(p.OutputName(-12345), "f_-12345.png");
  p.output = "dir_##/img.#.exr";
  EXPECT_EQ(p.OutputName(5), "dir_05/img.5.exr") << "every run is replaced";
  p.output = "#";
  EXPECT_EQ(p.OutputName(42), "42");
  EXPECT_EQ(p.OutputName(INT64_MIN), "-9223372036854775808");
}

TEST(JobProfile, AllFiles) {
  JobProfile p;
  p.scene = "clock.pov";
  p.files = {"clock.inc", "clock.pov", "tex/wood.png"};
  EXPECT_EQ(p.AllFiles(), std::vector<std::string>({"clock.pov", "clock.inc", "tex/wood.png"}));
  p.files.clear();
  EXPECT_EQ(p.AllFiles(), std::vector<std::string>({"clock.pov"}));
  EXPECT_EQ(ParseOk(kHeaderExample).AllFiles(),
            std::vector<std::string>({"clock.pov", "clock.inc", "tex/wood.png"}));
}

TEST(Placement, Names) {
  EXPECT_STREQ(PlacementName(Placement::kLocal), "local");
  EXPECT_STREQ(PlacementName(Placement::kRemote), "remote");
  EXPECT_STREQ(PlacementName(Placement::kAuto), "auto");
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

constexpr const char* kCentral = R"(name = "shot"
frames = "1-4"
files = ["assets/wood.png", "assets/inc/parts.inc", "lib/x.inc"]

[package]
name = "povray"

[render]
scene = "shot.pov"
output = "/studio/renders/shot/shot_####.png"

[[central]]
path = "/studio/assets/shot"
source = "assets"

[[central]]
path = "/studio/lib/"
source = "./lib"
)";

TEST(ParseJobDescription, CentralPathsAndAbsoluteOutput) {
  JobProfile p = ParseOk(kCentral);
  ASSERT_EQ(p.central.size(), 2u);
  EXPECT_EQ(p.central[0].path, "/studio/assets/shot");
  EXPECT_EQ(p.central[0].source, "assets");
  EXPECT_EQ(p.central[1].path, "/studio/lib");  // normalised
  EXPECT_EQ(p.central[1].source, "lib");
  EXPECT_TRUE(p.OutputIsCentral());
  EXPECT_TRUE(p.NeedsWrapper());
  EXPECT_EQ(p.OutputCentralDir(), "/studio/renders/shot");
  EXPECT_EQ(p.OutputPattern(), "shot_####.png");
  EXPECT_EQ(p.OutputName(7), "shot_0007.png");
  ExpectRoundTrip(p);
  JobProfile plain = ParseOk(kMinimal);
  EXPECT_FALSE(plain.NeedsWrapper());
  EXPECT_EQ(plain.OutputPattern(), "clock_####.png");
  // The whole job directory may stand for a central path.
  JobProfile whole = ParseOk(WithTail("\n[[central]]\npath = \"/studio/x\"\nsource = \".\"\n"));
  ASSERT_EQ(whole.central.size(), 1u);
  EXPECT_EQ(whole.central[0].source, ".");
}

TEST(ParseJobDescription, CentralPathErrorsNameTheField) {
  auto tail = [](const std::string& t) { return WithTail(t); };
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"studio/x\"\nsource = \".\"\n"))
                .find("central[0].path: central path 'studio/x' must be absolute"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/etc/x\"\nsource = \".\"\n")).find("is under /etc"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio/../etc\"\nsource = \".\"\n"))
                .find("central[0].path"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio\"\nsource = \".\"\n"))
                .find("at least two components"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio/x\"\nsource = \"../up\"\n"))
                .find("central[0].source"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio/x\"\nsource = \"nothing\"\n"))
                .find("central[0].source: no file of the job is under 'nothing'"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio/x\"\n")).find("central[0].source"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio/x\"\nsource = \".\"\nmode = \"rw\"\n"))
                .find("central[0].mode: unknown key"),
            std::string::npos);
  EXPECT_NE(Error(tail("\n[[central]]\npath = \"/studio/x\"\nsource = \".\"\n[[central]]\npath = "
                       "\"/studio/x/y\"\nsource = \".\"\n"))
                .find("central[1].path: '/studio/x/y' overlaps central[0].path"),
            std::string::npos);
  std::string text = kCentral;
  text.replace(text.find("/studio/renders/shot/shot_####.png"), 34,
               "/studio/assets/shot/o_####.png");
  EXPECT_NE(Error(text).find("overlaps the output directory '/studio/assets/shot'"),
            std::string::npos);
  text = kCentral;
  text.replace(text.find("/studio/renders/shot/shot_####.png"), 34, "/studio/r_####/shot_#.png");
  EXPECT_NE(
      Error(text).find("render.output: an absolute output must be a file in a central directory"),
      std::string::npos);
  text = kCentral;
  text.replace(text.find("/studio/renders/shot/shot_####.png"), 34, "/proc/self/x_##.png");
  EXPECT_NE(Error(text).find("render.output: central path '/proc/self/x_##.png' is under /proc"),
            std::string::npos);
}

// A huge bad value is quoted cut short, with its length: the error stays
// one readable line instead of echoing megabytes.
TEST(ParseJobDescription, LongBadValuesAreQuotedCutShort) {
  const std::string huge(1'000'000, 'q');
  const std::string e = Error(WithTop("placement = \"" + huge + "\""));
  EXPECT_NE(e.find("clock.toml:1: placement: must be one of local, remote, auto, got '" +
                   std::string(80, 'q') + "… (1000000 characters)'"),
            std::string::npos)
      << e.substr(0, 300);
  EXPECT_LT(e.size(), 300u);
  // Short values are quoted whole; control characters escaped.
  EXPECT_NE(Error(WithTop("placement = \"a\\tb\"")).find("got 'a\\x09b'"), std::string::npos);
  EXPECT_NE(Error(WithTop("placement = \"" + std::string(80, 'r') + "\""))
                .find("got '" + std::string(80, 'r') + "'"),
            std::string::npos);
}

// [render] animation: the animation's whole range, a property of the
// scene, so a subset of its frames maps to the same clock as the full job.
TEST(ParseJobDescription, AnimationRangeIsTheScenesNotTheJobs) {
  JobProfile p = ParseOk(WithFrames("\"2-4,17\"") + "animation = \"1-24\"\n");
  EXPECT_EQ(p.AnimationFirst(), 1);
  EXPECT_EQ(p.AnimationLast(), 24);
  ExpectRoundTrip(p);
  JobProfile unset = ParseOk(WithFrames("\"2-4,17\""));
  EXPECT_EQ(unset.AnimationFirst(), 2);
  EXPECT_EQ(unset.AnimationLast(), 17);
  ExpectRoundTrip(unset);
  EXPECT_NE(Error(WithTail("animation = \"1-5\"\n"))
                .find("clock.toml:10: render.animation: the job's frames 1..24 are not all inside "
                      "the animation 1-5"),
            std::string::npos);
  EXPECT_NE(Error(WithTail("animation = \"1,3\"\n")).find("render.animation: must be one range"),
            std::string::npos);
}

// width and height are applied only when the description sets them.
TEST(ParseJobDescription, SizeIsOnlySetWhenTheDescriptionSetsIt) {
  JobProfile p = ParseOk(kMinimal);
  EXPECT_EQ(ProfileToToml(p).find("width"), std::string::npos);
  JobProfile sized = ParseOk(WithTail("width = 64\nheight = 48\n"));
  EXPECT_EQ(sized.width, 64);
  EXPECT_EQ(sized.height, 48);
  ExpectRoundTrip(sized);
}

}  // namespace
}  // namespace ff
