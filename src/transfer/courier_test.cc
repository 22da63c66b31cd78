// End to end over loopback gRPC: a Courier at site "a" shipping packages
// from its hotfolders/out to a SiteLinkService at site "b".
#include "transfer/courier.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "gtest/gtest.h"
#include "store/blob_store.h"
#include "transfer/job_package.h"
#include "transfer/site_link_service.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/sha256.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;

constexpr char kSecret[] = "a-b-shared-secret-0123456789";

// Polls `cond` until it holds or 30 s pass.
bool WaitFor(const std::function<bool()>& cond) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return cond();
}

std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    s[i] = static_cast<char>(x);
  }
  return s;
}

class NullHandler final : public SiteLinkService::Handler {
 public:
  pb::QuoteResponse Quote(const std::string&, const pb::QuoteRequest&) override { return {}; }
  pb::RemoteJobsResponse RemoteJobs(const std::string&, const pb::RemoteJobsRequest&) override {
    return {};
  }
  bool AlreadyIngested(const std::string&, const std::string&) override { return false; }
};

class RecordingListener final : public Courier::Listener {
 public:
  void OnDelivered(const JobPackageManifest& m) override {
    std::lock_guard<std::mutex> lock(mu_);
    delivered_.push_back(m.name);
  }
  void OnRejected(const JobPackageManifest& m, const std::string& reason) override {
    std::lock_guard<std::mutex> lock(mu_);
    rejected_.push_back(m.name + ": " + reason);
  }
  std::vector<std::string> delivered() const {
    std::lock_guard<std::mutex> lock(mu_);
    return delivered_;
  }
  std::vector<std::string> rejected() const {
    std::lock_guard<std::mutex> lock(mu_);
    return rejected_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> delivered_;
  std::vector<std::string> rejected_;
};

// Site b's receiving end: a blob store, the service, a server on port 0.
struct Receiver {
  std::unique_ptr<BlobStore> blobs;
  NullHandler handler;
  std::unique_ptr<SiteLinkService> service;
  std::unique_ptr<grpc::Server> server;
  int port = 0;

  void Shutdown() {
    if (!server) return;
    // Cancels calls in flight at once, as a crash of the peer would.
    server->Shutdown(std::chrono::system_clock::now());
    server->Wait();
    server.reset();
  }
  ~Receiver() { Shutdown(); }
};

class CourierTest : public TempDirFixture {
 protected:
  void SetUp() override {
    TempDirFixture::SetUp();
    spdlog::set_level(spdlog::level::warn);
  }
  void TearDown() override {
    if (courier_) courier_->Stop();
    courier_.reset();
    receiver_.reset();
    TempDirFixture::TearDown();
  }

  std::string Out() const { return Path("a/hotfolders/out"); }
  std::string In() const { return Path("b/hotfolders/in"); }
  std::string Quarantine() const { return Path("b/hotfolders/quarantine"); }
  std::string AddressFile() const { return Path("b/address"); }

  // Starts (or restarts, on a new port) site b's server. `creds` null:
  // insecure.
  void StartReceiver(std::shared_ptr<grpc::ServerCredentials> creds = nullptr) {
    if (receiver_) receiver_->Shutdown();
    receiver_ = std::make_unique<Receiver>();
    Result<std::unique_ptr<BlobStore>> blobs = BlobStore::Open(Path("b/blobs"));
    ASSERT_TRUE(blobs.ok()) << blobs.status().ToString();
    receiver_->blobs = std::move(*blobs);
    SiteLinkService::Options o;
    o.site_name = "b";
    PeerConfig a;
    a.name = "a";
    a.secret = kSecret;
    o.peers = {a};
    o.in_dir = In();
    o.quarantine_dir = Quarantine();
    o.limits = limits_;
    receiver_->service = std::make_unique<SiteLinkService>(
        o, receiver_->blobs.get(), &receiver_->handler, SystemClock::Default());
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", creds ? creds : grpc::InsecureServerCredentials(),
                             &receiver_->port);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 1000);
    builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
    builder.RegisterService(receiver_->service.get());
    receiver_->server = builder.BuildAndStart();
    ASSERT_TRUE(receiver_->server != nullptr);
    ASSERT_GT(receiver_->port, 0);
    ASSERT_TRUE(
        WriteFileAtomic(AddressFile(), "127.0.0.1:" + std::to_string(receiver_->port) + "\n").ok());
  }

  void StartCourier(const std::string& secret = kSecret,
                    const std::function<void(Courier::Options*)>& tweak = nullptr) {
    Courier::Options o;
    o.site_name = "a";
    o.out_dir = Out();
    PeerConfig b;
    b.name = "b";
    b.address_file = AddressFile();
    b.secret = secret;
    o.peers = {b};
    o.chunk_bytes = 64 * 1024;
    o.rescan_ms = 500;
    if (tweak) tweak(&o);
    courier_ = std::make_unique<Courier>(o, SystemClock::Default(), &listener_);
    Status s = courier_->Start();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  JobPackageManifest Manifest(const std::string& name) {
    JobPackageManifest m;
    m.kind = JobPackageKind::kJob;
    m.name = name;
    m.origin_site = "a";
    m.origin_job_id = 7;
    m.from_site = "a";
    m.to_site = "b";
    m.client = "studio";
    m.created_ms = 1;
    m.description = "job.toml";
    return m;
  }

  // Writes a package into out/ and returns its manifest.
  JobPackageManifest Write(const std::string& name, const std::vector<JobPackageSource>& sources) {
    Result<JobPackageManifest> m = WritePackage(Out(), Manifest(name), sources);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    return m.ok() ? *m : JobPackageManifest();
  }

  pb::PeerInfo Peer() const {
    std::vector<pb::PeerInfo> peers = courier_->Peers();
    EXPECT_EQ(peers.size(), 1u);
    return peers.empty() ? pb::PeerInfo() : peers[0];
  }

  // Every file of `m` in b's in/ matches its source, and the package verifies.
  void ExpectDelivered(const JobPackageManifest& m, const std::vector<JobPackageSource>& sources) {
    const std::string dir = JoinPath(In(), m.name);
    Result<JobPackageManifest> v = VerifyPackage(dir, JobPackageLimits());
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(ManifestToJson(*v), ManifestToJson(m));
    for (const JobPackageSource& s : sources) {
      Result<std::string> got = ReadFile(JoinPath(dir, s.path));
      ASSERT_TRUE(got.ok()) << got.status().ToString();
      std::string want = s.content;
      if (!s.source_file.empty()) want = *ReadFile(s.source_file);
      EXPECT_TRUE(*got == want) << s.path << " differs";
    }
    EXPECT_FALSE(PathExists(JoinPath(Out(), m.name)));
  }

  JobPackageLimits limits_;
  RecordingListener listener_;
  std::unique_ptr<Receiver> receiver_;
  std::unique_ptr<Courier> courier_;
};

TEST_F(CourierTest, DeliversPackagesAndNeverResendsHeldBlobs) {
  StartReceiver();
  const std::string scene = Bytes(200000, 1);
  const std::string wood = Bytes(300000, 2);
  std::vector<JobPackageSource> first = {{"job.toml", "", "frames = \"1-10\"\n"},
                                         {"files/scene.pov", "", scene},
                                         {"files/tex/wood.png", "", wood},
                                         {"files/tex/wood-copy.png", "", wood},
                                         {"files/empty", "", ""}};
  JobPackageManifest m1 = Write("job-a-7", first);
  StartCourier();
  ASSERT_TRUE(WaitFor([&] { return listener_.delivered().size() == 1; }));
  ExpectDelivered(m1, first);
  pb::PeerInfo p = Peer();
  EXPECT_EQ(p.state(), "ok");
  EXPECT_GT(p.last_ok_ms(), 0);
  EXPECT_EQ(p.counters().packages_sent(), 1);
  // Four distinct contents; the copy of wood travels once.
  EXPECT_EQ(p.counters().blobs_sent(), 4);
  EXPECT_EQ(p.counters().bytes_sent(), int64_t(first[0].content.size()) + 200000 + 300000);
  EXPECT_EQ(p.counters().blobs_skipped(), 0);
  EXPECT_EQ(p.counters().failures(), 0);

  // A second job sharing the scene and texture sends only what is new.
  const std::string extra = Bytes(1000, 3);
  std::vector<JobPackageSource> second = {{"job.toml", "", "frames = \"11-20\"\n"},
                                          {"files/scene.pov", "", scene},
                                          {"files/tex/wood.png", "", wood},
                                          {"files/extra.bin", "", extra}};
  JobPackageManifest m2 = Write("job-a-8", second);
  courier_->Kick();
  ASSERT_TRUE(WaitFor([&] { return listener_.delivered().size() == 2; }));
  ExpectDelivered(m2, second);
  p = Peer();
  EXPECT_EQ(p.counters().packages_sent(), 2);
  EXPECT_EQ(p.counters().blobs_sent(), 6);
  EXPECT_EQ(p.counters().bytes_sent(),
            int64_t(first[0].content.size() + second[0].content.size()) + 200000 + 300000 + 1000);
  EXPECT_EQ(p.counters().blobs_skipped(), 2);
  EXPECT_EQ(p.counters().bytes_skipped(), 200000 + 300000);
  EXPECT_EQ(p.counters().bytes_resumed(), 0);
  EXPECT_EQ(p.packages_waiting(), 0);
  EXPECT_EQ(listener_.delivered(), (std::vector<std::string>{"job-a-7", "job-a-8"}));
  EXPECT_TRUE(listener_.rejected().empty());
}

TEST_F(CourierTest, ResumesABrokenTransferOnARestartedPeer) {
  StartReceiver();
  constexpr int64_t kChunk = 16 * 1024;
  const std::string big = Bytes(768 * 1024, 4);
  const std::string big_sha = Sha256Hex(big);
  std::vector<JobPackageSource> sources = {{"job.toml", "", "frames = \"1\"\n"},
                                           {"files/big.exr", "", big}};
  JobPackageManifest m = Write("job-a-9", sources);
  // ~3 s for the big file: time enough to break the stream in the middle.
  StartCourier(kSecret, [&](Courier::Options* o) {
    o->chunk_bytes = kChunk;
    o->max_rate_bytes_per_s = 256 * 1024;
  });
  BlobStore* first_store = receiver_->blobs.get();
  ASSERT_TRUE(WaitFor([&] {
    Result<int64_t> held = first_store->PartialSize(big_sha);
    return held.ok() && *held > 0;
  }));
  // The peer dies mid-stream and comes back on another port.
  receiver_->Shutdown();
  Result<int64_t> held = receiver_->blobs->PartialSize(big_sha);
  ASSERT_TRUE(held.ok());
  ASSERT_GT(*held, 0);
  ASSERT_LT(*held, static_cast<int64_t>(big.size())) << "the transfer was not broken";
  StartReceiver();

  ASSERT_TRUE(WaitFor([&] { return listener_.delivered().size() == 1; }));
  ExpectDelivered(m, sources);
  pb::PeerInfo p = Peer();
  EXPECT_EQ(p.address(), "127.0.0.1:" + std::to_string(receiver_->port));
  EXPECT_GE(p.counters().bytes_resumed(), *held);
  EXPECT_GT(p.counters().failures(), 0);
  // Bytes lost in flight when the stream broke are resent: at most a chunk.
  const int64_t total = static_cast<int64_t>(big.size() + sources[0].content.size());
  EXPECT_LE(p.counters().bytes_sent(), total + kChunk);
  EXPECT_GE(p.counters().bytes_sent(), total);
  EXPECT_EQ(p.counters().packages_sent(), 1);
  EXPECT_FALSE(PathExists(receiver_->blobs->PartialPathOf(big_sha)));
}

// A PushBlob stream the sender gave up on (its link was cut; this end
// never heard) does not block the sender's resumed stream: the new stream
// of the same peer takes the blob over, the old one ends CANCELLED, and the
// bytes it stored are kept.
TEST_F(CourierTest, ANewStreamOfTheSamePeerTakesOverAStaleOne) {
  StartReceiver();
  const std::string blob = Bytes(200 * 1024, 9);
  const std::string sha = Sha256Hex(blob);
  auto channel = [&] {
    return grpc::CreateChannel("127.0.0.1:" + std::to_string(receiver_->port),
                               grpc::InsecureChannelCredentials());
  };
  auto piece = [&](int64_t from, int64_t n) {
    pb::BlobPiece p;
    p.set_sha256(sha);
    p.set_size(static_cast<int64_t>(blob.size()));
    p.set_offset(from);
    p.set_data(blob.substr(static_cast<size_t>(from), static_cast<size_t>(n)));
    return p;
  };
  constexpr int64_t kHalf = 100 * 1024;

  // The stale stream: half the blob, then silence (neither WritesDone nor
  // a broken connection).
  auto stub1 = pb::SiteLink::NewStub(channel());
  grpc::ClientContext ctx1;
  SignPeerCall(&ctx1, "a", kSecret, "PushBlob", SystemClock::Default()->UnixMillis());
  pb::BlobPieceAck ack1;
  auto stale = stub1->PushBlob(&ctx1, &ack1);
  ASSERT_TRUE(stale->Write(piece(0, kHalf)));
  ASSERT_TRUE(WaitFor([&] {
    Result<int64_t> held = receiver_->blobs->PartialSize(sha);
    return held.ok() && *held == kHalf;
  }));

  // The sender's new stream (another connection) resumes from what is held.
  auto stub2 = pb::SiteLink::NewStub(channel());
  grpc::ClientContext ctx2;
  SignPeerCall(&ctx2, "a", kSecret, "PushBlob", SystemClock::Default()->UnixMillis());
  pb::BlobPieceAck ack2;
  auto resumed = stub2->PushBlob(&ctx2, &ack2);
  ASSERT_TRUE(resumed->Write(piece(kHalf, static_cast<int64_t>(blob.size()) - kHalf)));
  resumed->WritesDone();
  grpc::Status s2 = resumed->Finish();
  ASSERT_TRUE(s2.ok()) << s2.error_message();
  EXPECT_TRUE(ack2.complete());
  EXPECT_TRUE(receiver_->blobs->Has(sha));

  grpc::Status s1 = stale->Finish();
  EXPECT_EQ(s1.error_code(), grpc::StatusCode::CANCELLED) << s1.error_message();
}

TEST_F(CourierTest, WrongSecretIsRefusedAndThePackageStays) {
  StartReceiver();
  JobPackageManifest m = Write("job-a-10", {{"job.toml", "", "x = 1\n"}});
  StartCourier("not-the-shared-secret-at-all");
  ASSERT_TRUE(WaitFor([&] { return Peer().state() == "refused"; }));
  pb::PeerInfo p = Peer();
  EXPECT_TRUE(HasSubstr(p.last_error(), "bad signature"));
  EXPECT_GT(p.counters().failures(), 0);
  EXPECT_EQ(p.counters().packages_sent(), 0);
  EXPECT_EQ(p.packages_waiting(), 1);
  EXPECT_TRUE(PathExists(JoinPath(Out(), m.name)));
  EXPECT_FALSE(PathExists(JoinPath(In(), m.name)));
  EXPECT_TRUE(listener_.delivered().empty());
  EXPECT_TRUE(listener_.rejected().empty());
}

TEST_F(CourierTest, PeerRejectsAnEscapingPathAndQuarantinesIt) {
  StartReceiver();
  // Written by hand (WritePackage refuses such paths).
  JobPackageManifest m = Manifest("job-a-11");
  m.files = {{"job.toml", 6, Sha256Hex("x = 1\n")},
             {"../../etc/cron.d/evil", 4, Sha256Hex("evil")}};
  const std::string dir = JoinPath(Out(), m.name);
  ASSERT_TRUE(MakeDirs(dir).ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "job.toml"), "x = 1\n").ok());
  ASSERT_TRUE(WriteFileAtomic(JoinPath(dir, "manifest.json"), ManifestToJson(m)).ok());
  StartCourier();
  ASSERT_TRUE(WaitFor([&] { return listener_.rejected().size() == 1; }));
  EXPECT_TRUE(HasSubstr(listener_.rejected()[0],
                        "job-a-11: manifest.json: files[1].path: \"../../etc/cron.d/evil\" "
                        "leaves the package"));
  EXPECT_FALSE(PathExists(dir));
  EXPECT_EQ(Peer().counters().packages_rejected(), 1);
  EXPECT_EQ(Peer().counters().blobs_sent(), 0);
  Result<std::string> reason = ReadFile(JoinPath(Quarantine(), "job-a-11.reason.txt"));
  ASSERT_TRUE(reason.ok()) << reason.status().ToString();
  EXPECT_TRUE(HasSubstr(*reason, "refused package from peer 'a'"));
  EXPECT_TRUE(HasSubstr(*reason, "leaves the package"));
  EXPECT_EQ(*ReadFile(JoinPath(Quarantine(), "job-a-11/manifest.json")), ManifestToJson(m));
  EXPECT_FALSE(PathExists(Path("b/hotfolders/etc")));
  EXPECT_FALSE(PathExists(JoinPath(In(), m.name)));
}

TEST_F(CourierTest, PeerRejectsAPackageOverItsLimit) {
  limits_.max_file_bytes = 1000;
  StartReceiver();
  JobPackageManifest m =
      Write("job-a-12", {{"job.toml", "", "x = 1\n"}, {"files/huge.bin", "", Bytes(5000, 5)}});
  StartCourier();
  ASSERT_TRUE(WaitFor([&] { return listener_.rejected().size() == 1; }));
  EXPECT_TRUE(HasSubstr(listener_.rejected()[0],
                        "size 5000 bytes exceeds the per-file limit of 1000 by 4000"));
  EXPECT_FALSE(PathExists(JoinPath(Out(), m.name)));
  EXPECT_EQ(Peer().counters().bytes_sent(), 0);
  Result<std::string> reason = ReadFile(JoinPath(Quarantine(), "job-a-12.reason.txt"));
  ASSERT_TRUE(reason.ok()) << reason.status().ToString();
  EXPECT_TRUE(HasSubstr(*reason, "per-file limit"));
}

TEST_F(CourierTest, PackageForAnUnknownSiteStays) {
  StartReceiver();
  JobPackageManifest m = Manifest("job-a-13");
  m.to_site = "c";
  ASSERT_TRUE(WritePackage(Out(), m, {{"job.toml", "", "x"}}).ok());
  JobPackageManifest ok = Write("job-a-14", {{"job.toml", "", "y"}});
  StartCourier();
  // The package for b still moves; the one for c waits.
  ASSERT_TRUE(WaitFor([&] { return listener_.delivered().size() == 1; }));
  EXPECT_EQ(listener_.delivered()[0], "job-a-14");
  EXPECT_TRUE(PathExists(JoinPath(Out(), "job-a-13")));
}

// Runs a command, failing the test with its output when it does not exit 0.
void RunTool(const std::vector<std::string>& argv, const std::string& cwd) {
  std::string output;
  std::mutex mu;
  ProcessSpec spec;
  spec.argv = argv;
  spec.cwd = cwd;
  Result<std::unique_ptr<RunningProcess>> p =
      DefaultProcessLauncher()->Start(spec, [&](const std::string& line) {
        std::lock_guard<std::mutex> lock(mu);
        output += line + "\n";
      });
  ASSERT_TRUE(p.ok()) << argv[0] << ": " << p.status().ToString();
  int code = (*p)->Wait();
  ASSERT_EQ(code, 0) << argv[1] << " failed:\n" << output;
}

TEST_F(CourierTest, DeliversOverTls) {
  // A throwaway CA and a server certificate for "site-b.test", made with the
  // openssl CLI (Debian package openssl).
  ASSERT_TRUE(PathExists("/usr/bin/openssl"))
      << "this test needs the openssl command-line tool: apt-get install openssl";
  const std::string d = Path("tls");
  ASSERT_TRUE(MakeDirs(d).ok());
  const std::vector<std::string> ec = {"-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                                       "-nodes"};
  std::vector<std::string> ca = {"/usr/bin/openssl", "req", "-x509"};
  ca.insert(ca.end(), ec.begin(), ec.end());
  ca.insert(ca.end(), {"-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj",
                       "/CN=frameflow test CA"});
  ASSERT_NO_FATAL_FAILURE(RunTool(ca, d));
  std::vector<std::string> csr = {"/usr/bin/openssl", "req"};
  csr.insert(csr.end(), ec.begin(), ec.end());
  csr.insert(csr.end(), {"-keyout", "b.key", "-out", "b.csr", "-subj", "/CN=site-b.test"});
  ASSERT_NO_FATAL_FAILURE(RunTool(csr, d));
  ASSERT_TRUE(WriteFileAtomic(JoinPath(d, "ext.cnf"), "subjectAltName=DNS:site-b.test\n").ok());
  ASSERT_NO_FATAL_FAILURE(
      RunTool({"/usr/bin/openssl", "x509", "-req", "-in", "b.csr", "-CA", "ca.pem", "-CAkey",
               "ca.key", "-CAcreateserial", "-out", "b.pem", "-days", "2", "-extfile", "ext.cnf"},
              d));
  grpc::SslServerCredentialsOptions tls;
  tls.pem_key_cert_pairs.push_back(
      {*ReadFile(JoinPath(d, "b.key")), *ReadFile(JoinPath(d, "b.pem"))});
  StartReceiver(grpc::SslServerCredentials(tls));

  std::vector<JobPackageSource> sources = {{"job.toml", "", "frames = \"1\"\n"},
                                           {"files/a.bin", "", Bytes(100000, 6)}};
  JobPackageManifest m = Write("job-a-15", sources);
  StartCourier(kSecret, [&](Courier::Options* o) {
    o->peers[0].tls_ca = JoinPath(d, "ca.pem");
    o->peers[0].tls_server_name = "site-b.test";
  });
  ASSERT_TRUE(WaitFor([&] { return listener_.delivered().size() == 1; })) << Peer().last_error();
  ExpectDelivered(m, sources);
}

TEST_F(CourierTest, PlaintextCourierCannotTalkToATlsPeer) {
  grpc::SslServerCredentialsOptions tls;
  // Any key pair will do: the handshake fails before certificates matter.
  ASSERT_TRUE(PathExists("/usr/bin/openssl"))
      << "this test needs the openssl command-line tool: apt-get install openssl";
  const std::string d = Path("tls");
  ASSERT_TRUE(MakeDirs(d).ok());
  ASSERT_NO_FATAL_FAILURE(RunTool({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                   "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "k.pem",
                                   "-out", "c.pem", "-days", "2", "-subj", "/CN=site-b.test"},
                                  d));
  tls.pem_key_cert_pairs.push_back(
      {*ReadFile(JoinPath(d, "k.pem")), *ReadFile(JoinPath(d, "c.pem"))});
  StartReceiver(grpc::SslServerCredentials(tls));
  JobPackageManifest m = Write("job-a-16", {{"job.toml", "", "x"}});
  StartCourier();
  ASSERT_TRUE(WaitFor([&] { return Peer().state() == "unreachable"; }));
  EXPECT_TRUE(PathExists(JoinPath(Out(), m.name)));
}

}  // namespace
}  // namespace ff
