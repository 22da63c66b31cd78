#include "transfer/peer.h"

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/clock.h"
#include "gtest/gtest.h"
#include "rpc/services.h"
#include "util/fs.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;

constexpr char kSecret[] = "0123456789abcdef-shared";
constexpr int64_t kNow = 1'700'000'000'000;

// Answers Quote with the outcome of VerifyPeerCall, so the test sees the
// real metadata path of a gRPC call.
class VerifyingService final : public pb::SiteLink::Service {
 public:
  explicit VerifyingService(std::vector<PeerConfig> peers) : peers_(std::move(peers)) {}
  grpc::Status Quote(grpc::ServerContext* ctx, const pb::QuoteRequest*,
                     pb::QuoteResponse* resp) override {
    Result<std::string> who = VerifyPeerCall(*ctx, peers_, "Quote", kNow);
    resp->set_can_render(who.ok());
    resp->set_reason(who.ok() ? *who : who.status().message());
    return grpc::Status::OK;
  }

 private:
  std::vector<PeerConfig> peers_;
};

class PeerAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PeerConfig a;
    a.name = "site-a";
    a.secret = kSecret;
    PeerConfig weak;
    weak.name = "weak";
    weak.secret = "short";
    service_ = std::make_unique<VerifyingService>(std::vector<PeerConfig>{a, weak});
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_ != nullptr);
    ASSERT_GT(port, 0);
    stub_ = pb::SiteLink::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                                      grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  // Calls Quote; `sign` adds metadata to the context.
  pb::QuoteResponse Call(const std::function<void(grpc::ClientContext*)>& sign) {
    grpc::ClientContext ctx;
    sign(&ctx);
    pb::QuoteRequest req;
    pb::QuoteResponse resp;
    grpc::Status s = stub_->Quote(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }

  std::unique_ptr<VerifyingService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<pb::SiteLink::Stub> stub_;
};

TEST(PeerMacTest, IsHexHmacSha256OverSiteMethodAndTime) {
  // Reference value from Python's hmac module:
  //   hmac.new(secret, b"site-a\nOffer\n1700000000000", hashlib.sha256).hexdigest()
  EXPECT_EQ(PeerMac(kSecret, "site-a", "Offer", kNow),
            "4ca930f55a98795f50ef6b7079849428d69e39929056456741609080ef15f1cc");
  EXPECT_NE(PeerMac(kSecret, "site-a", "Offer", kNow), PeerMac(kSecret, "site-a", "Offer", 1));
  EXPECT_NE(PeerMac(kSecret, "site-a", "Offer", kNow), PeerMac(kSecret, "site-a", "Deliver", kNow));
  EXPECT_NE(PeerMac(kSecret, "site-a", "Offer", kNow), PeerMac(kSecret, "site-b", "Offer", kNow));
}

TEST_F(PeerAuthTest, ValidSignatureIsAccepted) {
  pb::QuoteResponse r =
      Call([](grpc::ClientContext* c) { SignPeerCall(c, "site-a", kSecret, "Quote", kNow); });
  EXPECT_TRUE(r.can_render()) << r.reason();
  EXPECT_EQ(r.reason(), "site-a");
  // Within the allowed skew either way.
  r = Call([](grpc::ClientContext* c) {
    SignPeerCall(c, "site-a", kSecret, "Quote", kNow - kMaxAuthSkewMs + 1000);
  });
  EXPECT_TRUE(r.can_render()) << r.reason();
}

TEST_F(PeerAuthTest, WrongSecretIsRefused) {
  pb::QuoteResponse r = Call([](grpc::ClientContext* c) {
    SignPeerCall(c, "site-a", "another-secret-of-16+", "Quote", kNow);
  });
  EXPECT_FALSE(r.can_render());
  EXPECT_TRUE(HasSubstr(r.reason(), "peer 'site-a': bad signature for Quote"));
}

TEST_F(PeerAuthTest, SignatureForAnotherMethodIsRefused) {
  pb::QuoteResponse r =
      Call([](grpc::ClientContext* c) { SignPeerCall(c, "site-a", kSecret, "Offer", kNow); });
  EXPECT_FALSE(r.can_render());
  EXPECT_TRUE(HasSubstr(r.reason(), "bad signature"));
}

TEST_F(PeerAuthTest, UnknownPeerIsRefused) {
  pb::QuoteResponse r =
      Call([](grpc::ClientContext* c) { SignPeerCall(c, "site-x", kSecret, "Quote", kNow); });
  EXPECT_FALSE(r.can_render());
  EXPECT_EQ(r.reason(), "unknown peer 'site-x'");
  r = Call([](grpc::ClientContext* c) { SignPeerCall(c, "weak", "short", "Quote", kNow); });
  EXPECT_FALSE(r.can_render());
  EXPECT_TRUE(HasSubstr(r.reason(), "no usable shared secret"));
}

TEST_F(PeerAuthTest, ClockSkewIsRefused) {
  pb::QuoteResponse r = Call([](grpc::ClientContext* c) {
    SignPeerCall(c, "site-a", kSecret, "Quote", kNow - kMaxAuthSkewMs - 1);
  });
  EXPECT_FALSE(r.can_render());
  EXPECT_TRUE(HasSubstr(r.reason(), "clock skew of 300001 ms exceeds 300000 ms"));
  r = Call([](grpc::ClientContext* c) {
    SignPeerCall(c, "site-a", kSecret, "Quote", kNow + kMaxAuthSkewMs + 5);
  });
  EXPECT_FALSE(r.can_render());
  EXPECT_TRUE(HasSubstr(r.reason(), "clock skew"));
}

TEST_F(PeerAuthTest, MissingOrMalformedMetadataIsRefused) {
  pb::QuoteResponse r = Call([](grpc::ClientContext*) {});
  EXPECT_FALSE(r.can_render());
  EXPECT_EQ(r.reason(), "missing ff-peer metadata");

  r = Call([](grpc::ClientContext* c) {
    c->AddMetadata("ff-peer", "site-a");
    c->AddMetadata("ff-time", std::to_string(kNow));
  });
  EXPECT_EQ(r.reason(), "missing ff-auth metadata");

  r = Call([](grpc::ClientContext* c) {
    c->AddMetadata("ff-peer", "site-a");
    c->AddMetadata("ff-auth", PeerMac(kSecret, "site-a", "Quote", kNow));
  });
  EXPECT_EQ(r.reason(), "missing ff-time metadata");

  r = Call([](grpc::ClientContext* c) {
    c->AddMetadata("ff-peer", "site-a");
    c->AddMetadata("ff-time", "-5");
    c->AddMetadata("ff-auth", PeerMac(kSecret, "site-a", "Quote", -5));
  });
  EXPECT_TRUE(HasSubstr(r.reason(), "ff-time '-5' is not unix milliseconds"));

  // Found by tests/fuzz/site_link_fuzz: a 19-digit time past int64 (sent
  // before anything is authenticated) overflowed while being parsed.
  r = Call([](grpc::ClientContext* c) {
    c->AddMetadata("ff-peer", "site-a");
    c->AddMetadata("ff-time", "9999999999999999999");
    c->AddMetadata("ff-auth", "00");
  });
  EXPECT_TRUE(HasSubstr(r.reason(), "ff-time '9999999999999999999' is not unix milliseconds"));

  // A second ff-peer value cannot ride along with a valid signature.
  r = Call([](grpc::ClientContext* c) {
    SignPeerCall(c, "site-a", kSecret, "Quote", kNow);
    c->AddMetadata("ff-peer", "site-x");
  });
  EXPECT_FALSE(r.can_render());
  EXPECT_EQ(r.reason(), "repeated ff-peer metadata");
}

class PeerConfigTest : public TempDirFixture {};

TEST_F(PeerConfigTest, AddressFromConfigOrFile) {
  PeerConfig p;
  p.name = "b";
  p.address = "10.0.0.2:7000";
  EXPECT_EQ(*PeerAddress(p), "10.0.0.2:7000");

  p.address.clear();
  Result<std::string> a = PeerAddress(p);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(HasSubstr(a.status().message(), "peer 'b': neither address nor address_file"));

  p.address_file = Path("addr");
  a = PeerAddress(p);
  ASSERT_FALSE(a.ok());
  EXPECT_TRUE(HasSubstr(a.status().message(), "peer 'b': address_file"));

  ASSERT_TRUE(WriteFileAtomic(Path("addr"), "127.0.0.1:4242\n").ok());
  EXPECT_EQ(*PeerAddress(p), "127.0.0.1:4242");
  // Re-read every time: a restarted peer writes its new port.
  ASSERT_TRUE(WriteFileAtomic(Path("addr"), "127.0.0.1:4343").ok());
  EXPECT_EQ(*PeerAddress(p), "127.0.0.1:4343");
  ASSERT_TRUE(WriteFileAtomic(Path("addr"), "\n").ok());
  EXPECT_TRUE(HasSubstr(PeerAddress(p).status().message(), "is empty"));
}

TEST_F(PeerConfigTest, Credentials) {
  PeerConfig p;
  p.name = "b";
  Result<std::shared_ptr<grpc::ChannelCredentials>> c = PeerCredentials(p);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*c, nullptr);

  p.tls_ca = Path("ca.pem");
  c = PeerCredentials(p);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(HasSubstr(c.status().message(), "peer 'b': tls_ca"));
  ASSERT_TRUE(WriteFileAtomic(Path("ca.pem"), "not a certificate").ok());
  c = PeerCredentials(p);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(HasSubstr(c.status().message(), "holds no PEM certificate"));
}

}  // namespace
}  // namespace ff
