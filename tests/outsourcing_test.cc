// Two sites as separate processes on loopback: a studio that outsources
// jobs and a remote rendering site ("render-co"), each a LocalSite (one
// schedule server + render servers), peers of each other through hot
// folders and the courier.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cli/local_site.h"
#include "site_client.h"
#include "store/resource_db.h"
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

// A command package that "renders" a frame by copying the scene file, after
// sleeping `seconds`.
std::string SlowCopyPackage(double seconds) {
  return "[[packages]]\nname = \"slowcopy\"\nversion = \"1.0\"\ncommand = \"/bin/sh -c 'sleep " +
         std::to_string(seconds) + " && cp \\\"$0\\\" \\\"$1\\\"' {scene} {output} {frame}\"\n";
}

class OutsourcingTest : public ::testing::Test {
 protected:
  struct Site {
    std::unique_ptr<LocalSite> site;
    std::unique_ptr<pb::ScheduleServer::Stub> stub;
  };

  // Starts the studio and render-co, peers of each other. `studio_extra` and
  // `remote_extra` are appended to their site.toml.
  void StartSites(LocalSiteOptions studio, LocalSiteOptions remote,
                  const std::string& studio_extra = "", const std::string& remote_extra = "",
                  const std::string& remote_secret = "") {
    const std::string secret = LocalSite::RandomSecret();
    studio.binary = remote.binary = testing::Binary();
    studio.site_name = "studio";
    remote.site_name = "render-co";
    studio.site_extra = LocalSite::PeerToml("render-co", remote_root(), secret) +
                        "[courier]\npoll = \"100ms\"\n" + studio_extra;
    remote.site_extra = LocalSite::PeerToml("studio", studio_root(),
                                            remote_secret.empty() ? secret : remote_secret) +
                        remote_extra;
    auto r = LocalSite::Start(remote_root(), remote);
    ASSERT_TRUE(r.ok()) << r.status().message();
    remote_.site = std::move(r).value();
    auto s = LocalSite::Start(studio_root(), studio);
    ASSERT_TRUE(s.ok()) << s.status().message();
    studio_.site = std::move(s).value();
    for (Site* site : {&studio_, &remote_}) {
      if (site == &studio_ ? studio.render_servers : remote.render_servers) {
        Status st = site->site->WaitForRenderServers(
            site == &studio_ ? studio.render_servers : remote.render_servers, 60000);
        ASSERT_TRUE(st.ok()) << st.message();
      }
      ASSERT_NO_FATAL_FAILURE(Connect(*site));
    }
  }
  void Connect(Site& site) {
    auto stub = site.site->client().Connect();
    ASSERT_TRUE(stub.ok()) << stub.status().message();
    site.stub = std::move(stub).value();
  }
  std::string studio_root() const { return dir_.path() + "/studio"; }
  std::string remote_root() const { return dir_.path() + "/render-co"; }

  int64_t Submit(Site& site, const std::string& description) {
    auto id = SubmitJob(site.stub.get(), description);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  pb::JobInfo Wait(Site& site, int64_t id) {
    auto info = WaitForJob(site.stub.get(), id, false, 240'000);
    EXPECT_TRUE(info.ok()) << info.status().message();
    return Get(site, id);
  }
  pb::JobInfo Get(Site& site, int64_t id) {
    auto detail = GetJobInfo(site.stub.get(), id);
    return detail.ok() ? *detail : pb::JobInfo();
  }
  std::vector<pb::JobInfo> Jobs(Site& site) { return testing::AllJobs(site.stub.get()); }
  pb::CourierCounters Counters(Site& site, const std::string& peer) {
    return testing::PeerOf(site.stub.get(), peer).counters();
  }
  pb::PeerInfo PeerState(Site& site, const std::string& peer) {
    return testing::PeerOf(site.stub.get(), peer);
  }

  // A copy of examples/clock with the description's placement lines
  // replaced by `placement` (TOML lines), under dir_/<name>/.
  std::string ClockJob(const std::string& name, const std::string& placement) {
    const std::string dir = dir_.path() + "/" + name;
    EXPECT_TRUE(MakeDirs(dir + "/textures").ok());
    const std::string src = testing::SourceDir() + "/examples/clock/";
    for (const char* f : {"clock.pov", "clock_parts.inc", "textures/dial.png"}) {
      EXPECT_TRUE(LinkOrCopy(src + f, dir + "/" + f).ok());
    }
    WriteText(dir + "/job.toml", "name = \"" + name + "\"\n" + placement +
                                     "\nframes = \"1-8\"\nchunk_size = 2\n"
                                     "files = [\"clock_parts.inc\", \"textures/dial.png\"]\n"
                                     "[package]\nname = \"povray\"\n"
                                     "[render]\nscene = \"clock.pov\"\nwidth = 160\n"
                                     "height = 120\noutput = \"frames/clock_####.png\"\n");
    return dir + "/job.toml";
  }

  // A slowcopy job with a texture of `texture_bytes` random bytes (seeded),
  // under dir_/<name>/; the texture is shared by jobs with the same seed.
  std::string CopyJob(const std::string& name, const std::string& frames,
                      const std::string& placement, int64_t texture_bytes = 0, unsigned seed = 1,
                      const std::string& extra = "") {
    const std::string dir = dir_.path() + "/" + name;
    EXPECT_TRUE(MakeDirs(dir).ok());
    EXPECT_TRUE(
        LinkOrCopy(testing::SourceDir() + "/examples/clock/textures/dial.png", dir + "/plate.png")
            .ok());
    std::string files;
    if (texture_bytes > 0) {
      std::string bytes(static_cast<size_t>(texture_bytes), '\0');
      std::mt19937_64 rng(seed);
      for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        uint64_t v = rng();
        std::memcpy(&bytes[i], &v, 8);
      }
      WriteText(dir + "/texture.bin", bytes);
      files = "files = [\"texture.bin\"]\n";
    }
    WriteText(dir + "/job.toml", "name = \"" + name + "\"\n" + placement + "\nframes = \"" +
                                     frames + "\"\nchunk_size = 1\n" + files + extra +
                                     "\n[package]\nname = \"slowcopy\"\n[render]\n"
                                     "scene = \"plate.png\"\noutput = \"out_####.png\"\n");
    return dir + "/job.toml";
  }

  static bool HasNote(const pb::JobInfo& j, const std::string& queue, const std::string& text) {
    for (const auto& e : j.history()) {
      if (e.queue() == queue && e.note().find(text) != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir_;
  Site studio_;
  Site remote_;
};

TEST_F(OutsourcingTest, OutsourcedJobRendersRemotelyReturnsAndMatchesLocalPixels) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 1;
  studio.probe = remote.probe = {"povray"};
  remote.render_servers = 2;
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));

  const int64_t local_id = Submit(studio_, ClockJob("here", "placement = \"local\""));
  const int64_t remote_id = Submit(studio_, ClockJob("there", "placement = \"remote\""));
  pb::JobInfo here = Wait(studio_, local_id);
  pb::JobInfo there = Wait(studio_, remote_id);
  ASSERT_EQ(here.state(), "done") << here.error();
  ASSERT_EQ(there.state(), "done") << there.error();

  // Every frame came back, rendered by render-co's render servers, and its
  // pixels equal the same frame rendered at the studio.
  ASSERT_EQ(there.frame_info_size(), 8);
  std::set<std::string> servers;
  for (const auto& f : there.frame_info()) {
    ASSERT_EQ(f.state(), "done");
    EXPECT_EQ(f.render_server().rfind("render-co/", 0), 0u) << f.render_server();
    servers.insert(f.render_server());
    std::string why;
    const std::string mine =
        here.storage_dir() + "/frames/clock_000" + std::to_string(f.frame()) + ".png";
    EXPECT_TRUE(testing::SamePixels(f.output(), mine, &why)) << f.frame() << ": " << why;
  }
  EXPECT_EQ(servers.size(), 2u) << "both remote render servers should have rendered";
  EXPECT_TRUE(
      WaitUntil([&] { return !Get(studio_, remote_id).frame_info(0).output().empty(); }, 1000));
  // Logs came back too.
  pb::LogsRequest lreq;
  lreq.set_job_id(remote_id);
  lreq.set_frame(1);
  pb::LogsResponse lresp;
  grpc::ClientContext lctx;
  ASSERT_TRUE(studio_.stub->GetLogs(&lctx, lreq, &lresp).ok());
  EXPECT_FALSE(lresp.text().empty());

  // Queue transitions at the studio: new -> outsourced -> (remote active) ->
  // done -> removed, in `show` and in the resource database.
  EXPECT_EQ(there.queue(), "");
  EXPECT_EQ(there.remote_site(), "render-co");
  EXPECT_EQ(there.exchange(), "returned");
  EXPECT_TRUE(HasNote(there, "new", "submitted"));
  EXPECT_TRUE(HasNote(there, "outsourced", "outsourced to render-co"));
  EXPECT_TRUE(HasNote(there, "outsourced", "written to hotfolders/out"));
  EXPECT_TRUE(HasNote(there, "outsourced", "in render-co's active queue"));
  EXPECT_TRUE(HasNote(there, "outsourced", "frame(s) placed on storage"));
  EXPECT_TRUE(HasNote(there, "", "removed from the outsourced queue"));
  auto show = testing::RunFrameflow(
      {"show", std::to_string(remote_id), "--site", studio_.site->site_root()});
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_NE(show.out.find("outsourced to render-co"), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("removed from the outsourced queue"), std::string::npos);
  {
    auto db = OpenSqliteResourceDatabase(studio_.site->site_root() + "/db/frameflow.db");
    ASSERT_TRUE(db.ok()) << db.status().message();
    auto events = (*db)->LoadJobEvents(remote_id);
    ASSERT_TRUE(events.ok());
    std::vector<std::string> queues;
    for (const auto& e : *events) {
      const std::string q = JobQueueName(e.queue);
      if (queues.empty() || queues.back() != q) queues.push_back(q);
    }
    EXPECT_EQ(queues, (std::vector<std::string>{"new", "outsourced", ""}));
  }

  // At render-co: the job came from the studio, ran in its active queue,
  // left it once the results were returned; its files and results are in
  // its secure location, mode 0700.
  std::vector<pb::JobInfo> remote_jobs = Jobs(remote_);
  ASSERT_EQ(remote_jobs.size(), 1u);
  pb::JobInfo rj = Get(remote_, remote_jobs[0].job_id());
  EXPECT_EQ(rj.state(), "done");
  EXPECT_EQ(rj.origin_site(), "studio");
  EXPECT_EQ(rj.origin_job_id(), remote_id);
  EXPECT_EQ(rj.client(), "studio");
  EXPECT_EQ(rj.queue(), "");
  EXPECT_EQ(rj.exchange(), "returned");
  EXPECT_TRUE(HasNote(rj, "active", "received from studio"));
  EXPECT_TRUE(HasNote(rj, "", "removed from the active queue"));
  const std::string secure =
      remote_.site->site_root() + "/secure/studio/" + std::to_string(rj.job_id());
  struct stat st {};
  ASSERT_EQ(::stat(secure.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  EXPECT_TRUE(PathExists(secure + "/input/textures/dial.png"));
  EXPECT_TRUE(PathExists(secure + "/output/frames/clock_0001.png") ||
              PathExists(secure + "/output/clock_0001.png"));
  // Nothing is left in the hot folders.
  for (const std::string& root : {studio_.site->site_root(), remote_.site->site_root()}) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          auto in = ListPackages(root + "/hotfolders/in");
          auto out = ListPackages(root + "/hotfolders/out");
          return in.ok() && in->empty() && out.ok() && out->empty();
        },
        10000))
        << root;
  }
}

// A scene written with absolute studio paths (examples/clock/clock_studio.pov
// reads its include file and texture from /studio/assets/clock and writes to
// /studio/renders/clock) renders unchanged inside render-co's I/O wrapper,
// and its frames equal the plain clock rendered at the studio.
TEST_F(OutsourcingTest, CentralPathSceneRendersInsideTheRemoteWrapperAndMatchesLocalPixels) {
  LocalSiteOptions studio, remote;
  studio.render_servers = remote.render_servers = 1;
  studio.probe = remote.probe = {"povray"};
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));
  const std::string dir = dir_.path() + "/central";
  ASSERT_TRUE(MakeDirs(dir + "/textures").ok());
  const std::string src = testing::SourceDir() + "/examples/clock/";
  for (const char* f : {"clock.pov", "clock_studio.pov", "clock_parts.inc", "textures/dial.png"}) {
    ASSERT_TRUE(LinkOrCopy(src + f, dir + "/" + f).ok());
  }
  WriteText(dir + "/job.toml",
            "name = \"central\"\nplacement = \"remote\"\nframes = \"1-8\"\nchunk_size = 4\n"
            "files = [\"clock.pov\", \"clock_parts.inc\", \"textures/dial.png\"]\n"
            "[package]\nname = \"povray\"\n"
            "[render]\nscene = \"clock_studio.pov\"\nwidth = 160\nheight = 120\n"
            "output = \"/studio/renders/clock/clock_####.png\"\n"
            "[[central]]\npath = \"/studio/assets/clock\"\nsource = \".\"\n");
  const std::string local = ClockJob("here", "placement = \"local\"");
  const int64_t local_id = Submit(studio_, local);
  const int64_t remote_id = Submit(studio_, dir + "/job.toml");
  pb::JobInfo here = Wait(studio_, local_id);
  pb::JobInfo there = Wait(studio_, remote_id);
  ASSERT_EQ(here.state(), "done") << here.error();
  ASSERT_EQ(there.state(), "done") << there.error();
  ASSERT_EQ(there.frame_info_size(), 8);  // the same animation clock as "here"
  for (const auto& f : there.frame_info()) {
    std::string why;
    EXPECT_EQ(BaseName(f.output()), "clock_000" + std::to_string(f.frame()) + ".png");
    EXPECT_TRUE(testing::SamePixels(
        f.output(), here.storage_dir() + "/frames/clock_000" + std::to_string(f.frame()) + ".png",
        &why))
        << f.frame() << ": " << why;
  }

  // At render-co: wrapped as a remote job, with the central paths mounted;
  // the chunk's output was collected from /studio/renders/clock into the
  // render server's secure location, and the results stored in the site's.
  std::vector<pb::JobInfo> remote_jobs = Jobs(remote_);
  ASSERT_EQ(remote_jobs.size(), 1u);
  const int64_t rid = remote_jobs[0].job_id();
  pb::JobInfo rj = Get(remote_, rid);
  EXPECT_NE(rj.sandbox().find("I/O wrapper (remote job); mounts: /job <- the job's files "
                              "(read-only), /studio/assets/clock <- . (read-only), "
                              "/studio/renders/clock (writable"),
            std::string::npos)
      << rj.sandbox();
  pb::LogsRequest lreq;
  lreq.set_job_id(rid);
  lreq.set_frame(1);
  pb::LogsResponse lresp;
  grpc::ClientContext lctx;
  ASSERT_TRUE(remote_.stub->GetLogs(&lctx, lreq, &lresp).ok());
  const std::string& log = lresp.text();
  for (const std::string& want :
       {std::string("(in the I/O wrapper as uid 2"), std::string("+O/studio/renders/clock/f.png"),
        std::string("sandbox: mount /studio/assets/clock <- "),
        std::string("sandbox: mount /studio/renders/clock <- tmpfs"),
        std::string("collected 4 file(s) written to /studio/renders/clock into the secure "
                    "location ")}) {
    EXPECT_NE(log.find(want), std::string::npos) << want << "\n" << log;
  }
  EXPECT_TRUE(PathExists(remote_.site->site_root() + "/secure/studio/" + std::to_string(rid) +
                         "/output/clock_0001.png"));
}

TEST_F(OutsourcingTest, AutoPlacementOutsourcesOnlyWhatNoLocalServerCanRender) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 1;
  remote.render_servers = 1;
  studio.probe = remote.probe = {"povray"};
  // Only render-co has the "slowcopy" command package.
  remote.render_server_extra = SlowCopyPackage(0);
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));

  const int64_t copy = Submit(studio_, CopyJob("copy", "1-3", "placement = \"auto\""));
  const int64_t clock = Submit(studio_, ClockJob("clock", "placement = \"auto\""));
  pb::JobInfo c = Get(studio_, copy);
  pb::JobInfo k = Get(studio_, clock);
  EXPECT_EQ(c.remote_site(), "render-co") << c.placement();
  EXPECT_NE(c.placement().find("has no package 'slowcopy'"), std::string::npos) << c.placement();
  EXPECT_EQ(k.remote_site(), "") << k.placement();
  EXPECT_EQ(k.queue(), "active");
  EXPECT_NE(k.placement().find("local slot(s) can render it"), std::string::npos) << k.placement();
  c = Wait(studio_, copy);
  k = Wait(studio_, clock);
  EXPECT_EQ(c.state(), "done") << c.error();
  EXPECT_EQ(k.state(), "done") << k.error();
  for (const auto& f : c.frame_info()) EXPECT_EQ(f.render_server().rfind("render-co/", 0), 0u);
  for (const auto& f : k.frame_info()) EXPECT_EQ(f.render_server(), "rs1");
}

TEST_F(OutsourcingTest, ResubmissionWithUnchangedTexturesSendsNoneOfTheirBytes) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 0;
  remote.render_servers = 1;
  remote.probe = {};
  remote.render_server_extra = SlowCopyPackage(0);
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));
  const int64_t texture = 3 << 20;

  const int64_t first = Submit(studio_, CopyJob("first", "1-2", "placement = \"remote\"", texture));
  ASSERT_EQ(Wait(studio_, first).state(), "done");
  const pb::CourierCounters c1 = Counters(studio_, "render-co");
  EXPECT_GE(c1.bytes_sent(), texture);
  EXPECT_EQ(c1.packages_sent(), 1);

  // Same texture (same seed), another job.
  const int64_t second =
      Submit(studio_, CopyJob("second", "1-2", "placement = \"remote\"", texture));
  ASSERT_EQ(Wait(studio_, second).state(), "done");
  const pb::CourierCounters c2 = Counters(studio_, "render-co");
  EXPECT_EQ(c2.packages_sent(), 2);
  // Only the new job description crossed the link; the texture and the
  // scene were already there.
  EXPECT_LT(c2.bytes_sent() - c1.bytes_sent(), 64 << 10);
  EXPECT_GE(c2.blobs_skipped() - c1.blobs_skipped(), 2);
  EXPECT_GE(c2.bytes_skipped() - c1.bytes_skipped(), texture);
}

TEST_F(OutsourcingTest, TransferResumesAfterTheRemoteScheduleServerIsKilled) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 0;
  remote.render_servers = 1;
  remote.probe = {};
  remote.render_server_extra = SlowCopyPackage(0);
  // 24 MiB at 8 MiB/s: the transfer takes about 3 s, long enough to cut.
  const int64_t texture = 24 << 20;
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote, "max_rate = \"8M\"\nchunk = \"256K\"\n"));

  const int64_t id = Submit(studio_, CopyJob("big", "1-2", "placement = \"remote\"", texture, 7));
  // Wait until part of the texture is at render-co, then kill its schedule
  // server (the other end of the link) and start it again.
  const std::string partial = remote_.site->site_root() + "/storage/blobs/partial";
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto names = ListDir(partial);
        if (!names.ok()) return false;
        for (const auto& n : *names) {
          struct stat st {};
          if (::stat((partial + "/" + n).c_str(), &st) == 0 && st.st_size > (4 << 20)) {
            return true;
          }
        }
        return false;
      },
      60000));
  remote_.site->StopScheduleServer(SIGKILL);
  ASSERT_TRUE(remote_.site->StartScheduleServer().ok());
  ASSERT_NO_FATAL_FAILURE(Connect(remote_));

  pb::JobInfo job = Wait(studio_, id);
  ASSERT_EQ(job.state(), "done") << job.error();
  EXPECT_EQ(job.frame_info_size(), 2);
  const pb::CourierCounters c = Counters(studio_, "render-co");
  // The part that had arrived was not sent again.
  EXPECT_GT(c.bytes_resumed(), 0);
  EXPECT_LT(c.bytes_sent(), texture + (1 << 20));
  EXPECT_GE(c.failures(), 1);
  // Exactly one job at render-co, done once.
  std::vector<pb::JobInfo> rj = Jobs(remote_);
  ASSERT_EQ(rj.size(), 1u);
  EXPECT_EQ(rj[0].state(), "done");
}

// Writes a job package by hand into render-co's hotfolders/in, then lets
// `spoil` damage it.
class HandDroppedPackages : public OutsourcingTest {
 protected:
  std::string Drop(const std::string& name, const std::function<void(const std::string&)>& spoil,
                   int64_t file_bytes = 1000) {
    const std::string staging = dir_.path() + "/staging";
    EXPECT_TRUE(MakeDirs(staging).ok());
    JobPackageManifest m;
    m.kind = JobPackageKind::kJob;
    m.name = name;
    m.origin_site = m.from_site = "studio";
    m.to_site = "render-co";
    m.client = "studio";
    m.origin_job_id = 1000 + static_cast<int64_t>(name.size());
    m.created_ms = 1;
    m.description = "job.toml";
    std::vector<JobPackageSource> sources;
    sources.push_back({"job.toml", "",
                       "name = \"x\"\nframes = \"1\"\nfiles = [\"tex.bin\"]\n[package]\nname = "
                       "\"slowcopy\"\n[render]\nscene = \"plate.png\"\noutput = \"o_#.png\"\n"});
    sources.push_back(
        {"files/plate.png", testing::SourceDir() + "/examples/clock/textures/dial.png", ""});
    sources.push_back({"files/tex.bin", "", std::string(static_cast<size_t>(file_bytes), 'x')});
    auto written = WritePackage(staging, m, sources);
    EXPECT_TRUE(written.ok()) << written.status().message();
    spoil(staging + "/" + name);
    const std::string in = remote_.site->site_root() + "/hotfolders/in/" + name;
    EXPECT_EQ(::rename((staging + "/" + name).c_str(), in.c_str()), 0);
    return remote_.site->site_root() + "/hotfolders/quarantine/" + name + ".reason.txt";
  }
  static std::string EditManifest(const std::string& dir, const std::string& from,
                                  const std::string& to) {
    auto text = ReadFile(dir + "/manifest.json");
    std::string s = text.ok() ? *text : "";
    auto pos = s.find(from);
    if (pos != std::string::npos) s.replace(pos, from.size(), to);
    WriteText(dir + "/manifest.json", s);
    return s;
  }
};

TEST_F(HandDroppedPackages, BadPackagesAreQuarantinedWithAReasonAndNeverRender) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 0;
  remote.render_servers = 1;
  remote.probe = {};
  remote.render_server_extra = SlowCopyPackage(0);
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote, "", "[hotfolders]\nmax_file = \"64K\"\n"));

  struct Case {
    std::string name;
    std::function<void(const std::string&)> spoil;
    int64_t bytes;
    std::string reason;  // expected in the reason file
  };
  std::vector<Case> cases = {
      {"truncated", [](const std::string& d) { ::truncate((d + "/files/tex.bin").c_str(), 10); },
       1000, "size"},
      {"tampered",
       [](const std::string& d) { WriteText(d + "/files/tex.bin", std::string(1000, 'y')); }, 1000,
       "SHA-256"},
      {"dotdot",
       [](const std::string& d) { EditManifest(d, "\"files/tex.bin\"", "\"../tex.bin\""); }, 1000,
       ".."},
      {"absolute",
       [](const std::string& d) { EditManifest(d, "\"files/tex.bin\"", "\"/etc/passwd\""); }, 1000,
       "absolute"},
      {"symlink",
       [](const std::string& d) {
         ::unlink((d + "/files/tex.bin").c_str());
         (void)::symlink("/etc/passwd", (d + "/files/tex.bin").c_str());
       },
       1000, "symlink"},
      {"oversized", [](const std::string&) {}, 100 << 10, "per-file limit"},
  };
  std::map<std::string, std::string> reason_files;
  for (const Case& c : cases) reason_files[c.name] = Drop(c.name, c.spoil, c.bytes);
  for (const Case& c : cases) {
    const std::string& rf = reason_files[c.name];
    ASSERT_TRUE(WaitUntil([&] { return PathExists(rf); }, 20000)) << c.name;
    auto text = ReadFile(rf);
    ASSERT_TRUE(text.ok());
    EXPECT_NE(text->find(c.reason), std::string::npos) << c.name << ": " << *text;
    EXPECT_TRUE(PathExists(remote_.site->site_root() + "/hotfolders/quarantine/" + c.name));
    EXPECT_FALSE(PathExists(remote_.site->site_root() + "/hotfolders/in/" + c.name));
  }
  // None of them became a job; the render server never saw them.
  EXPECT_TRUE(Jobs(remote_).empty());

  // A good package dropped by hand is ingested like one from the link.
  const std::string good_reason = Drop("good", [](const std::string&) {});
  ASSERT_TRUE(WaitUntil([&] { return Jobs(remote_).size() == 1; }, 20000));
  EXPECT_FALSE(PathExists(good_reason));
  EXPECT_EQ(Jobs(remote_)[0].origin_site(), "studio");

  // A job outsourced over the link and refused (over render-co's file size
  // limit) fails at the studio with render-co's reason.
  const int64_t id = Submit(studio_, CopyJob("toolarge", "1", "placement = \"remote\"", 200 << 10));
  pb::JobInfo job = Wait(studio_, id);
  EXPECT_EQ(job.state(), "failed");
  EXPECT_NE(job.error().find("render-co refused"), std::string::npos) << job.error();
  EXPECT_NE(job.error().find("per-file limit"), std::string::npos) << job.error();
}

TEST_F(OutsourcingTest, AWrongPeerSecretIsRefused) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 0;
  remote.render_servers = 0;
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote, "", "", "not-the-secret-of-the-studio"));
  const int64_t id = Submit(studio_, CopyJob("refused", "1", "placement = \"remote\""));
  ASSERT_TRUE(
      WaitUntil([&] { return PeerState(studio_, "render-co").state() == "refused"; }, 20000))
      << PeerState(studio_, "render-co").DebugString();
  // The package waits in hotfolders/out; nothing reached render-co.
  pb::JobInfo job = Get(studio_, id);
  EXPECT_EQ(job.state(), "queued");
  EXPECT_EQ(job.exchange(), "shipping");
  EXPECT_TRUE(Jobs(remote_).empty());
  auto log = ReadFile(remote_.site->log_path("schedule-server"));
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find("studio"), std::string::npos);
  EXPECT_NE(log->find("refused"), std::string::npos) << *log;
}

TEST_F(OutsourcingTest, CancelAtTheStudioCancelsTheJobAtTheRemoteSite) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 0;
  remote.render_servers = 1;
  remote.probe = {};
  remote.render_server_extra = SlowCopyPackage(30);
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));
  const int64_t id = Submit(studio_, CopyJob("long", "1-4", "placement = \"remote\""));
  ASSERT_TRUE(WaitUntil([&] { return Get(studio_, id).state() == "running"; }, 30000))
      << Get(studio_, id).DebugString();
  pb::JobRef ref;
  ref.set_job_id(id);
  pb::JobInfo info;
  grpc::ClientContext ctx;
  ASSERT_TRUE(studio_.stub->CancelJob(&ctx, ref, &info).ok());
  EXPECT_EQ(info.state(), "cancelled");
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto jobs = Jobs(remote_);
        return jobs.size() == 1 && jobs[0].state() == "cancelled";
      },
      30000));
  EXPECT_NE(Jobs(remote_)[0].error().find("cancelled by studio"), std::string::npos);
  EXPECT_EQ(Get(studio_, id).state(), "cancelled");
}

TEST_F(OutsourcingTest, NotificationsFireExactlyOncePerFinishedJob) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 1;
  studio.probe = {};
  studio.render_server_extra = SlowCopyPackage(0);
  remote.render_servers = 1;
  remote.probe = {};
  remote.render_server_extra = SlowCopyPackage(0);
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));

  httplib::Server hook;
  std::mutex mu;
  std::map<int64_t, int> posts;
  hook.Post("/done", [&](const httplib::Request& req, httplib::Response& res) {
    auto body = nlohmann::json::parse(req.body, nullptr, false);
    std::lock_guard<std::mutex> lock(mu);
    if (!body.is_discarded()) ++posts[body.value("job_id", int64_t{0})];
    res.status = 204;
  });
  const int port = hook.bind_to_any_port("127.0.0.1");
  std::thread server([&] { hook.listen_after_bind(); });
  const std::string marks = dir_.path() + "/marks";
  const std::string notify = "[[notify]]\nwebhook = \"http://127.0.0.1:" + std::to_string(port) +
                             "/done\"\ncommand = \"echo $FRAMEFLOW_JOB_ID >> " + marks + "\"\n";
  auto count = [&](int64_t id) {
    std::lock_guard<std::mutex> lock(mu);
    return posts[id];
  };
  auto lines = [&](int64_t id) {
    auto text = ReadFile(marks);
    int n = 0;
    if (!text.ok()) return 0;
    std::istringstream in(*text);
    std::string l;
    while (std::getline(in, l)) n += l == std::to_string(id);
    return n;
  };

  const int64_t outsourced =
      Submit(studio_, CopyJob("out", "1-2", "placement = \"remote\"", 0, 1, notify));
  const int64_t local =
      Submit(studio_, CopyJob("in", "1-2", "placement = \"local\"", 0, 1, notify));
  EXPECT_EQ(Wait(studio_, outsourced).state(), "done");
  EXPECT_EQ(Wait(studio_, local).state(), "done");
  ASSERT_TRUE(WaitUntil(
      [&] { return count(outsourced) && count(local) && lines(outsourced) && lines(local); },
      20000));

  // Restart the studio's schedule server; then a third job's notification
  // proves the notifier ran after the restart (it delivers in order, so a
  // repeated announcement of the first two would have come first).
  studio_.site->StopScheduleServer(SIGTERM);
  ASSERT_TRUE(studio_.site->StartScheduleServer().ok());
  ASSERT_NO_FATAL_FAILURE(Connect(studio_));
  const int64_t third =
      Submit(studio_, CopyJob("third", "1", "placement = \"local\"", 0, 1, notify));
  EXPECT_EQ(Wait(studio_, third).state(), "done");
  ASSERT_TRUE(WaitUntil([&] { return count(third) == 1 && lines(third) == 1; }, 20000));
  EXPECT_EQ(count(outsourced), 1);
  EXPECT_EQ(count(local), 1);
  EXPECT_EQ(lines(outsourced), 1);
  EXPECT_EQ(lines(local), 1);
  // render-co never announces the studio's job itself.
  hook.stop();
  server.join();
}

}  // namespace
}  // namespace ff
