// Two sites in two network namespaces joined by a veth pair: the studio and
// render-co, each a LocalSite whose schedule server and render servers run
// inside the site's namespace and listen on its veth address. The link
// between them is cut, made lossy and slow while a job package crosses it
// and while the outsourced job renders; the job must still come back once,
// complete and pixel-identical. Needs root (namespaces, nftables, tc).
#include <grpcpp/create_channel_posix.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <map>
#include <random>
#include <set>

#include "cli/local_site.h"
#include "net_faults.h"
#include "site_client.h"
#include "test_support.h"
#include "util/fs.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;
using testing::LinkShape;
using testing::NetPair;
using testing::TempDir;
using testing::WaitUntil;
using testing::WriteText;

std::string SlowCopyPackage(double seconds) {
  return "[[packages]]\nname = \"slowcopy\"\nversion = \"1.0\"\ncommand = \"/bin/sh -c 'sleep " +
         std::to_string(seconds) + " && cp \\\"$0\\\" \\\"$1\\\"' {scene} {output} {frame}\"\n";
}

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// What the test prints: which mechanism made the faults, and when.
void Say(const std::string& line) { std::cout << "[netfault] " << line << std::endl; }

class NetFaultTest : public ::testing::Test {
 protected:
  struct Site {
    NetPair::Side side;
    std::unique_ptr<LocalSite> site;
    std::unique_ptr<pb::ScheduleServer::Stub> stub;
    std::string address;  // its schedule server's, as in its address file
  };

  void SetUp() override {
    auto net = NetPair::Create();
    ASSERT_TRUE(net.ok()) << net.status().message();
    net_ = std::move(net).value();
    Say("link mechanism: " + net_->mechanism());
    RecordProperty("mechanism", net_->mechanism());
    started_ = std::chrono::steady_clock::now();
  }

  // Starts render-co in namespace b and the studio in namespace a, peers of
  // each other through their address files (which hold the veth addresses).
  void StartSites(LocalSiteOptions studio, LocalSiteOptions remote) {
    const std::string secret = LocalSite::RandomSecret();
    studio.binary = remote.binary = testing::Binary();
    studio.site_name = "studio";
    remote.site_name = "render-co";
    studio.listen = net_->address(NetPair::kA) + ":0";
    remote.listen = net_->address(NetPair::kB) + ":0";
    studio.exec_prefix = net_->ExecPrefix(NetPair::kA);
    remote.exec_prefix = net_->ExecPrefix(NetPair::kB);
    const std::string courier = "[courier]\npoll = \"200ms\"\nchunk = \"64K\"\n";
    studio.site_extra = LocalSite::PeerToml("render-co", remote_root(), secret) + courier;
    remote.site_extra = LocalSite::PeerToml("studio", studio_root(), secret) + courier;
    studio_.side = NetPair::kA;
    remote_.side = NetPair::kB;
    auto r = LocalSite::Start(remote_root(), remote);
    ASSERT_TRUE(r.ok()) << r.status().message();
    remote_.site = std::move(r).value();
    auto s = LocalSite::Start(studio_root(), studio);
    ASSERT_TRUE(s.ok()) << s.status().message();
    studio_.site = std::move(s).value();
    ASSERT_NO_FATAL_FAILURE(Connect(studio_, studio.render_servers));
    ASSERT_NO_FATAL_FAILURE(Connect(remote_, remote.render_servers));
  }

  // The test's channel to a site: a socket made inside the site's namespace
  // (gRPC would dial from its own threads, outside it). It reaches the
  // schedule server through the namespace's loopback, never the veth link,
  // so the faults never touch it.
  void Connect(Site& site, int render_servers) {
    auto text = ReadFile(LocalSite::AddressFileOf(site.site->root()));
    ASSERT_TRUE(text.ok()) << text.status().message();
    site.address = text->substr(0, text->find('\n'));
    ASSERT_EQ(site.address.rfind(net_->address(site.side) + ":", 0), 0u) << site.address;
    auto fd = net_->ConnectFrom(site.side, site.address);
    ASSERT_TRUE(fd.ok()) << fd.status().message();
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    site.stub = pb::ScheduleServer::NewStub(
        grpc::CreateCustomInsecureChannelFromFd(site.address, *fd, args));
    ASSERT_TRUE(WaitUntil(
        [&] {
          pb::ListHostsRequest req;
          pb::ListHostsResponse resp;
          grpc::ClientContext ctx;
          if (!site.stub->ListHosts(&ctx, req, &resp).ok()) return false;
          int up = 0;
          for (const auto& h : resp.hosts()) up += h.status() == "up";
          return up >= render_servers;
        },
        60000))
        << "render servers of " << site.site->root() << " did not register; see its logs/";
  }
  std::string studio_root() const { return dir_.path() + "/studio"; }
  std::string remote_root() const { return dir_.path() + "/render-co"; }

  int64_t Submit(Site& site, const std::string& description) {
    auto id = SubmitJob(site.stub.get(), description);
    EXPECT_TRUE(id.ok()) << id.status().message();
    return id.ok() ? *id : 0;
  }
  pb::JobInfo Wait(Site& site, int64_t id, int timeout_ms) {
    auto info = WaitForJob(site.stub.get(), id, false, timeout_ms);
    EXPECT_TRUE(info.ok()) << info.status().message();
    return Get(site, id);
  }
  pb::JobInfo Get(Site& site, int64_t id) {
    auto detail = GetJobInfo(site.stub.get(), id);
    return detail.ok() ? *detail : pb::JobInfo();
  }
  std::vector<pb::JobInfo> Jobs(Site& site) { return testing::AllJobs(site.stub.get()); }
  pb::PeerInfo PeerState(Site& site, const std::string& peer) {
    return testing::PeerOf(site.stub.get(), peer);
  }

  // examples/clock, 4 frames at 160x120, under dir_/<name>/; with
  // `texture_bytes` > 0 a random texture.bin of that size travels with it.
  std::string ClockJob(const std::string& name, const std::string& placement,
                       int64_t texture_bytes) {
    const std::string dir = dir_.path() + "/" + name;
    EXPECT_TRUE(MakeDirs(dir + "/textures").ok());
    const std::string src = testing::SourceDir() + "/examples/clock/";
    for (const char* f : {"clock.pov", "clock_parts.inc", "textures/dial.png"}) {
      EXPECT_TRUE(LinkOrCopy(src + f, dir + "/" + f).ok());
    }
    std::string files = "\"clock_parts.inc\", \"textures/dial.png\"";
    if (texture_bytes > 0) {
      std::string bytes(static_cast<size_t>(texture_bytes), '\0');
      std::mt19937_64 rng(static_cast<uint64_t>(::getpid()));
      for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        uint64_t v = rng();
        std::memcpy(&bytes[i], &v, 8);
      }
      WriteText(dir + "/textures/wood.bin", bytes);
      files += ", \"textures/wood.bin\"";
    }
    WriteText(dir + "/job.toml", "name = \"" + name + "\"\n" + placement +
                                     "\nframes = \"1-4\"\nchunk_size = 2\nfiles = [" + files +
                                     "]\n[package]\nname = \"povray\"\n"
                                     "[render]\nscene = \"clock.pov\"\nwidth = 160\n"
                                     "height = 120\noutput = \"frames/clock_####.png\"\n");
    return dir + "/job.toml";
  }

  // A slowcopy job of `frames`, one frame per chunk, under dir_/<name>/.
  std::string CopyJob(const std::string& name, const std::string& frames) {
    const std::string dir = dir_.path() + "/" + name;
    EXPECT_TRUE(MakeDirs(dir).ok());
    EXPECT_TRUE(
        LinkOrCopy(testing::SourceDir() + "/examples/clock/textures/dial.png", dir + "/plate.png")
            .ok());
    WriteText(dir + "/job.toml",
              "name = \"" + name + "\"\nplacement = \"remote\"\nframes = \"" + frames +
                  "\"\nchunk_size = 1\n[package]\nname = \"slowcopy\"\n"
                  "[render]\nscene = \"plate.png\"\noutput = \"out_####.png\"\n");
    return dir + "/job.toml";
  }

  static int CountNotes(const pb::JobInfo& j, const std::string& text) {
    int n = 0;
    for (const auto& e : j.history()) n += e.note().find(text) != std::string::npos;
    return n;
  }

  // Every file under `dir`, hidden ones included, relative to it.
  static std::vector<std::string> FilesUnder(const std::string& dir) {
    std::vector<std::string> out;
    auto names = ListDir(dir);
    if (!names.ok()) return out;
    for (const auto& n : *names) {
      const std::string path = dir + "/" + n;
      struct stat st {};
      if (::lstat(path.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        for (const auto& sub : FilesUnder(path)) out.push_back(n + "/" + sub);
        if (FilesUnder(path).empty()) out.push_back(n + "/");
      } else {
        out.push_back(n);
      }
    }
    return out;
  }

  // What both tests promise after the faults: the outsourced job came back
  // done, with each of its `frames` frames stored once, rendered at
  // render-co, whose one job for it is done; one result package ingested;
  // hot folders and partial blobs empty on both sides.
  void ExpectExactlyOnce(int64_t id, int frames) {
    pb::JobInfo job = Get(studio_, id);
    EXPECT_EQ(job.state(), "done") << job.error();
    EXPECT_EQ(job.exchange(), "returned");
    ASSERT_EQ(job.frame_info_size(), frames);
    std::set<int> seen;
    for (const auto& f : job.frame_info()) {
      EXPECT_EQ(f.state(), "done");
      EXPECT_TRUE(seen.insert(f.frame()).second) << "frame " << f.frame() << " twice";
      EXPECT_EQ(f.render_server().rfind("render-co/", 0), 0u) << f.render_server();
    }
    // One result package ingested, one delivery recorded.
    EXPECT_EQ(CountNotes(job, "placed on storage"), 1) << job.DebugString();
    EXPECT_EQ(CountNotes(job, "removed from the outsourced queue"), 1);
    // Each frame is stored once under the job's storage directory.
    std::vector<std::string> stored;
    for (const auto& f : FilesUnder(job.storage_dir())) {
      if (f.size() > 4 && f.substr(f.size() - 4) == ".png") stored.push_back(f);
    }
    EXPECT_EQ(stored.size(), static_cast<size_t>(frames)) << ::testing::PrintToString(stored);

    std::vector<pb::JobInfo> remote_jobs = Jobs(remote_);
    ASSERT_EQ(remote_jobs.size(), 1u) << "render-co holds the job more than once";
    EXPECT_EQ(remote_jobs[0].state(), "done");
    EXPECT_EQ(remote_jobs[0].origin_job_id(), id);
    EXPECT_EQ(CountNotes(Get(remote_, remote_jobs[0].job_id()), "received from studio"), 1);

    for (const Site* site : {&studio_, &remote_}) {
      const std::string root = site->site->site_root();
      EXPECT_TRUE(WaitUntil(
          [&] {
            return FilesUnder(root + "/hotfolders/in").empty() &&
                   FilesUnder(root + "/hotfolders/out").empty();
          },
          10000))
          << root << ": in " << ::testing::PrintToString(FilesUnder(root + "/hotfolders/in"))
          << " out " << ::testing::PrintToString(FilesUnder(root + "/hotfolders/out"));
      EXPECT_TRUE(FilesUnder(root + "/hotfolders/quarantine").empty()) << root;
      EXPECT_TRUE(FilesUnder(root + "/storage/blobs/partial").empty())
          << root << ": " << ::testing::PrintToString(FilesUnder(root + "/storage/blobs/partial"));
    }
  }

  // The bytes render-co holds of a blob still arriving (the largest
  // partial blob), 0 when none is.
  int64_t PartialBytes() {
    const std::string dir = remote_.site->site_root() + "/storage/blobs/partial";
    int64_t most = 0;
    for (const auto& f : FilesUnder(dir)) {
      struct stat st {};
      if (::stat((dir + "/" + f).c_str(), &st) == 0) most = std::max<int64_t>(most, st.st_size);
    }
    return most;
  }

  void Step(const std::string& what) {
    Say(std::to_string(Since(started_)).substr(0, 5) + " s: " + what);
  }

  // Destroyed in reverse: the sites stop before their namespaces go, and
  // the namespaces before the directory.
  TempDir dir_;
  std::unique_ptr<NetPair> net_;
  Site studio_;
  Site remote_;
  std::chrono::steady_clock::time_point started_;
};

// The link is cut while the courier streams a job package with a 4 MiB
// texture over a slow link; it comes back lossy and delayed, then clean. The
// transfer resumes where it stopped, and the job renders at render-co and
// returns once, with frames identical to the same job rendered at the studio.
TEST_F(NetFaultTest, CutMidTransferResumesAndTheJobReturnsOnce) {
  LocalSiteOptions studio, remote;
  studio.render_servers = remote.render_servers = 1;
  studio.probe = remote.probe = {"povray"};
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));
  // 8 Mbit/s each way: the texture takes about 4 s.
  ASSERT_TRUE(net_->Shape(LinkShape{8000, 0, 0}).ok());
  const int64_t texture = 4 << 20;

  const int64_t local_id = Submit(studio_, ClockJob("here", "placement = \"local\"", 0));
  const int64_t id = Submit(studio_, ClockJob("there", "placement = \"remote\"", texture));
  Step("submitted; link 8 Mbit/s");
  // Cut once part of the texture is stored at render-co. (The courier's
  // bytes_sent counts what gRPC accepted, socket buffers included: it runs
  // ahead of what arrived.)
  ASSERT_TRUE(WaitUntil(
      [&] {
        const int64_t held = PartialBytes();
        return held > (1 << 20) && held < texture - (1 << 20);
      },
      30000))
      << PartialBytes() << " bytes held; " << PeerState(studio_, "render-co").DebugString();
  ASSERT_TRUE(net_->Cut().ok());
  const int64_t held_at_cut = PartialBytes();
  Step("cut with " + std::to_string(held_at_cut) + " bytes of the texture at render-co, " +
       std::to_string(PeerState(studio_, "render-co").counters().bytes_sent()) + " sent");

  // The courier notices (its stream fails), and says so.
  const auto cut_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(
      WaitUntil([&] { return PeerState(studio_, "render-co").state() == "unreachable"; }, 45000))
      << PeerState(studio_, "render-co").DebugString();
  Step("courier reports render-co unreachable after " + std::to_string(Since(cut_at)) +
       " s: " + PeerState(studio_, "render-co").last_error());
  EXPECT_NE(Get(studio_, id).exchange(), "delivered");
  EXPECT_EQ(PartialBytes(), held_at_cut) << "bytes crossed a cut link";

  // Back, but losing 15% of the packets each way, with up to 200 ms of
  // delay; the transfer goes on through it.
  ASSERT_TRUE(net_->Shape(LinkShape{8000, 200, 15}).ok());
  ASSERT_TRUE(net_->Uncut().ok());
  Step("link back: 15% loss, 200 ms delay, 8 Mbit/s");
  ASSERT_TRUE(WaitUntil(
      [&] {
        return PartialBytes() > held_at_cut + (256 << 10) ||
               PeerState(studio_, "render-co").counters().packages_sent() > 0;
      },
      40000))
      << PartialBytes() << " bytes held; " << PeerState(studio_, "render-co").DebugString();
  ASSERT_TRUE(net_->Shape(LinkShape{}).ok());
  Step("link restored (job package delivered: " +
       std::to_string(PeerState(studio_, "render-co").counters().packages_sent()) +
       ", partial bytes at render-co: " + std::to_string(PartialBytes()) + ")");

  pb::JobInfo there = Wait(studio_, id, 60000);
  pb::JobInfo here = Wait(studio_, local_id, 60000);
  Step("job " + there.state());
  ASSERT_EQ(here.state(), "done") << here.error();
  ASSERT_EQ(there.state(), "done") << there.error();

  const pb::PeerInfo peer = PeerState(studio_, "render-co");
  const pb::CourierCounters& c = peer.counters();
  Step("courier: bytes_sent " + std::to_string(c.bytes_sent()) + ", bytes_resumed " +
       std::to_string(c.bytes_resumed()) + ", failures " + std::to_string(c.failures()));
  // The studio dialled render-co's veth address, from its address file.
  EXPECT_EQ(peer.address(), remote_.address);
  EXPECT_EQ(PeerState(remote_, "studio").address(), studio_.address);
  EXPECT_EQ(c.packages_sent(), 1);
  EXPECT_GE(c.failures(), 1);
  // What had arrived before the cut was not sent again.
  EXPECT_GE(c.bytes_resumed(), held_at_cut);
  EXPECT_LT(c.bytes_sent(), 2 * texture);

  ASSERT_NO_FATAL_FAILURE(ExpectExactlyOnce(id, 4));
  for (const auto& f : there.frame_info()) {
    std::string why;
    const std::string mine =
        here.storage_dir() + "/frames/clock_000" + std::to_string(f.frame()) + ".png";
    EXPECT_TRUE(testing::SamePixels(f.output(), mine, &why)) << f.frame() << ": " << why;
  }
  Step("done");
}

// The link is cut while render-co renders the outsourced job: the studio's
// progress polls fail, and the result package waits in render-co's
// hotfolders/out. Once the link is back (lossy) the results cross, and the
// job is done once at each site.
TEST_F(NetFaultTest, CutMidRenderDeliversTheResultsOnceAfterTheLinkReturns) {
  LocalSiteOptions studio, remote;
  studio.render_servers = 0;
  remote.render_servers = 1;
  remote.probe = {};
  remote.render_server_extra = SlowCopyPackage(1.5);
  ASSERT_NO_FATAL_FAILURE(StartSites(studio, remote));

  const int64_t id = Submit(studio_, CopyJob("copy", "1-4"));
  Step("submitted");
  // Rendering at render-co, as the studio sees it through its polls.
  ASSERT_TRUE(WaitUntil([&] { return Get(studio_, id).state() == "running"; }, 30000))
      << Get(studio_, id).DebugString();
  ASSERT_TRUE(net_->Cut().ok());
  std::vector<pb::JobInfo> at_cut = Jobs(remote_);
  ASSERT_EQ(at_cut.size(), 1u);
  EXPECT_LT(at_cut[0].frames_done(), 4) << "the link was cut after the render";
  Step("cut while rendering at render-co (" + std::to_string(at_cut[0].frames_done()) +
       " of 4 frames done there)");

  // render-co finishes and wants to send the results back; it cannot.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto jobs = Jobs(remote_);
        return jobs.size() == 1 && jobs[0].state() == "done";
      },
      30000));
  ASSERT_TRUE(
      WaitUntil([&] { return PeerState(remote_, "studio").state() == "unreachable"; }, 45000))
      << PeerState(remote_, "studio").DebugString();
  Step("render-co done; its courier reports the studio unreachable: " +
       PeerState(remote_, "studio").last_error());
  pb::JobInfo waiting = Get(studio_, id);
  EXPECT_NE(waiting.state(), "done");
  EXPECT_EQ(waiting.exchange(), "delivered");
  EXPECT_FALSE(FilesUnder(remote_.site->site_root() + "/hotfolders/out").empty());

  ASSERT_TRUE(net_->Shape(LinkShape{8000, 100, 10}).ok());
  ASSERT_TRUE(net_->Uncut().ok());
  const auto back = std::chrono::steady_clock::now();
  Step("link back: 10% loss, 100 ms delay, 8 Mbit/s");
  pb::JobInfo job = Wait(studio_, id, 60000);
  Step("job " + job.state() + " " + std::to_string(Since(back)) + " s after the link came back");
  ASSERT_EQ(job.state(), "done") << job.error();
  // Counted once render-co's courier has removed it from its out/, which
  // may be just after the studio ingested it.
  EXPECT_TRUE(WaitUntil(
      [&] { return PeerState(remote_, "studio").counters().packages_sent() == 1; }, 10000))
      << PeerState(remote_, "studio").DebugString();
  EXPECT_EQ(PeerState(remote_, "studio").address(), studio_.address);
  ASSERT_NO_FATAL_FAILURE(ExpectExactlyOnce(id, 4));
  // The frames are the scene file, copied.
  const std::string plate = dir_.path() + "/copy/plate.png";
  for (const auto& f : job.frame_info()) {
    std::string why;
    EXPECT_TRUE(testing::SamePixels(f.output(), plate, &why)) << f.frame() << ": " << why;
  }
  Step("done");
}

}  // namespace
}  // namespace ff
