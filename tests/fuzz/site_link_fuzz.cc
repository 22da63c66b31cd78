// Fuzz target: what a peer site can send this site over the site link
// (transfer/site_link_service.h) and what becomes of it: the peer
// authentication (VerifyPeerMetadata), Offer, PushBlob streams, Deliver,
// Quote and RemoteJobs, then the ingest of what was delivered into
// hotfolders/in (SiteExchange::IngestIncoming: VerifyPackage, then
// AcceptRemoteJob, CompleteOutsourcedJob, CancelFromOrigin, RejectedByPeer).
//
// The calls after authentication are the service's own handlers
// (Handle*), called as the authenticated peer "studio" or "other"; the
// authentication itself is fuzzed on its own (op 0), with a valid MAC
// computed by the real PeerMac when the input asks for one.
//
// Per input: a fresh site "render-co" (copied from a template made once per
// process, in /dev/shm when there is one) with a real Scheduler, its blob
// store, a SiteExchange that is not started (no threads, no courier calls),
// one render server with a povray 3.7 slot, and job 1 outsourced to
// "studio" (frames 1-2), so that result packages have a job to complete.
//
//   record = op (1 byte) | arg (1 byte) | length (2 bytes, little endian) | payload
//
// Baseline packages (arg selects one): 0 a job package from studio
// (job-studio-7), 1 the result package of job 1, 2 a cancel of studio's
// job 7, 3 a rejection of job 1. Protobuf payloads are merged over the
// baseline request; bytes that are not a valid message skip the record.
// Ops: 0 authenticate (payload: "key=value" lines; arg&7 the method,
// arg&0x80 replaces ff-auth by the valid MAC), 1 Offer, 2 PushBlob of a
// baseline file (arg bits: file, split in two pieces, stop half way),
// 3 Deliver, 4 ingest hotfolders/in, 5 Quote, 6 RemoteJobs, 7 send a whole
// package (payload: manifest text replacing the baseline's; "@SHAk@" and
// "@SIZEk@" stand for the k-th blob of op 8) with Offer, pushes, Deliver
// and ingest, 8 add a blob (payload: its bytes) the sends can push,
// 9 clock +arg s, 10 the render server finishes what it was assigned.
//
// Checks: authentication accepts exactly a configured peer with a usable
// secret and the right MAC; after the final ingest hotfolders/in is empty
// (every package is ingested or quarantined); jobs' counters stay sane.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "fuzz_common.h"
#include "rpc/protocol.h"
#include "scheduler/recording_link.h"
#include "scheduler/scheduler.h"
#include "scheduler/site_exchange.h"
#include "store/blob_store.h"
#include "transfer/job_package.h"
#include "transfer/peer.h"
#include "transfer/site_link_service.h"
#include "util/fs.h"
#include "util/sha256.h"

namespace {

namespace pb = frameflow::v1;

constexpr size_t kMaxRecords = 48;
constexpr char kStudioSecret[] = "studio-shared-secret-0123";
constexpr char kOtherSecret[] = "other-shared-secret-45678";

enum Op : uint8_t {
  kAuth,
  kOffer,
  kPush,
  kDeliver,
  kIngest,
  kQuote,
  kRemoteJobs,
  kSend,
  kBlob,
  kTime,
  kRender,
  kOpCount,
};

constexpr char kJobToml[] = R"(name = "from-studio"
frames = "1-3"
files = ["tex/wood.png"]

[package]
name = "povray"
version = ">=3.7"

[render]
scene = "scene.pov"
output = "f_#.png"
)";

constexpr char kOutsourcedToml[] = R"(name = "o"
placement = "remote"
remote_site = "studio"
frames = "1-2"

[package]
name = "povray"

[render]
scene = "scene.pov"
output = "o_#.png"
)";

using ff::RecordingLink;

struct Package {
  std::string name;
  std::string manifest;
};

struct World {
  ff::FakeClock clock{1'000'000};
  std::string template_root;
  std::map<std::string, std::string> contents;  // sha256 -> bytes a peer may push
  std::string image_sha;
  std::vector<Package> packages;  // the baselines
};

World* g = nullptr;

std::string Known(const std::string& data) {
  std::string sha = ff::Sha256Hex(data);
  g->contents[sha] = data;
  return sha;
}

ff::SiteConfig ConfigAt(const std::string& root) {
  ff::SiteConfig c;
  c.site_name = "render-co";
  c.root = root;
  c.heartbeat_timeout_ms = 5000;
  c.reconnect_grace_ms = 2000;
  for (const auto& [name, secret] :
       {std::pair{"studio", kStudioSecret}, std::pair{"other", kOtherSecret},
        std::pair{"weak", "short"}}) {
    ff::PeerConfig p;
    p.name = name;
    p.address = "127.0.0.1:1";
    p.secret = secret;
    c.peers.push_back(p);
  }
  c.limits.max_package_bytes = 1 << 20;
  c.limits.max_file_bytes = 256 << 10;
  c.limits.max_files = 64;
  return c;
}

ff::JobPackageManifest Manifest(ff::JobPackageKind kind, const std::string& name,
                                int64_t origin_job, const std::string& origin) {
  ff::JobPackageManifest m;
  m.kind = kind;
  m.name = name;
  m.origin_site = origin;
  m.origin_job_id = origin_job;
  m.from_site = "studio";
  m.to_site = "render-co";
  m.client = "studio-client";
  m.created_ms = 1'700'000'000'000;
  return m;
}

void AddFile(ff::JobPackageManifest* m, const std::string& path, const std::string& data) {
  m->files.push_back(ff::JobPackageFile{path, static_cast<int64_t>(data.size()), Known(data)});
}

void MakeBaselines() {
  const std::string scene = "#include \"colors.inc\"\nsphere { 0, 1 pigment { Red } }\n";
  const std::string wood = std::string("\x89PNG\r\n\x1a\nwood", 12);
  const std::string frame = std::string("\x89PNG\r\n\x1a\nframe", 13);
  g->image_sha = Known(frame);
  ff::JobPackageManifest job = Manifest(ff::JobPackageKind::kJob, "job-studio-7", 7, "studio");
  job.description = "job.toml";
  AddFile(&job, "job.toml", kJobToml);
  AddFile(&job, "files/scene.pov", scene);
  AddFile(&job, "files/tex/wood.png", wood);

  ff::JobPackageManifest result =
      Manifest(ff::JobPackageKind::kResult, "result-studio-render-co-1", 1, "render-co");
  result.state = "done";
  result.remote_job_id = 5;
  const std::string report = R"({"site": "studio", "job_id": 5, "origin_site": "render-co",
 "origin_job_id": 1, "state": "done", "error": "",
 "frames": [
  {"frame": 1, "file": "frames/o_1.png", "sha256": ")" +
                             g->image_sha + R"(", "size": 13, "render_server": "rs1", "chunk": 0},
  {"frame": 2, "file": "frames/o_2.png", "sha256": ")" +
                             g->image_sha + R"(", "size": 13, "render_server": "rs1", "chunk": 1}],
 "chunks": [
  {"index": 0, "frames": "1", "state": "done", "render_server": "rs1", "log": "logs/chunk-0.log"},
  {"index": 1, "frames": "2", "state": "done", "render_server": "rs1", "error": ""}]}
)";
  AddFile(&result, "report.json", report);
  AddFile(&result, "frames/o_1.png", frame);
  AddFile(&result, "frames/o_2.png", frame);
  AddFile(&result, "logs/chunk-0.log", "rendered\n");

  ff::JobPackageManifest cancel =
      Manifest(ff::JobPackageKind::kCancel, "cancel-studio-7", 7, "studio");
  cancel.reason = "cancelled by the client";
  ff::JobPackageManifest rejection =
      Manifest(ff::JobPackageKind::kRejection, "rejection-studio-job-render-co-1", 1, "render-co");
  rejection.reason = "files[1].path: bad";
  for (const ff::JobPackageManifest* m : {&job, &result, &cancel, &rejection}) {
    g->packages.push_back(Package{m->name, ff::ManifestToJson(*m)});
  }
}

// Site root with its database and the outsourced job's file, made once.
void MakeTemplate() {
  if (::access("/dev/shm", W_OK) == 0) ::setenv("TMPDIR", "/dev/shm", 1);
  auto dir = ff::MakeTempDir("ff-site-link-fuzz");
  FUZZ_CHECK(dir.ok(), dir.status().message());
  g->template_root = *dir;
  auto s = ff::Scheduler::Open(ConfigAt(g->template_root), &g->clock);
  FUZZ_CHECK(s.ok(), s.status().message());
  const std::string scene = "sphere { 0, 1 }\n";
  auto w = (*s)->blobs()->BeginWrite(ff::Sha256Hex(scene), static_cast<int64_t>(scene.size()));
  FUZZ_CHECK(w.ok() && (*w)->Append(scene).ok() && (*w)->Commit().ok(), "upload");
  pb::SubmitRequest req;
  req.set_description(kOutsourcedToml);
  auto* f = req.add_files();
  f->set_path("scene.pov");
  f->set_sha256(ff::Sha256Hex(scene));
  f->set_size(static_cast<int64_t>(scene.size()));
  auto id = (*s)->Submit(req);
  FUZZ_CHECK(id.ok() && *id == 1, id.ok() ? std::to_string(*id) : id.status().message());
}

class Run {
 public:
  Run() {
    auto dir = ff::MakeTempDir("ff-site-link-fuzz");
    FUZZ_CHECK(dir.ok(), dir.status().message());
    root_ = *dir;
    std::error_code ec;
    std::filesystem::copy(g->template_root, root_, std::filesystem::copy_options::recursive, ec);
    FUZZ_CHECK(!ec, ec.message());
    config_ = ConfigAt(root_);
    for (const std::string& d :
         {config_.hotfolder_in(), config_.hotfolder_out(), config_.quarantine_dir()}) {
      FUZZ_CHECK(ff::MakeDirs(d).ok(), d);
    }
    auto s = ff::Scheduler::Open(config_, &g->clock);
    FUZZ_CHECK(s.ok(), s.status().message());
    sched_ = std::move(s).value();
    exchange_ = std::make_unique<ff::SiteExchange>(sched_.get(), config_, &g->clock);
    service_ = exchange_->service();
    pb::Register reg;
    reg.set_render_server("rs1");
    reg.set_host("host1");
    auto* p = reg.add_packages();
    p->set_name("povray");
    p->set_version("3.7.0.10");
    p->set_kind("povray");
    auto* slot = reg.add_slots();
    slot->set_name("s0");
    slot->set_cores(4);
    slot->set_memory_bytes(int64_t{16} << 30);
    link_ = std::make_shared<RecordingLink>(256);
    FUZZ_CHECK(sched_->Register(reg, link_).ok(), "register");
  }

  ~Run() {
    exchange_.reset();
    sched_.reset();
    (void)ff::RemoveAll(root_);
  }

  void Do(uint8_t op, uint8_t arg, const std::string& payload) {
    const Package& base = g->packages[arg % g->packages.size()];
    const std::string peer = (arg >> 2) & 1 ? "other" : "studio";
    switch (op % kOpCount) {
      case kAuth:
        Authenticate(arg, payload);
        return;
      case kOffer: {
        pb::PackageOffer req;
        req.set_name(base.name);
        req.set_manifest(base.manifest);
        if (!Merge(&req, payload)) return;
        pb::OfferResponse resp;
        (void)service_->HandleOffer(peer, req, &resp);
        return;
      }
      case kPush:
        Push(base, arg, payload);
        return;
      case kDeliver: {
        pb::DeliverRequest req;
        req.set_name(base.name);
        req.set_manifest(base.manifest);
        if (!Merge(&req, payload)) return;
        pb::DeliverResponse resp;
        (void)service_->HandleDeliver(peer, req, &resp);
        return;
      }
      case kIngest:
        exchange_->IngestIncoming();
        return;
      case kQuote: {
        pb::QuoteRequest req;
        req.set_description(kJobToml);
        if (!Merge(&req, payload)) return;
        pb::QuoteResponse resp;
        (void)service_->HandleQuote(peer, req, &resp);
        return;
      }
      case kRemoteJobs: {
        pb::RemoteJobsRequest req;
        req.add_origin_job_ids(7);
        if (!Merge(&req, payload)) return;
        pb::RemoteJobsResponse resp;
        (void)service_->HandleRemoteJobs(peer, req, &resp);
        return;
      }
      case kSend:
        Send(base, peer, payload);
        return;
      case kBlob:
        if (blobs_.size() < 10) blobs_.push_back(payload);
        Known(payload);
        return;
      case kTime:
        g->clock.Advance(int64_t{arg} * 1000);
        sched_->CheckTimeouts();
        return;
      case kRender:
        Render(arg & 1);
        return;
    }
  }

  void Finish() {
    exchange_->IngestIncoming();
    auto left = ff::ListPackages(config_.hotfolder_in());
    FUZZ_CHECK(left.ok(), left.status().message());
    FUZZ_CHECK(left->empty(), "hotfolders/in still holds " + left->front() + " after ingest");
    for (const pb::JobInfo& info : sched_->ListJobs(true)) {
      FUZZ_CHECK(info.frames_done() >= 0 && info.frames_running() >= 0 &&
                     info.frames_failed() >= 0 &&
                     info.frames_done() + info.frames_running() + info.frames_failed() <=
                         info.frames_total(),
                 "job " + std::to_string(info.job_id()) + " counters");
    }
  }

 private:
  template <typename M>
  static bool Merge(M* base, const std::string& payload) {
    M extra;
    if (!extra.ParseFromString(payload)) return false;
    base->MergeFrom(extra);
    return true;
  }

  void Authenticate(uint8_t arg, const std::string& payload) {
    static const char* const kMethods[] = {"Offer", "PushBlob", "Deliver", "Quote", "RemoteJobs"};
    const std::string method = kMethods[(arg & 7) % 5];
    std::vector<std::pair<std::string, std::string>> pairs;
    size_t start = 0;
    while (start < payload.size()) {
      size_t end = payload.find('\n', start);
      if (end == std::string::npos) end = payload.size();
      const std::string line = payload.substr(start, end - start);
      const size_t eq = line.find('=');
      if (eq != std::string::npos) pairs.emplace_back(line.substr(0, eq), line.substr(eq + 1));
      start = end + 1;
    }
    std::string peer, time;
    for (const auto& [k, v] : pairs) {
      if (k == "ff-peer") peer = v;
      if (k == "ff-time") time = v;
    }
    const ff::PeerConfig* known = config_.FindPeer(peer);
    if (arg & 0x80 && known) {
      // The right MAC for what the input claims: the checks after it run.
      int64_t t = 0;
      for (char c : time)
        t = c >= '0' && c <= '9' && t < 100'000'000'000'000 ? t * 10 + (c - '0') : t;
      std::erase_if(pairs, [](const auto& p) { return p.first == "ff-auth"; });
      pairs.emplace_back("ff-auth", ff::PeerMac(known->secret, peer, method, t));
    }
    std::multimap<grpc::string_ref, grpc::string_ref> md;
    for (const auto& [k, v] : pairs) md.emplace(grpc::string_ref(k), grpc::string_ref(v));
    auto who = ff::VerifyPeerMetadata(md, config_.peers, method, g->clock.UnixMillis());
    if (who.ok()) {
      const ff::PeerConfig* p = config_.FindPeer(*who);
      FUZZ_CHECK(p != nullptr && p->secret.size() >= 16, "accepted '" + *who + "'");
      std::string got;
      int n = 0;
      for (const auto& [k, v] : pairs) {
        if (k == "ff-auth") {
          got = v;
          ++n;
        }
      }
      FUZZ_CHECK(n == 1, "accepted without exactly one ff-auth");
      int64_t t = std::stoll(time);
      FUZZ_CHECK(got == ff::PeerMac(p->secret, *who, method, t), "accepted a wrong MAC");
    }
  }

  // Pushes one file of a baseline package (or the payload's piece).
  void Push(const Package& base, uint8_t arg, const std::string& payload) {
    auto m = ff::ParseManifest(base.manifest, "baseline");
    FUZZ_CHECK(m.ok(), m.status().message());
    if (m->files.empty()) return;
    const ff::JobPackageFile& f = m->files[(arg >> 3) % m->files.size()];
    const std::string& data = g->contents.at(f.sha256);
    auto held = sched_->blobs()->PartialSize(f.sha256);
    const int64_t from = held.ok() ? std::min<int64_t>(*held, f.size) : 0;
    pb::BlobPiece first;
    first.set_sha256(f.sha256);
    first.set_size(f.size);
    first.set_offset(from);
    std::string rest = data.substr(static_cast<size_t>(from));
    if (arg & 0x40) rest = rest.substr(0, rest.size() / 2);  // the stream breaks
    std::vector<pb::BlobPiece> more;
    if (arg & 0x20) {
      pb::BlobPiece second;
      second.set_data(rest.substr(rest.size() / 2));
      more.push_back(second);
      rest = rest.substr(0, rest.size() / 2);
    }
    first.set_data(rest);
    if (!Merge(&first, payload)) return;
    size_t next = 0;
    pb::BlobPieceAck ack;
    (void)service_->HandlePushBlob(
        "studio", first,
        [&](pb::BlobPiece* piece) {
          if (next >= more.size()) return false;
          *piece = more[next++];
          return true;
        },
        &ack);
  }

  // A whole delivery, as the peer's courier makes it.
  void Send(const Package& base, const std::string& peer, const std::string& text) {
    std::string manifest = text.empty() ? base.manifest : text;
    for (size_t k = 0; k < blobs_.size(); ++k) {
      Replace(&manifest, "@SHA" + std::to_string(k) + "@", ff::Sha256Hex(blobs_[k]));
      Replace(&manifest, "@SIZE" + std::to_string(k) + "@", std::to_string(blobs_[k].size()));
    }
    auto parsed = ff::ParseManifest(manifest, "sent");
    const std::string name = parsed.ok() ? parsed->name : base.name;
    pb::PackageOffer offer;
    offer.set_name(name);
    offer.set_manifest(manifest);
    pb::OfferResponse resp;
    if (!service_->HandleOffer(peer, offer, &resp).ok() || !resp.rejected().empty()) return;
    for (const pb::BlobNeed& need : resp.need()) {
      auto it = g->contents.find(need.sha256());
      if (it == g->contents.end()) continue;
      pb::BlobPiece piece;
      piece.set_sha256(need.sha256());
      piece.set_size(need.size());
      piece.set_offset(need.received());
      if (need.received() >= 0 && static_cast<size_t>(need.received()) <= it->second.size()) {
        piece.set_data(it->second.substr(static_cast<size_t>(need.received())));
      }
      pb::BlobPieceAck ack;
      (void)service_->HandlePushBlob(
          peer, piece, [](pb::BlobPiece*) { return false; }, &ack);
    }
    pb::DeliverRequest deliver;
    deliver.set_name(name);
    deliver.set_manifest(manifest);
    pb::DeliverResponse dresp;
    (void)service_->HandleDeliver(peer, deliver, &dresp);
    exchange_->IngestIncoming();
  }

  static void Replace(std::string* s, const std::string& from, const std::string& to) {
    for (size_t pos = s->find(from); pos != std::string::npos;
         pos = s->find(from, pos + to.size())) {
      s->replace(pos, from.size(), to);
    }
  }

  // The site's render server renders (or fails) what it was assigned.
  void Render(bool fail) {
    sched_->Flush();
    for (const pb::Assignment& a : link_->DrainAssignments()) {
      pb::ChunkResult r;
      r.set_job_id(a.job_id());
      r.set_chunk(a.chunk());
      r.set_attempt(a.attempt());
      r.set_ok(!fail);
      r.set_exit_code(fail ? 1 : 0);
      for (int64_t f : a.frames()) {
        pb::FrameOutput* o = r.add_outputs();
        o->set_frame(f);
        o->set_sha256(g->image_sha);
        o->set_size(13);
      }
      r.set_log_text("log\n");
      sched_->OnResult("rs1", r);
    }
  }

  std::string root_;
  ff::SiteConfig config_;
  std::unique_ptr<ff::Scheduler> sched_;
  std::unique_ptr<ff::SiteExchange> exchange_;
  ff::SiteLinkService* service_ = nullptr;
  std::shared_ptr<RecordingLink> link_;
  std::vector<std::string> blobs_;  // op 8, for @SHAk@ / @SIZEk@
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::QuietLogging();
  g = new World();
  MakeBaselines();
  MakeTemplate();
  std::atexit([] { (void)ff::RemoveAll(g->template_root); });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Blobs of op 8 are known only to the input that added them.
  const auto contents = g->contents;
  {
    Run run;
    size_t pos = 0;
    for (size_t n = 0; n < kMaxRecords && pos + 4 <= size; ++n) {
      const uint8_t op = data[pos], arg = data[pos + 1];
      size_t len = data[pos + 2] | (size_t{data[pos + 3]} << 8);
      pos += 4;
      if (len > size - pos) len = size - pos;
      const std::string payload(reinterpret_cast<const char*>(data + pos), len);
      pos += len;
      run.Do(op, arg, payload);
    }
    run.Finish();
  }
  g->contents = contents;
  return 0;
}
