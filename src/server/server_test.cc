#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <unistd.h>

#include <thread>

#include "server/grpc_listener.h"
#include "server/http_listener.h"
#include "server/metrics.h"
#include "server/shutdown_signals.h"

namespace ff {
namespace {

TEST(ShutdownSignalsTest, ReadsSignalsFromTheSignalfdAndCanBeInterrupted) {
  auto signals = ShutdownSignals::Install();
  ASSERT_TRUE(signals.ok()) << signals.status().message();
  EXPECT_EQ((*signals)->Wait(0), 0);          // nothing pending
  ASSERT_EQ(::kill(::getpid(), SIGTERM), 0);  // blocked: queued, not fatal
  EXPECT_EQ((*signals)->Wait(), SIGTERM);
  ASSERT_EQ(::kill(::getpid(), SIGINT), 0);
  EXPECT_EQ((*signals)->Wait(), SIGINT);
  std::thread t([&] { (*signals)->Interrupt(); });
  EXPECT_EQ((*signals)->Wait(), 0);
  t.join();
}

TEST(MetricsTest, TextExpositionFormat) {
  MetricsRegistry m;
  Counter* c = m.AddCounter("frameflow_test_total", "Things counted.");
  c->Increment(3);
  m.AddGaugeCallback("frameflow_test_gauge", "A gauge.", [] { return int64_t{7}; });
  Histogram* h = m.AddHistogram("frameflow_test_seconds", "Times.", {0.1, 1});
  h->Observe(0.05);
  h->Observe(0.5);
  h->Observe(5);
  EXPECT_EQ(m.Exposition(),
            "# HELP frameflow_test_total Things counted.\n"
            "# TYPE frameflow_test_total counter\n"
            "frameflow_test_total 3\n"
            "# HELP frameflow_test_gauge A gauge.\n"
            "# TYPE frameflow_test_gauge gauge\n"
            "frameflow_test_gauge 7\n"
            "# HELP frameflow_test_seconds Times.\n"
            "# TYPE frameflow_test_seconds histogram\n"
            "frameflow_test_seconds_bucket{le=\"0.10000000000000001\"} 1\n"
            "frameflow_test_seconds_bucket{le=\"1\"} 2\n"
            "frameflow_test_seconds_bucket{le=\"+Inf\"} 3\n"
            "frameflow_test_seconds_sum 5.5499999999999998\n"
            "frameflow_test_seconds_count 3\n");
}

TEST(HttpListenerTest, ServesHealthzAndMetricsOnAnyFreePort) {
  MetricsRegistry m;
  m.AddCounter("frameflow_requests_total", "Requests.")->Increment();
  auto l = HttpListener::Start("127.0.0.1:0", &m);
  ASSERT_TRUE(l.ok()) << l.status().message();
  auto hp = SplitListenAddress((*l)->address());
  ASSERT_TRUE(hp.ok());
  EXPECT_GT(hp->port, 0);
  httplib::Client client("127.0.0.1", hp->port);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(health->body, "ok\n");
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("frameflow_requests_total 1\n"), std::string::npos);
  (*l)->Stop();
}

TEST(GrpcListenerTest, SplitsAndChecksListenAddresses) {
  auto hp = SplitListenAddress("0.0.0.0:7450");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "0.0.0.0");
  EXPECT_EQ(hp->port, 7450);
  EXPECT_EQ(SplitListenAddress("[::1]:0")->host, "::1");
  EXPECT_FALSE(SplitListenAddress("localhost").ok());
  EXPECT_FALSE(SplitListenAddress("localhost:70000").ok());
  EXPECT_FALSE(SplitListenAddress("localhost:x").ok());
}

}  // namespace
}  // namespace ff
