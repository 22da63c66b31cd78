// RenderServer against an in-process fake schedule server: what one chunk
// sends back (outputs, log inline or as a blob, errors) and which file
// service calls it makes.
#include "render/render_server.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/clock.h"
#include "rpc/blob_client.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/sha256.h"
#include "util/test_fixtures.h"

namespace ff {
namespace {

namespace pb = frameflow::v1;

// The render-server side of the protocol plus an in-memory file service.
// Counts the file service calls, so tests can see which RPCs a chunk costs.
class FakeScheduleServer final : public pb::ScheduleServer::Service {
 public:
  // The RenderServerLink service of the same fake (registered beside it).
  class Link final : public pb::RenderServerLink::Service {
   public:
    explicit Link(FakeScheduleServer* fake) : fake_(fake) {}
    grpc::Status Connect(grpc::ServerContext* ctx,
                         grpc::ServerReaderWriter<pb::ScheduleServerMessage,
                                                  pb::RenderServerMessage>* stream) override {
      return fake_->Connect(ctx, stream);
    }

   private:
    FakeScheduleServer* fake_;
  };
  Link link{this};

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<pb::ScheduleServerMessage, pb::RenderServerMessage>* stream) {
    pb::RenderServerMessage in;
    if (!stream->Read(&in) || !in.has_register_()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "expected register");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++register_calls_;
      if (refusal_.error_code() != grpc::StatusCode::OK) return refusal_;
    }
    pb::ScheduleServerMessage hello;
    hello.mutable_registered()->set_site("fake");
    hello.mutable_registered()->set_heartbeat_interval_ms(1000);
    stream->Write(hello);
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream_ = stream;
      register_ = in.register_();
    }
    cv_.notify_all();
    while (stream->Read(&in)) {
      std::lock_guard<std::mutex> lock(mu_);
      if (in.has_result()) results_.push_back(in.result());
      if (in.has_progress()) {
        for (const auto& l : in.progress().log_lines()) live_log_.push_back(l);
      }
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = nullptr;
    (void)ctx;
    return grpc::Status::OK;
  }

  grpc::Status HaveBlobs(grpc::ServerContext*, const pb::HaveBlobsRequest* req,
                         pb::HaveBlobsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++have_calls_;
    for (const auto& s : req->sha256()) {
      if (!blobs_.count(s)) resp->add_missing(s);
    }
    return grpc::Status::OK;
  }

  grpc::Status UploadBlob(grpc::ServerContext*, grpc::ServerReader<pb::BlobChunk>* reader,
                          pb::BlobRef* ref) override {
    pb::BlobChunk chunk;
    std::string sha, data;
    while (reader->Read(&chunk)) {
      if (!chunk.sha256().empty()) sha = chunk.sha256();
      data += chunk.data();
    }
    if (Sha256Hex(data) != sha) return grpc::Status(grpc::StatusCode::DATA_LOSS, "bad digest");
    std::lock_guard<std::mutex> lock(mu_);
    ++upload_calls_;
    blobs_[sha] = data;
    ref->set_sha256(sha);
    ref->set_size(static_cast<int64_t>(data.size()));
    return grpc::Status::OK;
  }

  grpc::Status DownloadBlob(grpc::ServerContext*, const pb::DownloadBlobRequest* req,
                            grpc::ServerWriter<pb::BlobChunk>* writer) override {
    std::string data;
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++download_calls_;
      auto it = blobs_.find(req->sha256());
      if (it == blobs_.end()) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such blob");
      data = it->second;
    }
    pb::BlobChunk chunk;
    chunk.set_sha256(req->sha256());
    chunk.set_size(static_cast<int64_t>(data.size()));
    chunk.set_data(data);
    writer->Write(chunk);
    return grpc::Status::OK;
  }

  // Adds a job file to the file service; returns its JobFile entry.
  pb::JobFile AddFile(const std::string& path, const std::string& data) {
    std::lock_guard<std::mutex> lock(mu_);
    pb::JobFile f;
    f.set_path(path);
    f.set_sha256(Sha256Hex(data));
    f.set_size(static_cast<int64_t>(data.size()));
    blobs_[f.sha256()] = data;
    return f;
  }

  // Blocks until a render server registered; returns its slot ids.
  std::vector<std::string> WaitForRegister(const std::string& render_server) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(30), [&] { return stream_ != nullptr; }));
    std::vector<std::string> slots;
    for (const auto& s : register_.slots()) slots.push_back(render_server + "/" + s.name());
    return slots;
  }

  void Send(const pb::ScheduleServerMessage& msg) {
    std::lock_guard<std::mutex> lock(mu_);
    ASSERT_NE(stream_, nullptr);
    stream_->Write(msg);
  }

  // Blocks until `n` results arrived; returns them in arrival order.
  std::vector<pb::ChunkResult> WaitForResults(size_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return results_.size() >= n; }))
        << results_.size() << " of " << n << " result(s)";
    return results_;
  }

  // Blocks until a progress message carried `line`.
  void WaitForLogLine(const std::string& line) {
    std::unique_lock<std::mutex> lock(mu_);
    EXPECT_TRUE(cv_.wait_for(
        lock, std::chrono::seconds(30),
        [&] { return std::find(live_log_.begin(), live_log_.end(), line) != live_log_.end(); }))
        << "no progress line '" << line << "'";
  }

  // Every later registration is refused with `status`.
  void Refuse(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    refusal_ = std::move(status);
  }
  int register_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return register_calls_;
  }
  int upload_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return upload_calls_;
  }
  int have_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return have_calls_;
  }
  int download_calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return download_calls_;
  }
  bool HasBlob(const std::string& sha) {
    std::lock_guard<std::mutex> lock(mu_);
    return blobs_.count(sha) > 0;
  }
  std::string Blob(const std::string& sha) {
    std::lock_guard<std::mutex> lock(mu_);
    return blobs_[sha];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  grpc::ServerReaderWriter<pb::ScheduleServerMessage, pb::RenderServerMessage>* stream_ =
      nullptr;  // GUARDED_BY(mu_)
  pb::Register register_;
  std::vector<pb::ChunkResult> results_;
  std::vector<std::string> live_log_;  // log lines of progress messages
  grpc::Status refusal_;
  int register_calls_ = 0;
  int have_calls_ = 0;
  int upload_calls_ = 0;
  int download_calls_ = 0;
  std::map<std::string, std::string> blobs_;
};

// A 1x1 RGB PNG.
std::string TinyPng() {
  static const unsigned char kPng[] = {
      0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
      0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00,
      0x00, 0x90, 0x77, 0x53, 0xde, 0x00, 0x00, 0x00, 0x0c, 0x49, 0x44, 0x41, 0x54, 0x78,
      0x9c, 0x63, 0x60, 0x60, 0x60, 0x00, 0x00, 0x00, 0x04, 0x00, 0x01, 0xf6, 0x17, 0x38,
      0x55, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82};
  return std::string(reinterpret_cast<const char*>(kPng), sizeof(kPng));
}

class RenderServerTest : public TempDirFixture {
 protected:
  void SetUp() override {
    TempDirFixture::SetUp();
    // Renderers run as the slot's uid (the tests run as root): they must be
    // able to reach the render server's work directory.
    ASSERT_EQ(::chmod(dir_.c_str(), 0755), 0);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    builder.RegisterService(&fake_.link);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }

  void TearDown() override {
    stop_ = true;
    if (run_.joinable()) run_.join();
    render_server_.reset();
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
    TempDirFixture::TearDown();
  }

  // Starts a render server with one slot and the given command packages.
  void StartRenderServer(const std::vector<CommandPackageConfig>& packages) {
    RenderServerConfig config;
    config.name = "rs";
    config.root = Path("rs");
    config.schedule_server = address_;
    config.probe = {};
    config.slots = {SlotConfig{"s", 1, 0, 0}};
    config.packages = packages;
    render_server_ =
        std::make_unique<RenderServer>(config, DefaultProcessLauncher(), SystemClock::Default());
    ASSERT_TRUE(render_server_->Init().ok());
    run_ = std::thread([this] { run_status_ = render_server_->Run(&stop_); });
    slots_ = fake_.WaitForRegister("rs");
    ASSERT_EQ(slots_.size(), 1u);
  }

  pb::ScheduleServerMessage Assign(const std::string& package, const std::string& output, int chunk,
                                   std::vector<int64_t> frames) {
    pb::ScheduleServerMessage msg;
    pb::Assignment* a = msg.mutable_assign();
    a->set_job_id(1);
    a->set_chunk(chunk);
    a->set_attempt(1);
    a->set_slot(slots_[0]);
    for (int64_t f : frames) a->add_frames(f);
    a->set_package(package);
    a->set_scene("scene.png");
    a->set_width(1);
    a->set_height(1);
    a->set_output(output);
    *a->add_files() = scene_;
    a->set_job_first_frame(1);
    a->set_job_last_frame(1000);
    return msg;
  }

  static CommandPackageConfig Package(const std::string& name, const std::string& command) {
    return CommandPackageConfig{name, "1.0", command};
  }

  FakeScheduleServer fake_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<RenderServer> render_server_;
  std::atomic<bool> stop_{false};
  std::thread run_;
  Status run_status_;
  std::vector<std::string> slots_;
  pb::JobFile scene_ = fake_.AddFile("scene.png", TinyPng());
};

// A registration refused as invalid ends the render server with the
// schedule server's reason (not CANCELLED, not retried for ever).
TEST_F(RenderServerTest, RegistrationRefusedAsInvalidEndsRunWithTheReason) {
  fake_.Refuse(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "register: render_server: name 'a/b' must not contain '/'"));
  RenderServerConfig config;
  config.name = "a/b";
  config.root = Path("rs");
  config.schedule_server = address_;
  config.probe = {};
  config.slots = {SlotConfig{"s", 1, 0, 0}};
  render_server_ =
      std::make_unique<RenderServer>(config, DefaultProcessLauncher(), SystemClock::Default());
  ASSERT_TRUE(render_server_->Init().ok());
  std::promise<void> done;
  std::future<void> ended_future = done.get_future();
  run_ = std::thread([this, &done] {
    run_status_ = render_server_->Run(&stop_);
    done.set_value();
  });
  const bool ended = ended_future.wait_for(std::chrono::seconds(30)) == std::future_status::ready;
  if (!ended) stop_ = true;
  run_.join();
  ASSERT_TRUE(ended) << "Run() kept retrying a refused registration";
  EXPECT_EQ(run_status_.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(run_status_.message().find("refused the registration: register: render_server: "
                                       "name 'a/b' must not contain '/'"),
            std::string::npos)
      << run_status_.message();
  EXPECT_EQ(fake_.register_calls(), 1);
}

TEST_F(RenderServerTest, JobWithoutOutputIsDoneWhenTheCommandExitsZero) {
  ASSERT_NO_FATAL_FAILURE(StartRenderServer({Package("true", "/bin/true {frame}")}));
  for (int c = 0; c < 3; ++c) fake_.Send(Assign("true", "", c, {c + 1}));
  auto results = fake_.WaitForResults(3);
  for (int c = 0; c < 3; ++c) {
    SCOPED_TRACE("chunk " + std::to_string(c));
    const pb::ChunkResult& r = results[c];
    EXPECT_EQ(r.chunk(), c);
    EXPECT_TRUE(r.ok()) << r.error();
    EXPECT_EQ(r.exit_code(), 0);
    EXPECT_EQ(r.outputs_size(), 0);
    // The log rides inside the result.
    EXPECT_TRUE(HasSubstr(r.log_text(), "frameflow: running /bin/true " + std::to_string(c + 1)));
    EXPECT_EQ(r.log_sha256(), "");
    EXPECT_GE(r.ended_ms(), r.started_ms());
  }
  // The scene was fetched once (host cache); nothing was uploaded or asked.
  EXPECT_EQ(fake_.download_calls(), 1);
  EXPECT_EQ(fake_.upload_calls(), 0);
  EXPECT_EQ(fake_.have_calls(), 0);
}

TEST_F(RenderServerTest, JobWithoutOutputFailsOnANonZeroExit) {
  ASSERT_NO_FATAL_FAILURE(
      StartRenderServer({Package("fail", "/bin/sh -c 'echo oops; exit 3' {frame}")}));
  fake_.Send(Assign("fail", "", 0, {1}));
  auto results = fake_.WaitForResults(1);
  EXPECT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].exit_code(), 3);
  EXPECT_TRUE(HasSubstr(results[0].error(), "sh exited with code 3")) << results[0].error();
  EXPECT_TRUE(HasSubstr(results[0].log_text(), "oops"));
}

TEST_F(RenderServerTest, TemplateUsingOutputFailsAJobWithoutOutputNamingTheField) {
  ASSERT_NO_FATAL_FAILURE(StartRenderServer({Package("cp", "/bin/cp {scene} {output}")}));
  fake_.Send(Assign("cp", "", 0, {1, 2}));
  auto results = fake_.WaitForResults(1);
  EXPECT_FALSE(results[0].ok());
  EXPECT_TRUE(HasSubstr(results[0].error(), "render.output")) << results[0].error();
  EXPECT_EQ(results[0].outputs_size(), 0);
}

TEST_F(RenderServerTest, JobWithOutputsUploadsCheckedFrames) {
  ASSERT_NO_FATAL_FAILURE(
      StartRenderServer({Package("cp", "/bin/sh -c 'cp \"$0\" \"$1\"' {scene} {output} {frame}")}));
  fake_.Send(Assign("cp", "f_###.png", 0, {4, 5}));
  auto results = fake_.WaitForResults(1);
  const pb::ChunkResult& r = results[0];
  ASSERT_TRUE(r.ok()) << r.error();
  ASSERT_EQ(r.outputs_size(), 2);
  EXPECT_EQ(r.outputs(0).frame(), 4);
  EXPECT_EQ(r.outputs(0).name(), "f_004.png");
  EXPECT_EQ(r.outputs(1).name(), "f_005.png");
  EXPECT_EQ(r.outputs(0).sha256(), Sha256Hex(TinyPng()));
  EXPECT_TRUE(fake_.HasBlob(r.outputs(0).sha256()));
  EXPECT_TRUE(HasSubstr(r.log_text(), "frameflow: frame 5 ok (png 1x1"));
  // The site already had the frame's bytes (the scene is the same PNG).
  EXPECT_EQ(fake_.upload_calls(), 0);
}

TEST_F(RenderServerTest, EveryChunkStartsWithAnEmptyOutdirAndOnlyTheJobFiles) {
  // Each chunk lists its directories, then litters both.
  ASSERT_NO_FATAL_FAILURE(StartRenderServer(
      {Package("litter",
               "/bin/sh -c 'echo out: $(ls -A \"$0\"); echo job: $(ls -A); "
               "touch \"$0/stray\" stray; mkdir -p \"$0/d/e\" d' {outdir} {frame}")}));
  for (int c = 0; c < 3; ++c) fake_.Send(Assign("litter", "", c, {c + 1}));
  auto results = fake_.WaitForResults(3);
  for (int c = 0; c < 3; ++c) {
    SCOPED_TRACE("chunk " + std::to_string(c));
    EXPECT_TRUE(results[c].ok()) << results[c].error();
    EXPECT_TRUE(HasSubstr(results[c].log_text(), "\nout:\njob: scene.png\n"));
  }
}

TEST_F(RenderServerTest, LongLogIsUploadedAsABlob) {
  // 20,000 lines of 9 bytes: more than kInlineLogBytes.
  ASSERT_NO_FATAL_FAILURE(
      StartRenderServer({Package("chatty",
                                 "/bin/sh -c 'i=0; while [ $i -lt 20000 ]; do echo 12345678; "
                                 "i=$((i+1)); done' {frame}")}));
  fake_.Send(Assign("chatty", "", 0, {1}));
  auto results = fake_.WaitForResults(1);
  const pb::ChunkResult& r = results[0];
  ASSERT_TRUE(r.ok()) << r.error();
  EXPECT_EQ(r.log_text(), "");
  ASSERT_FALSE(r.log_sha256().empty());
  ASSERT_TRUE(fake_.HasBlob(r.log_sha256()));
  const std::string log = fake_.Blob(r.log_sha256());
  EXPECT_GT(log.size(), kInlineLogBytes);
  EXPECT_TRUE(HasSubstr(log, "12345678\n12345678\n"));
  EXPECT_EQ(fake_.upload_calls(), 1);
}

TEST_F(RenderServerTest, CancelKillsTheChunkAndEscalatesToSigkill) {
  // The renderer ignores SIGTERM: the cancel's SIGKILL follows after the
  // grace period.
  ASSERT_NO_FATAL_FAILURE(StartRenderServer(
      {Package("stubborn", "/bin/sh -c 'trap \"\" TERM; echo started; sleep 100' {frame}"),
       Package("true", "/bin/true {frame}")}));
  fake_.Send(Assign("stubborn", "", 0, {1}));
  fake_.Send(Assign("true", "", 1, {2}));  // queued behind chunk 0
  fake_.WaitForLogLine("started");         // chunk 0 runs
  pb::ScheduleServerMessage cancel;
  cancel.mutable_cancel()->set_job_id(1);
  cancel.mutable_cancel()->set_chunk(1);
  cancel.mutable_cancel()->set_attempt(1);
  fake_.Send(cancel);  // removes the queued chunk
  cancel.mutable_cancel()->set_chunk(0);
  cancel.mutable_cancel()->set_reason("job cancelled");
  fake_.Send(cancel);
  auto results = fake_.WaitForResults(1);
  EXPECT_EQ(results[0].chunk(), 0);
  EXPECT_FALSE(results[0].ok());
  EXPECT_EQ(results[0].error(), "cancelled: job cancelled");
  EXPECT_EQ(results[0].exit_code(), 128 + SIGKILL);
  // The cancelled queued chunk never runs: the next result is chunk 2's.
  fake_.Send(Assign("true", "", 2, {3}));
  results = fake_.WaitForResults(2);
  EXPECT_EQ(results[1].chunk(), 2);
  EXPECT_TRUE(results[1].ok()) << results[1].error();
}

}  // namespace
}  // namespace ff
