// frameflow-chaos: rounds of real work on two sites on loopback ("studio",
// which renders locally and outsources, and "render-co") while schedule
// servers (with their couriers) and render servers are killed at random
// moments and restarted. After every round it checks the invariants of
// RELIABILITY.md and prints each violation with the seed that replays the
// round's plan.
//
//   frameflow-chaos [--rounds N] [--seed S] [--round-seed X] [--keep] [--dir D]
//
// The plan of a round (which daemon, when, which signal, how long it stays
// down; which jobs, when) is drawn from the round's seed before the round
// starts, so `--round-seed X` replays it; the daemons' timing is real, so a
// replay re-creates the same faults at the same offsets, not the same
// interleaving.
//
// Exit status: 0 when every round held every invariant, 1 otherwise, 2 on a
// harness error (a site that would not start).
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "cli/client_commands.h"
#include "cli/local_site.h"
#include "core/frame_set.h"
#include "render/image_check.h"
#include "test_support.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;
using Clock = std::chrono::steady_clock;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

int64_t MsSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The command "renderer" of the chaos jobs: it appends to a ledger (when it
// is given one) a start line, then looks for another live process rendering
// the same chunk of the same job — two attempts of one chunk at once — and
// records an overlap; it renders by copying the job's plate.png.
constexpr char kFrameScript[] = R"sh(out=$1 frame=$2 job=$3 chunk=$4 ledger=$5
me=$$
if [ "$ledger" != "-" ]; then
  echo "start $job $chunk $frame $me" >> "$ledger"
  for pid in $(awk -v j="$job" -v c="$chunk" -v me="$me" '$1=="start" && $2==j && $3==c && $5!=me {print $5}' "$ledger"); do
    if [ -r /proc/$pid/cmdline ] && tr '\0' ' ' < /proc/$pid/cmdline | grep -q " $job $chunk $ledger"; then
      echo "overlap $job $chunk $frame $me $pid" >> "$ledger"
    fi
  done
fi
sleep 0.$(( (frame * 7919 + job * 13) % 4 + 1 ))
cp "$(dirname "$0")/plate.png" "$out"
[ "$ledger" = "-" ] || echo "end $job $chunk $frame $me" >> "$ledger"
)sh";

enum class Victim {
  kStudioScheduleServer,
  kRemoteScheduleServer,
  kStudioRenderServer,
  kRemoteRenderServer
};

const char* VictimName(Victim v) {
  switch (v) {
    case Victim::kStudioScheduleServer:
      return "studio schedule server";
    case Victim::kRemoteScheduleServer:
      return "render-co schedule server";
    case Victim::kStudioRenderServer:
      return "studio render server";
    case Victim::kRemoteRenderServer:
      return "render-co render server";
  }
  return "?";
}

struct Event {
  enum Kind { kFault, kSubmit, kCourierFault } kind = kFault;
  int64_t at_ms = 0;
  Victim victim = Victim::kStudioRenderServer;
  int index = 0;  // render server index
  int signal = SIGKILL;
  int64_t down_ms = 0;  // how long it stays down before its restart
  std::string job;      // kSubmit: which job kind
};

struct JobSpec {
  std::string kind;  // povray-local | command-local | command-remote | povray-remote
  std::string description;
  int64_t id = 0;
};

struct Totals {
  int rounds = 0;
  std::map<std::string, int> kills;  // by victim and signal
  int jobs = 0;
  int jobs_done = 0;
  int jobs_failed = 0;
  int frames_verified = 0;
  int rerendered_frames = 0;
  int submits_refused = 0;
  int violations = 0;
  std::vector<uint64_t> failing_seeds;
};

constexpr int kStudioServers = 2;
constexpr int kRemoteServers = 2;
constexpr int kWidth = 160;
constexpr int kHeight = 120;

class Round {
 public:
  Round(uint64_t seed, int number, std::string dir, std::ostream& log)
      : seed_(seed), number_(number), dir_(std::move(dir)), log_(log), rng_(seed) {}

  // Runs the round; returns false on a harness error (not an invariant).
  bool Run(Totals& totals);
  const std::vector<std::string>& violations() const { return violations_; }

 private:
  void Violation(const std::string& what) {
    violations_.push_back(what);
    log_ << "  VIOLATION: " << what << "\n";
  }
  void Note(const std::string& what) {
    events_ << MsSince(start_) << " ms: " << what << "\n";
    events_.flush();
  }
  std::string PrepareJob(const std::string& kind, int n);
  void Plan();
  bool StartSites();
  void Apply(const Event& e, Totals& totals);
  void Submit(JobSpec& job, Totals& totals);
  std::unique_ptr<pb::ScheduleServer::Stub> Stub(LocalSite& site);
  bool WaitForJobs();
  void CheckInvariants(Totals& totals);
  void CheckJob(pb::ScheduleServer::Stub* studio, const JobSpec& spec, Totals& totals);
  void CheckDatabase(const std::string& site_name, const std::string& db_path);
  void CheckLedger(Totals& totals);
  void CheckNoLeftovers(const std::string& site_name, const std::string& site_root);
  LocalSite& SiteOf(Victim v) {
    return (v == Victim::kStudioScheduleServer || v == Victim::kStudioRenderServer) ? *studio_
                                                                                    : *remote_;
  }

  const uint64_t seed_;
  const int number_;
  const std::string dir_;
  std::ostream& log_;
  std::mt19937_64 rng_;
  std::ofstream events_;
  Clock::time_point start_;
  std::vector<Event> plan_;
  std::vector<JobSpec> jobs_;
  std::unique_ptr<LocalSite> studio_;
  std::unique_ptr<LocalSite> remote_;
  std::vector<std::string> violations_;
  std::map<std::string, std::vector<uint8_t>>* reference_ = nullptr;

 public:
  void set_reference(std::map<std::string, std::vector<uint8_t>>* r) { reference_ = r; }
};

std::string Round::PrepareJob(const std::string& kind, int n) {
  const std::string name = kind + "-" + std::to_string(n);
  const std::string dir = dir_ + "/jobs/" + name;
  (void)MakeDirs(dir + "/textures");
  const std::string src = testing::SourceDir() + "/examples/clock/";
  const bool remote = kind.find("remote") != std::string::npos;
  const std::string placement = remote ? "placement = \"remote\"\n" : "placement = \"local\"\n";
  if (kind.rfind("povray", 0) == 0) {
    for (const char* f : {"clock.pov", "clock_parts.inc", "textures/dial.png"}) {
      (void)LinkOrCopy(src + f, dir + "/" + f);
    }
    const int frames = remote ? 4 : 6;
    testing::WriteText(dir + "/job.toml",
                       "name = \"" + name + "\"\n" + placement + "frames = \"1-" +
                           std::to_string(frames) +
                           "\"\nchunk_size = 2\n"
                           "files = [\"clock_parts.inc\", \"textures/dial.png\"]\n"
                           "[package]\nname = \"povray\"\n[render]\nscene = \"clock.pov\"\n"
                           "width = " +
                           std::to_string(kWidth) + "\nheight = " + std::to_string(kHeight) +
                           "\noutput = \"frames/clock_####.png\"\n");
  } else {
    (void)LinkOrCopy(src + "textures/dial.png", dir + "/plate.png");
    testing::WriteText(dir + "/frame.sh", kFrameScript);
    std::string files = "files = [\"plate.png\"";
    if (remote) {
      // New bytes every round, so every round ships a real transfer.
      std::string bytes(static_cast<size_t>(1 << 20) + (rng_() % (2 << 20)), '\0');
      std::mt19937_64 fill(rng_());
      for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        uint64_t v = fill();
        std::memcpy(&bytes[i], &v, 8);
      }
      testing::WriteText(dir + "/texture.bin", bytes);
      files += ", \"texture.bin\"";
    }
    files += "]\n";
    const int frames = remote ? 8 : 24;
    testing::WriteText(dir + "/job.toml",
                       "name = \"" + name + "\"\n" + placement + "frames = \"1-" +
                           std::to_string(frames) + "\"\nchunk_size = " + (remote ? "2" : "3") +
                           "\n" + files +
                           "[package]\nname = \"chaoscmd\"\n[render]\nscene = \"frame.sh\"\n"
                           "output = \"out/frame_####.png\"\n");
  }
  return dir + "/job.toml";
}

void Round::Plan() {
  // Jobs at the start; every other round also an outsourced POV-Ray job.
  for (const char* k : {"povray-local", "command-local", "command-remote"}) {
    Event e;
    e.kind = Event::kSubmit;
    e.job = k;
    plan_.push_back(e);
  }
  if (rng_() % 2) {
    Event e;
    e.kind = Event::kSubmit;
    e.job = "povray-remote";
    plan_.push_back(e);
  }
  // The courier fault: the studio's (or render-co's) schedule server killed
  // while the outsourced job's files are on the wire.
  {
    Event e;
    e.kind = Event::kCourierFault;
    e.victim = rng_() % 3 ? Victim::kStudioScheduleServer : Victim::kRemoteScheduleServer;
    e.down_ms = static_cast<int64_t>(rng_() % 800);
    plan_.push_back(e);
  }
  // Random faults over 4-10 s, about one every 1.2 s; a late submission.
  const int64_t chaos_ms = 4000 + static_cast<int64_t>(rng_() % 6000);
  std::exponential_distribution<double> gap(1.0 / 1200.0);
  int64_t t = 300;
  while (true) {
    t += static_cast<int64_t>(gap(rng_));
    if (t > chaos_ms) break;
    Event e;
    e.at_ms = t;
    const int r = static_cast<int>(rng_() % 100);
    if (r < 40) {
      e.victim = Victim::kStudioRenderServer;
      e.index = static_cast<int>(rng_() % kStudioServers);
    } else if (r < 65) {
      e.victim = Victim::kRemoteRenderServer;
      e.index = static_cast<int>(rng_() % kRemoteServers);
    } else if (r < 85) {
      e.victim = Victim::kStudioScheduleServer;
    } else {
      e.victim = Victim::kRemoteScheduleServer;
    }
    e.signal = rng_() % 100 < 15 ? SIGTERM : SIGKILL;
    e.down_ms = static_cast<int64_t>(rng_() % 1500);
    plan_.push_back(e);
  }
  Event late;
  late.kind = Event::kSubmit;
  late.at_ms = static_cast<int64_t>(rng_() % static_cast<uint64_t>(chaos_ms));
  late.job = rng_() % 2 ? "command-local" : "command-remote";
  plan_.push_back(late);
  std::stable_sort(plan_.begin(), plan_.end(),
                   [](const Event& a, const Event& b) { return a.at_ms < b.at_ms; });
}

bool Round::StartSites() {
  const std::string secret = LocalSite::RandomSecret();
  const std::string studio_root = dir_ + "/studio";
  const std::string remote_root = dir_ + "/render-co";
  auto command_package = [](const std::string& ledger) {
    return "[[packages]]\nname = \"chaoscmd\"\nversion = \"1.0\"\ncommand = \"/bin/sh {scene} "
           "{output} {frame} {job} {chunk} " +
           ledger + "\"\n";
  };
  const std::string ledger = dir_ + "/ledger.txt";
  testing::WriteText(ledger, "");
  ::chmod(ledger.c_str(), 0666);  // plain chunks run as their slot's uid

  LocalSiteOptions remote;
  remote.binary = testing::Binary();
  remote.site_name = "render-co";
  remote.render_servers = kRemoteServers;
  remote.slots_per_server = 2;
  remote.heartbeat_timeout = "2s";
  remote.heartbeat_interval = "400ms";
  remote.reconnect_grace = "2s";
  remote.probe = {"povray"};
  remote.site_extra =
      LocalSite::PeerToml("studio", studio_root, secret) + "[courier]\npoll = \"200ms\"\n";
  // Inside render-co's I/O wrapper the ledger is out of reach: no ledger.
  remote.render_server_extra = command_package("-");
  LocalSiteOptions studio = remote;
  studio.site_name = "studio";
  studio.render_servers = kStudioServers;
  studio.site_extra = LocalSite::PeerToml("render-co", remote_root, secret) +
                      "[courier]\npoll = \"200ms\"\nmax_rate = \"8M\"\n"
                      "[sandbox]\nlocal_jobs = \"plain\"\n";
  studio.render_server_extra = command_package(ledger);
  auto r = LocalSite::Start(remote_root, remote);
  if (!r.ok()) {
    log_ << "  cannot start render-co: " << r.status().message() << "\n";
    return false;
  }
  remote_ = std::move(r).value();
  auto s = LocalSite::Start(studio_root, studio);
  if (!s.ok()) {
    log_ << "  cannot start the studio: " << s.status().message() << "\n";
    return false;
  }
  studio_ = std::move(s).value();
  for (auto* site : {studio_.get(), remote_.get()}) {
    Status st = site->WaitForRenderServers(2, 60000);
    if (!st.ok()) {
      log_ << "  " << st.message() << "\n";
      return false;
    }
  }
  return true;
}

std::unique_ptr<pb::ScheduleServer::Stub> Round::Stub(LocalSite& site) {
  auto stub = site.client().Connect();
  return stub.ok() ? std::move(stub).value() : nullptr;
}

void Round::Submit(JobSpec& job, Totals& totals) {
  auto stub = Stub(*studio_);
  Result<int64_t> id = stub ? SubmitJob(stub.get(), job.description)
                            : Result<int64_t>(Unavailable("no schedule server address"));
  if (id.ok()) {
    job.id = *id;
    Note("submitted " + job.kind + " as job " + std::to_string(job.id));
  } else {
    // Not accepted (the schedule server was down): nothing is owed for it.
    ++totals.submits_refused;
    Note("submission of " + job.kind + " refused: " + id.status().message());
  }
}

void Round::Apply(const Event& e, Totals& totals) {
  LocalSite& site = SiteOf(e.victim);
  const bool schedule_server =
      e.victim == Victim::kStudioScheduleServer || e.victim == Victim::kRemoteScheduleServer;
  const std::string what = std::string(VictimName(e.victim)) +
                           (schedule_server ? "" : " rs" + std::to_string(e.index + 1));
  const std::string sig = e.signal == SIGKILL ? "SIGKILL" : "SIGTERM";
  Note(sig + " " + what + ", down " + std::to_string(e.down_ms) + " ms");
  ++totals.kills[std::string(VictimName(e.victim)) + " " + sig];
  if (schedule_server) {
    site.StopScheduleServer(e.signal);
  } else {
    site.StopRenderServer(e.index, e.signal);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(e.down_ms));  // the outage itself
  Status st = schedule_server ? site.StartScheduleServer() : site.StartRenderServer(e.index);
  if (!st.ok()) Violation("restarting the " + what + " failed: " + st.message());
}

bool Round::WaitForJobs() {
  const auto deadline = Clock::now() + std::chrono::seconds(240);
  while (Clock::now() < deadline) {
    auto stub = Stub(*studio_);
    bool all_ended = stub != nullptr;
    for (const auto& j : jobs_) {
      if (!all_ended || j.id == 0) continue;
      auto info = GetJobInfo(stub.get(), j.id);
      if (!info.ok() ||
          (info->state() != "done" && info->state() != "failed" && info->state() != "cancelled")) {
        all_ended = false;
      }
    }
    if (all_ended) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return false;
}

bool Round::Run(Totals& totals) {
  (void)MakeDirs(dir_);
  ::chmod(dir_.c_str(), 0755);  // plain chunks' slot uids reach their work dirs
  events_.open(dir_ + "/events.log");
  Plan();
  for (const auto& e : plan_) {
    if (e.kind == Event::kSubmit) {
      jobs_.push_back({e.job, PrepareJob(e.job, static_cast<int>(jobs_.size()) + 1), 0});
    }
  }
  if (!StartSites()) return false;
  start_ = Clock::now();
  size_t next_job = 0;
  for (const auto& e : plan_) {
    const int64_t wait = e.at_ms - MsSince(start_);
    if (wait > 0) std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    if (e.kind == Event::kSubmit) {
      Submit(jobs_[next_job++], totals);
    } else if (e.kind == Event::kCourierFault) {
      // Strike while the studio's courier is sending the outsourced job.
      bool sending = testing::WaitUntil(
          [&] {
            auto stub = Stub(*studio_);
            if (!stub) return false;
            pb::ListPeersRequest req;
            pb::ListPeersResponse resp;
            grpc::ClientContext ctx;
            ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
            if (!stub->ListPeers(&ctx, req, &resp).ok()) return false;
            for (const auto& p : resp.peers()) {
              if (p.counters().bytes_sent() > 0) return true;
            }
            return false;
          },
          20000);
      Note(sending ? "the courier is sending" : "the courier never started sending");
      Event fault = e;
      fault.kind = Event::kFault;
      fault.signal = SIGKILL;
      Apply(fault, totals);
    } else {
      Apply(e, totals);
    }
  }
  Note("chaos over; waiting for every accepted job");
  if (!WaitForJobs()) {
    auto stub = Stub(*studio_);
    for (const auto& j : jobs_) {
      if (j.id == 0 || !stub) continue;
      auto info = GetJobInfo(stub.get(), j.id);
      if (info.ok() && info->state() != "done" && info->state() != "failed") {
        Violation("job " + std::to_string(j.id) + " (" + j.kind +
                  ") neither completed nor failed within 240 s of the last fault: state " +
                  info->state() + ", queue " + info->queue() + ", exchange '" + info->exchange() +
                  "', waiting: '" + info->waiting_reason() + "'");
      }
    }
  }
  Note("checking invariants");
  CheckInvariants(totals);
  return true;
}

// ------------------------------------------------------------ invariants ---

void Round::CheckInvariants(Totals& totals) {
  auto studio = Stub(*studio_);
  if (!studio) {
    Violation("the studio's schedule server is unreachable after the round");
    return;
  }
  for (const auto& j : jobs_) {
    if (j.id == 0) continue;
    ++totals.jobs;
    CheckJob(studio.get(), j, totals);
  }
  // Jobs the studio holds that the harness never got an id for (a
  // submission whose answer was lost) are owed too.
  pb::ListJobsRequest req;
  req.set_include_finished(true);
  pb::ListJobsResponse resp;
  grpc::ClientContext ctx;
  if (studio->ListJobs(&ctx, req, &resp).ok()) {
    std::set<int64_t> known;
    for (const auto& j : jobs_) known.insert(j.id);
    for (const auto& j : resp.jobs()) {
      if (!known.count(j.job_id()) && j.state() != "done" && j.state() != "failed") {
        Violation("job " + std::to_string(j.job_id()) + " the harness never saw accepted is " +
                  j.state());
      }
    }
  }
  // render-co: exactly one remote job per outsourced studio job, all ended.
  if (auto remote = Stub(*remote_)) {
    pb::ListJobsResponse rj;
    grpc::ClientContext rctx;
    if (remote->ListJobs(&rctx, req, &rj).ok()) {
      std::map<int64_t, int> per_origin;
      for (const auto& j : rj.jobs()) {
        ++per_origin[j.origin_job_id()];
        if (j.state() != "done" && j.state() != "failed" && j.state() != "cancelled") {
          Violation("render-co job " + std::to_string(j.job_id()) + " is still " + j.state());
        }
      }
      for (const auto& [origin, n] : per_origin) {
        if (n > 1) {
          Violation("render-co holds " + std::to_string(n) + " jobs for studio job " +
                    std::to_string(origin));
        }
      }
    }
  } else {
    Violation("render-co's schedule server is unreachable after the round");
  }
  CheckLedger(totals);
  // Hot folders drain asynchronously (results are returned, then removed).
  for (auto* site : {studio_.get(), remote_.get()}) {
    const std::string root = site->site_root();
    testing::WaitUntil(
        [&] {
          for (const char* d : {"/hotfolders/in", "/hotfolders/out"}) {
            auto entries = ListDir(root + d);
            if (entries.ok() && !entries->empty()) return false;
          }
          return true;
        },
        30000);
  }
  // A last word from every schedule server (batched writes flushed) before
  // the databases are read: stop them gracefully.
  studio_->StopScheduleServer(SIGTERM);
  remote_->StopScheduleServer(SIGTERM);
  CheckDatabase("studio", studio_->site_root() + "/db/frameflow.db");
  CheckDatabase("render-co", remote_->site_root() + "/db/frameflow.db");
  CheckNoLeftovers("studio", studio_->site_root());
  CheckNoLeftovers("render-co", remote_->site_root());
}

void Round::CheckJob(pb::ScheduleServer::Stub* studio, const JobSpec& spec, Totals& totals) {
  const std::string job = "job " + std::to_string(spec.id) + " (" + spec.kind + ")";
  auto info = GetJobInfo(studio, spec.id);
  if (!info.ok()) {
    Violation(job + " was accepted but the studio cannot show it: " + info.status().message());
    return;
  }
  if (info->state() == "failed") {
    ++totals.jobs_failed;
    if (info->error().empty()) Violation(job + " failed without a reason");
    log_ << "  " << job << " failed: " << info->error() << "\n";
    return;
  }
  if (info->state() != "done") return;  // reported by WaitForJobs
  ++totals.jobs_done;
  if (info->frames_done() != info->frames_total() || info->frames_running() != 0 ||
      info->frames_failed() != 0) {
    Violation(job + " is done with counters " + std::to_string(info->frames_done()) + "/" +
              std::to_string(info->frames_total()) + " done, " +
              std::to_string(info->frames_running()) + " running, " +
              std::to_string(info->frames_failed()) + " failed");
  }
  auto frames = FrameSet::Parse(info->frames());
  if (!frames.ok()) {
    Violation(job + ": its frame set '" + info->frames() + "' does not parse");
    return;
  }
  // Every frame exactly once in storage, as recorded, with valid pixels.
  std::map<int64_t, const pb::FrameInfo*> by_frame;
  for (const auto& f : info->frame_info()) {
    if (by_frame.count(f.frame()))
      Violation(job + ": frame " + std::to_string(f.frame()) + " twice");
    by_frame[f.frame()] = &f;
  }
  const std::string storage = info->storage_dir();
  std::set<std::string> expected_files;
  const bool povray = spec.kind.rfind("povray", 0) == 0;
  const std::string plate = ReadAll(testing::SourceDir() + "/examples/clock/textures/dial.png");
  for (int64_t frame : frames->frames()) {
    auto it = by_frame.find(frame);
    if (it == by_frame.end() || it->second->state() != "done" || it->second->output().empty()) {
      Violation(job + ": frame " + std::to_string(frame) + " is not done in storage");
      continue;
    }
    const pb::FrameInfo& f = *it->second;
    // `output` is absolute (under the job's storage directory) or relative
    // to the site's storage root.
    const std::string path =
        f.output()[0] == '/' ? f.output() : studio_->site_root() + "/storage/" + f.output();
    expected_files.insert(path);
    std::string bytes = ReadAll(path);
    if (bytes.empty()) {
      Violation(job + ": frame " + std::to_string(frame) + " missing at " + path);
      continue;
    }
    if (Sha256Hex(bytes) != f.sha256() || static_cast<int64_t>(bytes.size()) != f.size()) {
      Violation(job + ": frame " + std::to_string(frame) + " at " + path +
                " differs from its recorded checksum/size");
    }
    if (povray) {
      auto img = ReadPngRgba(path);
      if (!img.ok() || img->width != kWidth || img->height != kHeight) {
        Violation(job + ": frame " + std::to_string(frame) + " is not a valid " +
                  std::to_string(kWidth) + "x" + std::to_string(kHeight) +
                  " PNG: " + (img.ok() ? "wrong size" : img.status().message()));
      } else if (reference_) {
        // The animation clock depends on the frame range: key by both.
        auto [ref, fresh] =
            reference_->emplace(info->frames() + "@" + std::to_string(frame), img->rgba);
        if (!fresh && ref->second != img->rgba) {
          Violation(job + ": frame " + std::to_string(frame) +
                    " differs in pixels from the same frame rendered earlier");
        }
      }
    } else if (bytes != plate) {
      Violation(job + ": frame " + std::to_string(frame) + " is not the expected image");
    }
    ++totals.frames_verified;
  }
  // Nothing else in the job's storage but its frames and logs.
  std::vector<std::string> stack = {storage};
  while (!stack.empty()) {
    const std::string d = stack.back();
    stack.pop_back();
    auto entries = ListDir(d);
    if (!entries.ok()) continue;
    for (const auto& name : *entries) {
      const std::string p = d + "/" + name;
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      if (S_ISDIR(st.st_mode)) {
        if (name != "logs") stack.push_back(p);
        continue;
      }
      if (!expected_files.count(p)) Violation(job + ": unexpected file in storage: " + p);
    }
  }
}

void Round::CheckLedger(Totals& totals) {
  std::ifstream in(dir_ + "/ledger.txt");
  std::string line;
  std::map<std::string, int> ends;  // "job frame" -> renders finished
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string what, job, chunk, frame;
    ls >> what >> job >> chunk >> frame;
    if (what == "overlap") {
      Violation("studio job " + job + " chunk " + chunk + " ran on two slots at once (frame " +
                frame + "): " + line);
    } else if (what == "end") {
      ++ends[job + " " + frame];
    }
  }
  for (const auto& [k, n] : ends) {
    if (n > 1) totals.rerendered_frames += n - 1;
  }
}

void Round::CheckDatabase(const std::string& site_name, const std::string& db_path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    Violation(site_name + ": cannot open " + db_path);
    sqlite3_close(db);
    return;
  }
  auto rows = [&](const char* sql) {
    std::vector<std::string> out;
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
      Violation(site_name + ": query failed: " + sqlite3_errmsg(db));
      return out;
    }
    while (sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int i = 0; i < sqlite3_column_count(st); ++i) {
        const unsigned char* t = sqlite3_column_text(st, i);
        row += (i ? " " : "") + std::string(t ? reinterpret_cast<const char*>(t) : "");
      }
      out.push_back(row);
    }
    sqlite3_finalize(st);
    return out;
  };
  // Each query lists the rows that break an invariant.
  static const struct {
    const char* sql;
    const char* what;
  } kChecks[] = {
      // Frame and chunk states agree with their job's.
      {"SELECT j.id, j.state, f.frame, f.state FROM frames f JOIN jobs j ON j.id = f.job_id "
       "WHERE j.state IN ('done','failed','cancelled') AND f.state IN ('queued','running')",
       "finished job with an unfinished frame (job state frame state)"},
      {"SELECT j.id, j.state, c.idx, c.state FROM chunks c JOIN jobs j ON j.id = c.job_id "
       "WHERE j.state IN ('done','failed','cancelled') AND c.state IN ('queued','running')",
       "finished job with an unfinished chunk (job state chunk state)"},
      {"SELECT id, state FROM jobs WHERE state = 'done' AND id IN "
       "(SELECT job_id FROM frames WHERE state != 'done')",
       "done job with frames not done"},
      // A done frame has a stored output.
      {"SELECT job_id, frame FROM frames WHERE state = 'done' AND "
       "(output_path = '' OR sha256 = '')",
       "done frame without a stored output"},
      // Queue membership: finished jobs are in no queue.
      {"SELECT id, state, queue FROM jobs WHERE state IN ('done','failed','cancelled') AND "
       "queue != ''",
       "finished job still in a queue (id state queue)"},
      // One slot, one chunk: what runs where is durable in the chunk rows; the
      // slot rows only ever say idle or down.
      {"SELECT slot, COUNT(*) FROM chunks WHERE state = 'running' GROUP BY slot "
       "HAVING COUNT(*) > 1",
       "several running chunks on one slot (slot count)"},
      {"SELECT id, state, current_job FROM slots WHERE state = 'busy'",
       "a slot row says busy after the round"},
  };
  for (const auto& check : kChecks) {
    for (const auto& r : rows(check.sql)) Violation(site_name + ": " + check.what + ": " + r);
  }
  sqlite3_close(db);
}

void Round::CheckNoLeftovers(const std::string& site_name, const std::string& site_root) {
  for (const char* d : {"hotfolders/in", "hotfolders/out", "hotfolders/quarantine"}) {
    auto entries = ListDir(site_root + "/" + d);
    if (!entries.ok()) continue;
    for (const auto& e : *entries) {
      Violation(site_name + ": left in " + d + ": " + e);
    }
  }
  // Temporary or half-written files anywhere in storage.
  std::vector<std::string> stack = {site_root + "/storage"};
  while (!stack.empty()) {
    const std::string d = stack.back();
    stack.pop_back();
    auto entries = ListDir(d);
    if (!entries.ok()) continue;
    for (const auto& name : *entries) {
      const std::string p = d + "/" + name;
      struct stat st {};
      if (::lstat(p.c_str(), &st) != 0) continue;
      const bool temp_dir = p.find("/blobs/tmp/") != std::string::npos ||
                            p.find("/blobs/partial/") != std::string::npos;
      if (name[0] == '.' || temp_dir) {
        Violation(site_name + ": temporary or partial file left in storage: " + p);
      }
      if (S_ISDIR(st.st_mode)) stack.push_back(p);
    }
  }
}

int Main(int argc, char** argv) {
  int rounds = 1;
  uint64_t seed = static_cast<uint64_t>(::time(nullptr));
  uint64_t round_seed = 0;
  bool keep = false;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "frameflow-chaos: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--rounds") {
      rounds = std::stoi(value());
    } else if (a == "--seed") {
      seed = std::stoull(value());
    } else if (a == "--round-seed") {
      round_seed = std::stoull(value());
      rounds = 1;
    } else if (a == "--keep") {
      keep = true;
    } else if (a == "--dir") {
      dir = value();
    } else {
      std::cerr << "usage: frameflow-chaos [--rounds N] [--seed S] [--round-seed X] [--keep] "
                   "[--dir D]\n";
      return 2;
    }
  }
  if (dir.empty()) {
    char tmpl[] = "/tmp/ff-chaos-XXXXXX";
    if (!::mkdtemp(tmpl)) {
      std::perror("mkdtemp");
      return 2;
    }
    dir = tmpl;
  }
  (void)MakeDirs(dir);
  ::chmod(dir.c_str(), 0755);
  ::signal(SIGPIPE, SIG_IGN);
  std::cout << "frameflow-chaos: " << rounds << " round(s), seed " << seed << ", in " << dir
            << std::endl;
  Totals totals;
  std::map<std::string, std::vector<uint8_t>> reference;
  const auto t0 = Clock::now();
  int harness_errors = 0;
  for (int r = 1; r <= rounds; ++r) {
    const uint64_t s =
        round_seed ? round_seed : SplitMix(SplitMix(seed) + static_cast<uint64_t>(r));
    const std::string round_dir = dir + "/round-" + std::to_string(r);
    std::ostringstream log;
    const auto rt = Clock::now();
    bool ok;
    std::vector<std::string> violations;
    {
      Round round(s, r, round_dir, log);
      round.set_reference(&reference);
      ok = round.Run(totals);
      violations = round.violations();
    }  // the sites stop here
    ++totals.rounds;
    totals.violations += static_cast<int>(violations.size());
    if (!violations.empty()) totals.failing_seeds.push_back(s);
    if (!ok) ++harness_errors;
    std::cout << "round " << r << " seed " << s << ": "
              << (!ok                  ? "HARNESS ERROR"
                  : violations.empty() ? "ok"
                                       : "VIOLATIONS")
              << " (" << MsSince(rt) / 1000.0 << " s)\n"
              << log.str();
    if (!violations.empty() || !ok) {
      std::cout << "  replay: frameflow-chaos --round-seed " << s
                << " --keep   (events: " << round_dir << "/events.log)\n";
    } else if (!keep) {
      (void)RemoveAll(round_dir);
    }
    std::cout.flush();
  }
  std::cout << "\nsummary: " << totals.rounds << " rounds in " << MsSince(t0) / 1000
            << " s; faults:";
  int faults = 0;
  for (const auto& [k, n] : totals.kills) {
    std::cout << " " << k << " x" << n << ";";
    faults += n;
  }
  std::cout << " total " << faults << "\n  jobs accepted " << totals.jobs << ", done "
            << totals.jobs_done << ", failed with a reason " << totals.jobs_failed
            << "; submissions refused while the studio was down " << totals.submits_refused
            << "\n  frames verified in storage " << totals.frames_verified
            << "; frames rendered again after a fault (not stored twice) "
            << totals.rerendered_frames << "\n  invariant violations " << totals.violations << "\n";
  for (uint64_t s : totals.failing_seeds) std::cout << "  failing round seed: " << s << "\n";
  if (!keep && totals.violations == 0 && harness_errors == 0) (void)RemoveAll(dir);
  if (harness_errors) return 2;
  return totals.violations ? 1 : 0;
}

}  // namespace
}  // namespace ff

int main(int argc, char** argv) { return ff::Main(argc, argv); }
