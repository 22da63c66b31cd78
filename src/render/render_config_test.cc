#include "render/render_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

class RenderConfigTest : public TempDirFixture {
 protected:
  void SetUp() override {
    TempDirFixture::SetUp();
    path_ = JoinPath(dir_, "host.toml");
  }

  Result<RenderServerConfig> Load(const std::string& text) {
    Status st = WriteFileAtomic(path_, text);
    if (!st.ok()) return st;
    return LoadRenderServerConfig(path_);
  }
  // The error message of loading `text`; fails the test if it loads.
  std::string Error(const std::string& text) {
    auto cfg = Load(text);
    EXPECT_FALSE(cfg.ok()) << text;
    if (cfg.ok()) return "";
    EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument) << cfg.status().ToString();
    return cfg.status().message();
  }

  std::string path_;
};

// The example from render_config.h, verbatim apart from the comments.
constexpr const char* kHeaderExample = R"(name = "rs1"
root = "/srv/frameflow/rs1"
schedule_server = "127.0.0.1:7450"
heartbeat_interval = "1s"
probe = ["povray", "blender"]

[[slots]]
name = "0"
cores = 1
memory = "2G"
gpus = 0
count = 2

[[packages]]
name = "ffmpeg-still"
version = "5.1"
command = "mytool --frame {frame} --out {output} {scene}"
)";

TEST_F(RenderConfigTest, HeaderExample) {
  auto cfg = Load(kHeaderExample);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->name, "rs1");
  EXPECT_EQ(cfg->root, "/srv/frameflow/rs1");
  EXPECT_EQ(cfg->cache_dir(), "/srv/frameflow/rs1/cache");
  EXPECT_EQ(cfg->work_dir(), "/srv/frameflow/rs1/work");
  EXPECT_EQ(cfg->schedule_server, "127.0.0.1:7450");
  EXPECT_EQ(cfg->schedule_server_file, "");
  EXPECT_EQ(cfg->heartbeat_interval_ms, 1000);
  EXPECT_EQ(cfg->probe, (std::vector<std::string>{"povray", "blender"}));
  // count = 2 expands to "<name>-0" and "<name>-1".
  ASSERT_EQ(cfg->slots.size(), 2u);
  EXPECT_EQ(cfg->slots[0].name, "0-0");
  EXPECT_EQ(cfg->slots[1].name, "0-1");
  for (const auto& s : cfg->slots) {
    EXPECT_EQ(s.cores, 1);
    EXPECT_EQ(s.memory_bytes, 2LL << 30);
    EXPECT_EQ(s.gpus, 0);
  }
  ASSERT_EQ(cfg->packages.size(), 1u);
  EXPECT_EQ(cfg->packages[0].name, "ffmpeg-still");
  EXPECT_EQ(cfg->packages[0].version, "5.1");
  EXPECT_EQ(cfg->packages[0].command, "mytool --frame {frame} --out {output} {scene}");
}

TEST_F(RenderConfigTest, Defaults) {
  auto cfg = Load("root = \"/r\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  char host[256] = {0};
  ASSERT_EQ(::gethostname(host, sizeof(host) - 1), 0);
  EXPECT_EQ(cfg->name, host);
  EXPECT_EQ(cfg->heartbeat_interval_ms, 1000);
  EXPECT_EQ(cfg->probe, (std::vector<std::string>{"povray", "blender"}));
  EXPECT_TRUE(cfg->slots.empty());
  EXPECT_TRUE(cfg->packages.empty());
  EXPECT_EQ(cfg->schedule_server, "");
}

TEST_F(RenderConfigTest, SlotsCountExpansionAndDefaultNames) {
  auto cfg = Load(R"(root = "/r"
schedule_server_file = "/r/addr"
probe = []
[[slots]]
cores = 2
[[slots]]
name = "gpu"
cores = 4
gpus = 1
count = 3
[[slots]]
memory = 1048576
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->schedule_server_file, "/r/addr");
  EXPECT_TRUE(cfg->probe.empty());
  std::vector<std::string> names;
  for (const auto& s : cfg->slots) names.push_back(s.name);
  EXPECT_EQ(names, (std::vector<std::string>{"s0", "gpu-0", "gpu-1", "gpu-2", "s4"}));
  EXPECT_EQ(cfg->slots[0].cores, 2);
  EXPECT_EQ(cfg->slots[0].gpus, 0);
  EXPECT_EQ(cfg->slots[2].cores, 4);
  EXPECT_EQ(cfg->slots[2].gpus, 1);
  EXPECT_EQ(cfg->slots[4].cores, 1);
  EXPECT_EQ(cfg->slots[4].memory_bytes, 1048576);
}

TEST_F(RenderConfigTest, DuplicateSlotNamesAreRefused) {
  // Slots are addressed by name; a second slot of the same name never works.
  std::string e = Error("root = \"/r\"\n[[slots]]\nname = \"a\"\n[[slots]]\nname = \"a\"\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml"));
  EXPECT_TRUE(HasSubstr(e, "'a'"));
  e = Error("root = \"/r\"\n[[slots]]\nname = \"a\"\ncount = 2\n[[slots]]\nname = \"a-1\"\n");
  EXPECT_TRUE(HasSubstr(e, "'a-1'"));
}

TEST_F(RenderConfigTest, SlotErrors) {
  std::string e = Error("root = \"/r\"\n[[slots]]\ncores = 0\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:3: slots[0].cores: must be between 1 and 4096"));
  e = Error("root = \"/r\"\n[[slots]]\ncores = 1\n[[slots]]\ngpus = \"one\"\n");
  EXPECT_TRUE(HasSubstr(e, ":5: slots[1].gpus: must be an integer"));
  e = Error("root = \"/r\"\n[[slots]]\ncount = 0\n");
  EXPECT_TRUE(HasSubstr(e, "slots[0].count"));
  e = Error("root = \"/r\"\n[[slots]]\nmemory = \"lots\"\n");
  EXPECT_TRUE(HasSubstr(e, "slots[0].memory"));
  e = Error("root = \"/r\"\n[[slots]]\ncores = 1\ncore = 2\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:4: slots[0].core: unknown key"));
  e = Error("root = \"/r\"\nslots = 3\n");
  EXPECT_TRUE(HasSubstr(e, "slots: must be an array of tables"));
}

TEST_F(RenderConfigTest, Packages) {
  auto cfg = Load(R"(root = "/r"
[[packages]]
name = "a"
command = "toola '{scene}' {output}"
[[packages]]
name = "b"
version = "2.0"
command = "toolb {first} {last}"
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_EQ(cfg->packages.size(), 2u);
  EXPECT_EQ(cfg->packages[0].name, "a");
  EXPECT_EQ(cfg->packages[0].version, "0");
  EXPECT_EQ(cfg->packages[0].command, "toola '{scene}' {output}");
  EXPECT_EQ(cfg->packages[1].version, "2.0");
}

TEST_F(RenderConfigTest, PackageErrors) {
  std::string e = Error("root = \"/r\"\n[[packages]]\nname = \"x\"\n");
  EXPECT_TRUE(HasSubstr(e, "packages.command: is required for package 'x'"));
  EXPECT_TRUE(HasSubstr(e, "host.toml"));
  e = Error("root = \"/r\"\n[[packages]]\ncommand = \"t\"\n");
  EXPECT_TRUE(HasSubstr(e, "packages.name: is required"));
  e = Error("root = \"/r\"\n[[packages]]\nname = \"x\"\ncommand = \"t '{frame}\"\n");
  EXPECT_TRUE(HasSubstr(e, "packages[0].command of 'x'"));
  EXPECT_TRUE(HasSubstr(e, "unterminated quote"));
  e = Error("root = \"/r\"\n[[packages]]\nname = \"x\"\ncommand = \"  \"\n");
  EXPECT_TRUE(HasSubstr(e, "empty"));
  e = Error("root = \"/r\"\n[[packages]]\nname = \"x\"\ncommand = \"t\"\nkind = \"povray\"\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:5: packages[0].kind: unknown key"));
}

TEST_F(RenderConfigTest, UnknownCommandTokenIsRefusedAtLoad) {
  std::string e = Error(
      "root = \"/r\"\n[[packages]]\nname = \"ok\"\ncommand = \"t {frame}\"\n"
      "[[packages]]\nname = \"x\"\ncommand = \"/bin/cp {scene} {outptu}\"\n");
  EXPECT_EQ(e, path_ +
                   ": packages[1].command of 'x': unknown token '{outptu}' (known: {frame} "
                   "{first} {last} {output} {outdir} {scene} {width} {height} {threads} {job} "
                   "{chunk})");
  // Every token the command adapter replaces, and braces that are not
  // tokens (the shell's ${VAR} and {1..3}, a lone brace), load.
  auto cfg = Load(
      "root = \"/r\"\n[[packages]]\nname = \"all\"\ncommand = \"t {frame} {first} {last} "
      "{output} {outdir} {scene} {width} {height} {threads} {job} {chunk} x{frame}.png\"\n"
      "[[packages]]\nname = \"sh\"\ncommand = \"/bin/sh -c 'echo ${HOME} {1..3} { } {' "
      "{frame}\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->packages.size(), 2u);
}

TEST_F(RenderConfigTest, BadNamesAreRefusedNamingFieldAndFile) {
  std::string e = Error("root = \"/r\"\nname = \"a/b\"\n");
  EXPECT_EQ(e, path_ + ":2: name: 'a/b' must not contain '/'");
  e = Error("name = \"\"\nroot = \"/r\"\n");
  EXPECT_EQ(e, path_ + ":1: name: '' must not be empty");
  e = Error("name = \"a\\tb\"\nroot = \"/r\"\n");
  EXPECT_EQ(e, path_ + ":1: name: 'a\\x09b' must be printable ASCII (no control characters)");
  e = Error("name = \"" + std::string(65, 'n') + "\"\nroot = \"/r\"\n");
  EXPECT_TRUE(HasSubstr(e, path_ + ":1: name: '")) << e;
  EXPECT_TRUE(HasSubstr(e, "must be at most 64 characters")) << e;
  e = Error("root = \"/r\"\n[[slots]]\nname = \"s/1\"\n");
  EXPECT_EQ(e, path_ + ":3: slots[0].name: 's/1' must not contain '/'");
  e = Error("root = \"/r\"\n[[slots]]\ncores = 1\n[[slots]]\nname = \"\"\n");
  EXPECT_EQ(e, path_ + ":5: slots[1].name: '' must not be empty");
  e = Error("root = \"/r\"\n[[slots]]\nname = \"" + std::string(60, 's') + "\"\ncount = 2\n");
  EXPECT_TRUE(HasSubstr(e, "slots[0].name:")) << e;
  EXPECT_TRUE(HasSubstr(e, "at most 58 characters")) << e;
  auto cfg = Load("name = \"" + std::string(64, 'n') + "\"\nroot = \"/r\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_TRUE(CheckRenderServerName("rs-1.local").ok());
  EXPECT_TRUE(HasSubstr(CheckRenderServerName("a\nb").message(), "printable ASCII"));
}

TEST_F(RenderConfigTest, TopLevelErrors) {
  std::string e = Error("root = \"/r\"\n\nheartbeat = \"1s\"\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:3: heartbeat: unknown key"));
  e = Error("name = \"rs\"\n");
  EXPECT_TRUE(HasSubstr(e, "root: is required"));
  e = Error("root = \"/r\"\nheartbeat_interval = \"1 s\"\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:2: heartbeat_interval:"));
  e = Error("root = \"/r\"\nprobe = \"povray\"\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:2: probe: must be an array of strings"));
  e = Error("root = 5\n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:1: root: must be a string"));
  e = Error("root = \"/r\"\nname = \n");
  EXPECT_TRUE(HasSubstr(e, "host.toml:2:"));
}

TEST_F(RenderConfigTest, MissingFile) {
  auto cfg = LoadRenderServerConfig(JoinPath(dir_, "absent.toml"));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(cfg.status().message(), "absent.toml"));
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

TEST_F(RenderConfigTest, SandboxSection) {
  auto cfg = Load("root = \"/r\"\n");
  ASSERT_TRUE(cfg.ok());
  EXPECT_EQ(cfg->sandbox.uid_base, 0);  // claim a free block
  EXPECT_EQ(cfg->sandbox.system_paths.front(), "/usr");
  cfg = Load(
      "root = \"/r\"\n[sandbox]\nwrapper = \"/opt/ff/frameflow-wrap\"\nuid_base = 300000000\n"
      "cgroup_parent = \"farm/ff\"\nlandlock_min_abi = 3\nextra_paths = [\"/opt/renderer\"]\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_EQ(cfg->sandbox.wrapper, "/opt/ff/frameflow-wrap");
  EXPECT_EQ(cfg->sandbox.uid_base, 300000000);
  EXPECT_EQ(cfg->sandbox.cgroup_parent, "farm/ff");
  EXPECT_EQ(cfg->sandbox.landlock_min_abi, 3);
  EXPECT_EQ(cfg->sandbox.extra_paths, std::vector<std::string>{"/opt/renderer"});
  EXPECT_NE(Error("root = \"/r\"\n[sandbox]\nuid_base = 0\n").find("sandbox.uid_base"),
            std::string::npos);
  EXPECT_NE(
      Error("root = \"/r\"\n[sandbox]\ncgroup_parent = \"../x\"\n").find("sandbox.cgroup_parent"),
      std::string::npos);
  EXPECT_NE(Error("root = \"/r\"\n[sandbox]\nextra_paths = [\"opt\"]\n")
                .find("sandbox.extra_paths: 'opt' is not an absolute path"),
            std::string::npos);
}

}  // namespace
}  // namespace ff
