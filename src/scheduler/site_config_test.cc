#include "scheduler/site_config.h"

#include <gtest/gtest.h>

#include <string>

#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

class SiteConfigTest : public TempDirFixture {
 protected:
  void SetUp() override {
    TempDirFixture::SetUp();
    path_ = JoinPath(dir_, "site.toml");
  }

  Result<SiteConfig> Load(const std::string& text) {
    Status st = WriteFileAtomic(path_, text);
    if (!st.ok()) return st;
    return LoadSiteConfig(path_);
  }
  std::string Error(const std::string& text) {
    auto cfg = Load(text);
    EXPECT_FALSE(cfg.ok()) << text;
    if (cfg.ok()) return "";
    EXPECT_EQ(cfg.status().code(), StatusCode::kInvalidArgument) << cfg.status().ToString();
    return cfg.status().message();
  }

  std::string path_;
};

// The example from site_config.h, verbatim apart from the comments.
constexpr const char* kHeaderExample = R"([site]
name = "studio"
root = "/srv/frameflow"

[schedule_server]
listen = "127.0.0.1:7450"
heartbeat_timeout = "3s"
reconnect_grace = "2s"
max_attempts = 3
max_upload = "8G"
)";

TEST_F(SiteConfigTest, HeaderExample) {
  auto cfg = Load(kHeaderExample);
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->site_name, "studio");
  EXPECT_EQ(cfg->root, "/srv/frameflow");
  EXPECT_EQ(cfg->listen, "127.0.0.1:7450");
  EXPECT_EQ(cfg->heartbeat_timeout_ms, 3000);
  EXPECT_EQ(cfg->heartbeat_interval_ms, 1000);
  EXPECT_EQ(cfg->reconnect_grace_ms, 2000);
  EXPECT_EQ(cfg->max_attempts, 3);
  EXPECT_EQ(cfg->max_upload_bytes, 8LL << 30);
  EXPECT_EQ(cfg->db_path(), "/srv/frameflow/db/frameflow.db");
  EXPECT_EQ(cfg->storage_dir(), "/srv/frameflow/storage");
  EXPECT_EQ(cfg->blob_dir(), "/srv/frameflow/storage/blobs");
  EXPECT_EQ(cfg->jobs_dir(), "/srv/frameflow/storage/jobs");
  EXPECT_EQ(cfg->address_file(), "/srv/frameflow/schedule-server.addr");
}

TEST_F(SiteConfigTest, DefaultsAndOverrides) {
  auto cfg = Load("[site]\nroot = \"/r\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  SiteConfig defaults;
  EXPECT_EQ(cfg->site_name, "site");
  EXPECT_EQ(cfg->listen, defaults.listen);
  EXPECT_EQ(cfg->heartbeat_timeout_ms, defaults.heartbeat_timeout_ms);
  EXPECT_EQ(cfg->heartbeat_interval_ms, defaults.heartbeat_interval_ms);
  EXPECT_EQ(cfg->reconnect_grace_ms, defaults.reconnect_grace_ms);
  EXPECT_EQ(cfg->max_attempts, defaults.max_attempts);
  EXPECT_EQ(cfg->max_upload_bytes, defaults.max_upload_bytes);
  EXPECT_FALSE(cfg->has_peers());

  cfg = Load(R"([site]
root = "/r"
[schedule_server]
listen = "0.0.0.0:0"
heartbeat_timeout = 2
heartbeat_interval = "250ms"
reconnect_grace = 0.5
max_attempts = 1
max_upload = 1024
)");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  EXPECT_EQ(cfg->listen, "0.0.0.0:0");
  EXPECT_EQ(cfg->heartbeat_timeout_ms, 2000);
  EXPECT_EQ(cfg->heartbeat_interval_ms, 250);
  EXPECT_EQ(cfg->reconnect_grace_ms, 500);
  EXPECT_EQ(cfg->max_attempts, 1);
  EXPECT_EQ(cfg->max_upload_bytes, 1024);
}

TEST_F(SiteConfigTest, RootIsRequired) {
  EXPECT_TRUE(HasSubstr(Error(""), "site.root: is required"));
  EXPECT_TRUE(HasSubstr(Error("[site]\nname = \"x\"\n"), "site.root: is required"));
  std::string e = Error("[schedule_server]\nlisten = \"127.0.0.1:1\"\n");
  EXPECT_TRUE(HasSubstr(e, "site.root: is required"));
  EXPECT_TRUE(HasSubstr(e, path_));
  // A top-level root is not [site] root.
  e = Error("root = \"/r\"\n");
  EXPECT_TRUE(HasSubstr(e, "site.toml:1: root: unknown key"));
}

TEST_F(SiteConfigTest, HeartbeatIntervalMustBeShorterThanTimeout) {
  std::string e = Error(
      "[site]\nroot = \"/r\"\n[schedule_server]\nheartbeat_timeout = \"1s\"\n"
      "heartbeat_interval = \"1s\"\n");
  EXPECT_TRUE(HasSubstr(e, "schedule_server.heartbeat_interval: must be shorter than"));
  e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nheartbeat_interval = \"10s\"\n");
  EXPECT_TRUE(HasSubstr(e, "heartbeat_interval"));
  e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nheartbeat_timeout = \"500ms\"\n");
  EXPECT_TRUE(HasSubstr(e, "heartbeat_interval"));
  auto cfg = Load(
      "[site]\nroot = \"/r\"\n[schedule_server]\nheartbeat_timeout = \"1s\"\n"
      "heartbeat_interval = \"999ms\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
}

TEST_F(SiteConfigTest, ListenAddressIsCheckedNamingFieldAndFile) {
  const std::string head = "[site]\nroot = \"/r\"\n[schedule_server]\nlisten = ";
  std::string e = Error(head + "\"127.0.0.1:99999\"\n");
  EXPECT_EQ(e, path_ +
                   ":4: schedule_server.listen: '127.0.0.1:99999' must be <host>:<port> with a "
                   "port from 0 to 65535 (0 picks a free port)");
  for (const char* bad : {"127.0.0.1", "127.0.0.1:", ":7450", "127.0.0.1:-1", "127.0.0.1:7x",
                          "127.0.0.1:000070000", "::1:7450", "a b:7450", "unix:"}) {
    e = Error(head + "\"" + bad + "\"\n");
    EXPECT_TRUE(HasSubstr(e, path_ + ":4: schedule_server.listen: '" + bad + "'")) << bad << e;
  }
  for (const char* good : {"127.0.0.1:0", "0.0.0.0:65535", "localhost:7450", "[::1]:7450", "[::]:0",
                           "unix:/tmp/ff.sock"}) {
    auto cfg = Load(head + "\"" + good + "\"\n");
    ASSERT_TRUE(cfg.ok()) << good << ": " << cfg.status().ToString();
    EXPECT_EQ(cfg->listen, good);
  }
  EXPECT_EQ(ListenAddressProblem("127.0.0.1:7450"), "");
}

TEST_F(SiteConfigTest, KeyErrorsNameFileLineAndKey) {
  std::string e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nlisten = \"x\"\nlistne = 1\n");
  EXPECT_EQ(e, path_ + ":5: schedule_server.listne: unknown key");
  e = Error("[site]\nroot = \"/r\"\nowner = \"me\"\n");
  EXPECT_EQ(e, path_ + ":3: site.owner: unknown key");
  e = Error("[site]\nroot = \"/r\"\n[peers]\n");
  EXPECT_TRUE(HasSubstr(e, "peers: must be an array of tables ([[peers]])"));
  e = Error("[site]\nroot = \"/r\"\n[peer]\n");
  EXPECT_TRUE(HasSubstr(e, "peer: unknown key"));
  e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nmax_attempts = 0\n");
  EXPECT_TRUE(HasSubstr(e, ":4: schedule_server.max_attempts: must be between 1 and 100"));
  e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nheartbeat_timeout = \"5 seconds\"\n");
  EXPECT_TRUE(HasSubstr(e, ":4: schedule_server.heartbeat_timeout:"));
  e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nreconnect_grace = -1\n");
  EXPECT_TRUE(HasSubstr(e, ":4: schedule_server.reconnect_grace: must be positive"));
  e = Error("[site]\nroot = \"/r\"\n[schedule_server]\nmax_upload = \"big\"\n");
  EXPECT_TRUE(HasSubstr(e, ":4: schedule_server.max_upload:"));
  e = Error("site = \"x\"\n");
  EXPECT_TRUE(HasSubstr(e, ":1: site: must be a table"));
  e = Error("[site]\nroot = [\"/r\"]\n");
  EXPECT_TRUE(HasSubstr(e, ":2: site.root: must be a string"));
}

TEST_F(SiteConfigTest, PeersHotFoldersAndCourier) {
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir_, "co.secret"), "0123456789abcdef0123\n").ok());
  auto cfg = Load(
      "[site]\nname = \"studio\"\nroot = \"/r\"\n"
      "[[peers]]\nname = \"render-co\"\naddress = \"10.0.0.5:7450\"\n"
      "secret = \"0123456789abcdef\"\ntls_ca = \"ca.pem\"\n"
      "[[peers]]\nname = \"farm2\"\naddress_file = \"farm2.addr\"\nsecret_file = \"co.secret\"\n"
      "[hotfolders]\nmax_package = \"2G\"\nmax_file = \"1G\"\nmax_files = 500\n"
      "[courier]\nchunk = \"256K\"\nmax_rate = \"10M\"\npoll = \"500ms\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
  ASSERT_EQ(cfg->peers.size(), 2u);
  EXPECT_TRUE(cfg->has_peers());
  EXPECT_EQ(cfg->peers[0].name, "render-co");
  EXPECT_EQ(cfg->peers[0].address, "10.0.0.5:7450");
  EXPECT_EQ(cfg->peers[0].tls_ca, JoinPath(dir_, "ca.pem"));  // relative to the config
  EXPECT_EQ(cfg->peers[1].address_file, JoinPath(dir_, "farm2.addr"));
  EXPECT_EQ(cfg->peers[1].secret, "0123456789abcdef0123");
  EXPECT_EQ(cfg->FindPeer("farm2"), &cfg->peers[1]);
  EXPECT_EQ(cfg->FindPeer("nobody"), nullptr);
  EXPECT_EQ(cfg->limits.max_package_bytes, 2LL << 30);
  EXPECT_EQ(cfg->limits.max_file_bytes, 1LL << 30);
  EXPECT_EQ(cfg->limits.max_files, 500);
  EXPECT_EQ(cfg->courier_chunk_bytes, 256 << 10);
  EXPECT_EQ(cfg->courier_max_rate, 10 << 20);
  EXPECT_EQ(cfg->remote_poll_ms, 500);
  EXPECT_EQ(cfg->hotfolder_in(), "/r/hotfolders/in");
  EXPECT_EQ(cfg->quarantine_dir(), "/r/hotfolders/quarantine");

  const std::string base = "[site]\nroot = \"/r\"\n[[peers]]\n";
  EXPECT_TRUE(HasSubstr(Error(base + "address = \"a:1\"\nsecret = \"0123456789abcdef\"\n"),
                        "peers[0].name: required"));
  EXPECT_TRUE(HasSubstr(Error(base + "name = \"x\"\nsecret = \"0123456789abcdef\"\n"),
                        "set exactly one of address, address_file"));
  EXPECT_TRUE(HasSubstr(Error(base + "name = \"x\"\naddress = \"a:1\"\n"),
                        "set exactly one of secret, secret_file"));
  EXPECT_TRUE(HasSubstr(Error(base + "name = \"x\"\naddress = \"a:1\"\nsecret = \"short\"\n"),
                        "peers[0].secret: must be at least 16 characters"));
  EXPECT_TRUE(
      HasSubstr(Error(base + "name = \"x\"\naddress = \"a:1\"\nsecret_file = \"missing\"\n"),
                "peers[0].secret_file:"));
  EXPECT_TRUE(HasSubstr(Error(base + "name = \"x\"\naddress = \"a:1\"\nsecret = "
                                     "\"0123456789abcdef\"\nport = 1\n"),
                        ":7: peers[0].port: unknown key"));
  EXPECT_TRUE(HasSubstr(Error(base + "name = \"x\"\naddress = \"a:1\"\nsecret = "
                                     "\"0123456789abcdef\"\n[[peers]]\nname = \"x\"\naddress = "
                                     "\"b:1\"\nsecret = \"0123456789abcdef\"\n"),
                        "peers[1].name: 'x' twice"));
  EXPECT_TRUE(HasSubstr(Error("[site]\nroot = \"/r\"\n[courier]\nchunk = \"1K\"\n"),
                        "courier.chunk: must be between 4K and 64M"));
  EXPECT_TRUE(
      HasSubstr(Error("[site]\nname = \"a b\"\nroot = \"/r\"\n"), "site.name: 'a b' must be"));
  EXPECT_TRUE(HasSubstr(Error("[site]\nroot = \"/r\"\n[schedule_server]\ntls_cert = \"c\"\n"),
                        "tls_cert and tls_key: set both or neither"));
}

TEST_F(SiteConfigTest, MissingFile) {
  auto cfg = LoadSiteConfig(JoinPath(dir_, "absent.toml"));
  ASSERT_FALSE(cfg.ok());
  EXPECT_EQ(cfg.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(HasSubstr(cfg.status().message(), "absent.toml"));
}

}  // namespace
}  // namespace ff

namespace ff {
namespace {

TEST_F(SiteConfigTest, SandboxPolicy) {
  auto cfg = Load("[site]\nroot = \"/r\"\n");
  ASSERT_TRUE(cfg.ok());
  EXPECT_TRUE(cfg->sandbox.wrap_local_jobs);  // wrapped by default
  EXPECT_EQ(cfg->sandbox.processes, 1024);
  cfg = Load(
      "[site]\nroot = \"/r\"\n[sandbox]\nlocal_jobs = \"plain\"\nmemory = \"2G\"\n"
      "processes = 64\ncpu_time = \"1h\"\nwall_time = \"2h\"\noutput_size = \"8G\"\n"
      "file_size = \"1G\"\ntmp_size = \"512M\"\n");
  ASSERT_TRUE(cfg.ok()) << cfg.status().message();
  EXPECT_FALSE(cfg->sandbox.wrap_local_jobs);
  EXPECT_EQ(cfg->sandbox.memory_bytes, 2LL << 30);
  EXPECT_EQ(cfg->sandbox.processes, 64);
  EXPECT_EQ(cfg->sandbox.cpu_seconds, 3600);
  EXPECT_EQ(cfg->sandbox.wall_ms, 7200000);
  EXPECT_EQ(cfg->sandbox.output_bytes, 8LL << 30);
  EXPECT_EQ(cfg->sandbox.file_bytes, 1LL << 30);
  EXPECT_EQ(cfg->sandbox.tmp_bytes, 512LL << 20);
  EXPECT_TRUE(HasSubstr(Error("[site]\nroot = \"/r\"\n[sandbox]\nlocal_jobs = \"never\"\n"),
                        "sandbox.local_jobs: must be \"wrapped\" or \"plain\", got 'never'"));
  EXPECT_TRUE(HasSubstr(Error("[site]\nroot = \"/r\"\n[sandbox]\nmemroy = \"1G\"\n"),
                        ":4: sandbox.memroy: unknown key"));
  EXPECT_TRUE(HasSubstr(Error("[site]\nroot = \"/r\"\n[sandbox]\ntmp_size = \"4K\"\n"),
                        "sandbox.tmp_size: must be at least 1M"));
}

}  // namespace
}  // namespace ff
