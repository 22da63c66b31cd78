// Full disks: a site's storage, its hot folders and a render server's
// secure location / work dir / cache on small tmpfs filesystems that fill up
// during a job. Running out of disk is environmental: the failing step says
// the disk is full and names the path, nothing partial is ever presented as
// complete, and the job continues once space is freed — with every frame
// exactly once. Mounting needs root: without it these tests fail.
#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>

#include "cli/local_site.h"
#include "render/image_check.h"
#include "test_support.h"
#include "transfer/job_package.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;
using testing::TempDir;
using testing::WaitUntil;
using testing::WriteText;

constexpr const char* kNoSpace = "No space left on device";

// A tmpfs of `size` mounted over `path` (created) for the guard's lifetime;
// unmounted (lazily, so a daemon still holding a file cannot keep it) on
// destruction, also when the test failed.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, const std::string& size) : path_(path) {
    EXPECT_TRUE(MakeDirs(path).ok()) << path;
    const std::string options = "size=" + size + ",mode=0755";
    if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0) {
      ADD_FAILURE() << "mount tmpfs on " << path << ": " << std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_ && ::umount2(path_.c_str(), MNT_DETACH) != 0) {
      ADD_FAILURE() << "umount " << path_ << ": " << std::strerror(errno);
    }
  }
  bool mounted() const { return mounted_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool mounted_ = false;
};

// Fills the filesystem holding `dir` with the file `dir`/ballast until a
// write fails with ENOSPC; returns the path. Deleting it frees the space.
std::string FillWithBallast(const std::string& dir) {
  const std::string path = JoinPath(dir, "ballast");
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << path << ": " << std::strerror(errno);
  if (fd < 0) return path;
  std::string block(64 << 10, 'b');
  int err = 0;
  for (size_t len = block.size(); len > 0;) {
    ssize_t n = ::write(fd, block.data(), len);
    if (n < 0) {
      err = errno;
      if (err == EINTR) continue;
      if (err == ENOSPC && len > 1) {  // fill the last bytes too
        len /= 2;
        continue;
      }
      break;
    }
  }
  ::close(fd);
  EXPECT_EQ(err, ENOSPC) << path;
  auto free = FreeBytes(dir);
  EXPECT_TRUE(free.ok() && *free == 0) << dir << " still has " << (free.ok() ? *free : -1);
  return path;
}

std::string Abs(const std::string& storage, const std::string& output) {
  return !output.empty() && output[0] == '/' ? output : JoinPath(storage, output);
}

class FullDiskTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // Not a skip: these tests promise something only root can check here.
    ASSERT_EQ(::geteuid(), 0u) << "fulldisk_test mounts tmpfs filesystems and must run as root";
  }
  // Members are destroyed in reverse: the daemons stop, then the mounts go,
  // then the directory.
  void TearDown() override {
    sites_.clear();
    mounts_.clear();
  }

  TmpfsMount* Mount(const std::string& path, const std::string& size) {
    mounts_.push_back(std::make_unique<TmpfsMount>(path, size));
    return mounts_.back().get();
  }

  struct Site {
    std::unique_ptr<LocalSite> site;
    std::unique_ptr<pb::ScheduleServer::Stub> stub;
  };
  Site* StartSite(const std::string& root, LocalSiteOptions o) {
    o.binary = testing::Binary();
    auto s = LocalSite::Start(root, o);
    EXPECT_TRUE(s.ok()) << s.status().message();
    if (!s.ok()) return nullptr;
    auto site = std::make_unique<Site>();
    site->site = std::move(s).value();
    if (o.render_servers > 0) {
      Status st = site->site->WaitForRenderServers(o.render_servers, 60000);
      EXPECT_TRUE(st.ok()) << st.message();
    }
    auto stub = site->site->client().Connect();
    EXPECT_TRUE(stub.ok()) << stub.status().message();
    if (!stub.ok()) return nullptr;
    site->stub = std::move(stub).value();
    sites_.push_back(std::move(site));
    return sites_.back().get();
  }

  int64_t Submit(Site* site, const std::string& description) {
    auto id = SubmitJob(site->stub.get(), description);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  static pb::JobInfo Get(Site* site, int64_t id) {
    auto detail = GetJobInfo(site->stub.get(), id);
    return detail.ok() ? *detail : pb::JobInfo();
  }
  static std::vector<pb::JobInfo> Jobs(Site* site) {
    pb::ListJobsRequest req;
    req.set_include_finished(true);
    pb::ListJobsResponse resp;
    grpc::ClientContext ctx;
    if (!site->stub->ListJobs(&ctx, req, &resp).ok()) return {};
    return {resp.jobs().begin(), resp.jobs().end()};
  }
  static pb::PeerInfo PeerState(Site* site, const std::string& peer) {
    pb::ListPeersRequest req;
    pb::ListPeersResponse resp;
    grpc::ClientContext ctx;
    (void)site->stub->ListPeers(&ctx, req, &resp);
    for (const auto& p : resp.peers()) {
      if (p.name() == peer) return p;
    }
    return {};
  }
  pb::JobInfo WaitDone(Site* site, int64_t id) {
    auto info = WaitForJob(site->stub.get(), id, false, 240'000);
    EXPECT_TRUE(info.ok()) << info.status().message();
    return Get(site, id);
  }

  // examples/clock rendered with POV-Ray, `frames` in chunks of 2, under
  // dir_/<name>/.
  std::string ClockJob(const std::string& name, const std::string& frames,
                       const std::string& placement = "local") {
    const std::string dir = dir_.path() + "/" + name;
    EXPECT_TRUE(MakeDirs(dir + "/textures").ok());
    const std::string src = testing::SourceDir() + "/examples/clock/";
    for (const char* f : {"clock.pov", "clock_parts.inc", "textures/dial.png"}) {
      EXPECT_TRUE(LinkOrCopy(src + f, dir + "/" + f).ok());
    }
    WriteText(dir + "/job.toml", "name = \"" + name + "\"\nplacement = \"" + placement +
                                     "\"\nframes = \"" + frames +
                                     "\"\nchunk_size = 2\n"
                                     "files = [\"clock_parts.inc\", \"textures/dial.png\"]\n"
                                     "[package]\nname = \"povray\"\n"
                                     "[render]\nscene = \"clock.pov\"\nwidth = 160\n"
                                     "height = 120\noutput = \"frames/clock_####.png\"\n");
    return dir + "/job.toml";
  }

  // The promise while a disk is full: a frame recorded done has its
  // complete file on storage (size and SHA-256 as recorded, a PNG that
  // decodes), and every frame file on storage is complete.
  static void ExpectNoFrameDoneWithoutItsFile(const pb::JobInfo& job,
                                              const std::string& storage_root) {
    for (const auto& f : job.frame_info()) {
      if (f.state() != "done") continue;
      const std::string path = Abs(storage_root, f.output());
      int64_t size = 0;
      auto sha = Sha256File(path, &size);
      ASSERT_TRUE(sha.ok()) << "frame " << f.frame() << " is done but " << path << ": "
                            << sha.status().message();
      EXPECT_EQ(*sha, f.sha256()) << path;
      EXPECT_EQ(size, f.size()) << path;
      auto img = CheckImage(path);
      EXPECT_TRUE(img.ok()) << path << ": " << img.status().message();
    }
    auto names = ListDir(JoinPath(job.storage_dir(), "frames"));
    if (!names.ok()) return;
    for (const auto& n : *names) {
      const std::string path = JoinPath(JoinPath(job.storage_dir(), "frames"), n);
      auto img = CheckImage(path);
      EXPECT_TRUE(img.ok()) << "a partial frame file is on storage: " << path << ": "
                            << img.status().message();
    }
  }

  // Done, every frame exactly once, each a valid PNG matching its record.
  static void ExpectAllFramesOnce(const pb::JobInfo& job, const std::string& storage_root,
                                  int frames) {
    ASSERT_EQ(job.state(), "done") << job.error();
    ASSERT_EQ(job.frame_info_size(), frames);
    std::set<int64_t> seen;
    for (const auto& f : job.frame_info()) {
      EXPECT_EQ(f.state(), "done") << f.frame();
      EXPECT_TRUE(seen.insert(f.frame()).second) << "frame " << f.frame() << " twice";
    }
    EXPECT_EQ(static_cast<int>(seen.size()), frames);
    ExpectNoFrameDoneWithoutItsFile(job, storage_root);
    auto names = ListDir(JoinPath(job.storage_dir(), "frames"));
    ASSERT_TRUE(names.ok()) << names.status().message();
    EXPECT_EQ(static_cast<int>(names->size()), frames);
  }

  // The first chunk error containing `text`, or "".
  static std::string ChunkError(const pb::JobInfo& job, const std::string& text) {
    for (const auto& c : job.chunks()) {
      if (c.error().find(text) != std::string::npos) return c.error();
    }
    return "";
  }
  static int MaxAttempts(const pb::JobInfo& job) {
    int n = 0;
    for (const auto& c : job.chunks()) n = std::max(n, c.attempts());
    return n;
  }

  TempDir dir_;
  std::vector<std::unique_ptr<TmpfsMount>> mounts_;
  std::vector<std::unique_ptr<Site>> sites_;
};

// (a) Frames are uploaded to the studio's site storage while it is full.
TEST_F(FullDiskTest, FullSiteStorageHoldsUploadsUntilSpaceIsFreedThenEveryFrameLandsOnce) {
  const std::string root = dir_.path() + "/studio";
  const std::string storage = root + "/site/storage";
  ASSERT_TRUE(Mount(storage, "16m")->mounted());
  LocalSiteOptions o;
  o.site_name = "studio";
  o.render_servers = 1;
  o.probe = {"povray"};
  o.heartbeat_timeout = "60s";  // the render server is stopped for a moment
  Site* studio = StartSite(root, o);
  ASSERT_NE(studio, nullptr);

  // The render server is held (SIGSTOP) with its first chunk assigned, the
  // job's files already on storage; then storage fills up.
  const int rs = studio->site->render_server_pid(0);
  ASSERT_EQ(::kill(rs, SIGSTOP), 0);
  const int64_t id = Submit(studio, ClockJob("clock", "1-8"));
  ASSERT_TRUE(WaitUntil([&] { return Get(studio, id).state() == "running"; }, 30000));
  const std::string ballast = FillWithBallast(storage);
  ASSERT_EQ(::kill(rs, SIGCONT), 0);

  // The upload step fails, says the site storage is full and where, and is
  // retried: more attempts than max_attempts (3), and the job has not failed.
  std::string error;
  ASSERT_TRUE(WaitUntil(
      [&] {
        pb::JobInfo j = Get(studio, id);
        error = ChunkError(j, kNoSpace);
        return !error.empty() && MaxAttempts(j) > o.max_attempts;
      },
      60000))
      << Get(studio, id).DebugString();
  EXPECT_NE(error.find("site storage full (" + storage + ")"), std::string::npos) << error;
  EXPECT_NE(error.find("retrying"), std::string::npos) << error;
  pb::JobInfo during = Get(studio, id);
  EXPECT_EQ(during.state(), "running") << during.error();
  ASSERT_NO_FATAL_FAILURE(ExpectNoFrameDoneWithoutItsFile(during, storage));
  auto show =
      testing::RunFrameflow({"show", std::to_string(id), "--site", studio->site->site_root()});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find(kNoSpace), std::string::npos) << show.out;
  EXPECT_NE(show.out.find(storage), std::string::npos) << show.out;

  // Space is freed: the job goes on and completes, every frame once.
  ASSERT_EQ(::unlink(ballast.c_str()), 0);
  pb::JobInfo done = WaitDone(studio, id);
  ASSERT_NO_FATAL_FAILURE(ExpectAllFramesOnce(done, storage, 8));
  for (const auto& c : done.chunks()) EXPECT_EQ(c.state(), "done");
}

// (c) A render server's secure location, work dir and cache (its root) are
// full when a chunk collects its frames.
TEST_F(FullDiskTest, FullRenderServerRootWaitsForSpaceInsteadOfFailingTheJob) {
  const std::string root = dir_.path() + "/studio";
  const std::string rs_root = root + "/rs1";
  ASSERT_TRUE(Mount(rs_root, "16m")->mounted());
  LocalSiteOptions o;
  o.site_name = "studio";
  o.render_servers = 1;
  o.probe = {"povray"};
  Site* studio = StartSite(root, o);
  ASSERT_NE(studio, nullptr);
  const std::string storage = studio->site->site_root() + "/storage";

  // A first job puts the scene's files in the render server's cache.
  pb::JobInfo warm = WaitDone(studio, Submit(studio, ClockJob("warm", "1-2")));
  ASSERT_EQ(warm.state(), "done") << warm.error();

  const std::string ballast = FillWithBallast(rs_root);
  const int64_t id = Submit(studio, ClockJob("clock", "1-8"));
  std::string error;
  ASSERT_TRUE(WaitUntil(
      [&] {
        pb::JobInfo j = Get(studio, id);
        error = ChunkError(j, "render server disk full (" + rs_root + "/");
        return !error.empty() && MaxAttempts(j) > o.max_attempts;
      },
      60000))
      << Get(studio, id).DebugString();
  EXPECT_NE(error.find("retrying"), std::string::npos) << error;
  pb::JobInfo during = Get(studio, id);
  EXPECT_NE(during.state(), "failed") << during.error();
  ASSERT_NO_FATAL_FAILURE(ExpectNoFrameDoneWithoutItsFile(during, storage));
  // The chunk's log says why too.
  for (const auto& c : during.chunks()) {
    if (c.error().find("render server disk full") == std::string::npos || c.log().empty()) continue;
    auto text = ReadFile(Abs(storage, c.log()));
    ASSERT_TRUE(text.ok()) << text.status().message();
    EXPECT_NE(text->find("is full; the chunk is retried once there is space"), std::string::npos)
        << *text;
  }

  ASSERT_EQ(::unlink(ballast.c_str()), 0);
  pb::JobInfo done = WaitDone(studio, id);
  ASSERT_NO_FATAL_FAILURE(ExpectAllFramesOnce(done, storage, 8));
}

// (b) The studio's hot folders fill while it writes a job package; then
// render-co's storage (where incoming blobs are received, blobs/partial)
// fills while the courier ships it.
TEST_F(FullDiskTest, FullHotFoldersAndPeerStorageDelayTheOutsourcedJobButNeverCorruptIt) {
  const std::string studio_root = dir_.path() + "/studio";
  const std::string remote_root = dir_.path() + "/render-co";
  const std::string studio_hot = studio_root + "/site/hotfolders";
  const std::string remote_storage = remote_root + "/site/storage";
  const std::string remote_hot = remote_root + "/site/hotfolders";
  ASSERT_TRUE(Mount(studio_hot, "8m")->mounted());
  ASSERT_TRUE(Mount(remote_storage, "16m")->mounted());
  ASSERT_TRUE(Mount(remote_hot, "16m")->mounted());

  const std::string secret = LocalSite::RandomSecret();
  LocalSiteOptions remote;
  remote.site_name = "render-co";
  remote.render_servers = 1;
  remote.probe = {"povray"};
  remote.site_extra = LocalSite::PeerToml("studio", studio_root, secret);
  LocalSiteOptions studio;
  studio.site_name = "studio";
  studio.render_servers = 0;
  studio.site_extra =
      LocalSite::PeerToml("render-co", remote_root, secret) + "[courier]\npoll = \"100ms\"\n";
  Site* r = StartSite(remote_root, remote);
  ASSERT_NE(r, nullptr);
  Site* s = StartSite(studio_root, studio);
  ASSERT_NE(s, nullptr);

  // A 4 MiB texture: more than either full filesystem has left.
  const std::string job = ClockJob("clock", "1-4", "remote");
  {
    std::string bytes(4 << 20, '\0');
    std::mt19937_64 rng(11);
    for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
      uint64_t v = rng();
      std::memcpy(&bytes[i], &v, 8);
    }
    WriteText(DirName(job) + "/texture.bin", bytes);
    auto text = ReadFile(job);
    ASSERT_TRUE(text.ok());
    std::string t = *text;
    t.replace(t.find("files = ["), 9, "files = [\"texture.bin\", ");
    WriteText(job, t);
  }

  const std::string studio_ballast = FillWithBallast(studio_hot);
  const std::string remote_ballast = FillWithBallast(remote_storage);
  const int64_t id = Submit(s, job);

  // 1. The job package cannot be written into the studio's hotfolders/out:
  // the schedule server says so, naming the path, and retries; no package,
  // not even a half-written one under its final name, is in out/.
  const std::string log = s->site->log_path("schedule-server");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto text = ReadFile(log);
        return text.ok() &&
               text->find("hot-folder step failed (will retry)") != std::string::npos &&
               text->find(kNoSpace) != std::string::npos &&
               text->find(studio_hot + "/out/") != std::string::npos;
      },
      30000))
      << ReadFile(log).ok();
  auto out = ListDir(studio_hot + "/out");
  ASSERT_TRUE(out.ok());
  for (const auto& n : *out) {
    EXPECT_EQ(n.rfind(".staging-", 0), 0u) << "a package appeared in out/ while full: " << n;
  }
  EXPECT_NE(Get(s, id).state(), "failed") << Get(s, id).error();

  // 2. Space at the studio: the package is written and shipped; render-co's
  // storage is full, so receiving its blobs fails. `peers` says the peer's
  // disk is full and where; nothing is ingested, quarantined or created.
  ASSERT_EQ(::unlink(studio_ballast.c_str()), 0);
  pb::PeerInfo peer;
  ASSERT_TRUE(WaitUntil(
      [&] {
        peer = PeerState(s, "render-co");
        return peer.state() == "disk full";
      },
      60000))
      << peer.DebugString();
  EXPECT_NE(peer.last_error().find(kNoSpace), std::string::npos) << peer.last_error();
  EXPECT_NE(peer.last_error().find(remote_storage + "/blobs/"), std::string::npos)
      << peer.last_error();
  auto peers = testing::RunFrameflow({"peers", "--site", s->site->site_root()});
  EXPECT_NE(peers.out.find("disk full"), std::string::npos) << peers.out << peers.err;
  EXPECT_TRUE(Jobs(r).empty());
  auto in = ListPackages(remote_hot + "/in");
  ASSERT_TRUE(in.ok());
  EXPECT_TRUE(in->empty());
  auto quarantined = ListDir(remote_hot + "/quarantine");
  EXPECT_TRUE(!quarantined.ok() || quarantined->empty());
  // The package waits complete in the studio's out/, under its own name.
  auto waiting = ListPackages(studio_hot + "/out");
  ASSERT_TRUE(waiting.ok());
  ASSERT_EQ(waiting->size(), 1u);
  auto verified = VerifyPackage(studio_hot + "/out/" + (*waiting)[0], JobPackageLimits{});
  EXPECT_TRUE(verified.ok()) << verified.status().message();
  EXPECT_NE(Get(s, id).state(), "failed") << Get(s, id).error();

  // 3. Space at render-co: the transfer resumes, the job renders there and
  // its frames come back to the studio, each once.
  ASSERT_EQ(::unlink(remote_ballast.c_str()), 0);
  pb::JobInfo done = WaitDone(s, id);
  ASSERT_NO_FATAL_FAILURE(ExpectAllFramesOnce(done, s->site->site_root() + "/storage", 4));
  std::vector<pb::JobInfo> rj = Jobs(r);
  ASSERT_EQ(rj.size(), 1u);
  EXPECT_EQ(rj[0].state(), "done");
  quarantined = ListDir(remote_hot + "/quarantine");
  EXPECT_TRUE(!quarantined.ok() || quarantined->empty());
}

}  // namespace
}  // namespace ff
