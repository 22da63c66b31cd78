// Dispatch load generator: many simulated render servers speak the real
// render-server protocol to a real `frameflow schedule-server` process and
// complete every chunk the moment it arrives (a no-op package), so what is
// measured is the schedule server: dispatch, durable recording, result
// handling.
//
//   dispatch_load --frameflow build/frameflow --servers 10 --slots 10 --frames 10000
//
// Prints dispatches/s (chunks assigned, completed and durably recorded, from
// submit to job done), dispatch latency (a slot's result sent -> its next
// assignment received) p50/p99/max, and the schedule server's CPU time and
// peak RSS, then a RESULT line.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <mutex>
#include <thread>

#include "cli/client_commands.h"
#include "rpc/blob_client.h"
#include "util/fs.h"
#include "util/process.h"
#include "util/sha256.h"

namespace pb = frameflow::v1;
using Clock = std::chrono::steady_clock;

namespace {

struct ProcStats {
  double cpu_s = 0;
  int64_t peak_rss_kb = 0;
};

ProcStats ReadProcStats(int pid) {
  ProcStats s;
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) s.peak_rss_kb = std::stoll(line.substr(6));
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string all((std::istreambuf_iterator<char>(stat)), {});
  size_t close = all.rfind(')');
  if (close != std::string::npos) {
    std::istringstream in(all.substr(close + 2));
    std::string field;
    long utime = 0, stime = 0;
    for (int i = 3; in >> field; ++i) {
      if (i == 14) utime = std::stol(field);
      if (i == 15) {
        stime = std::stol(field);
        break;
      }
    }
    s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }
  return s;
}

double Percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"frameflow dispatch load generator"};
  std::string binary = "build/frameflow";
  int servers = 10, slots = 10;
  int64_t frames = 10000;
  app.add_option("--frameflow", binary, "frameflow binary");
  app.add_option("--servers", servers, "simulated render servers");
  app.add_option("--slots", slots, "slots per simulated render server");
  app.add_option("--frames", frames, "frames (one chunk each) to dispatch");
  CLI11_PARSE(app, argc, argv);

  auto root = ff::MakeTempDir("frameflow-load");
  if (!root.ok()) return 1;
  std::string site_toml = *root + "/site.toml";
  std::ofstream(site_toml) << "[site]\nroot = \"" << *root
                           << "/site\"\n[schedule_server]\nlisten = \"127.0.0.1:0\"\n"
                              "heartbeat_timeout = \"60s\"\n";
  std::ofstream log(*root + "/schedule-server.log");
  ff::ProcessSpec spec;
  spec.argv = {binary, "schedule-server", "--config", site_toml};
  auto server =
      ff::DefaultProcessLauncher()->Start(spec, [&](const std::string& l) { log << l << "\n"; });
  if (!server.ok()) {
    std::cerr << server.status().message() << "\n";
    return 1;
  }
  std::string addr_file = *root + "/site/schedule-server.addr";
  while (!ff::PathExists(addr_file)) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ff::ClientOptions opts;
  opts.site_root = *root + "/site";
  auto stub = opts.Connect();
  if (!stub.ok()) {
    std::cerr << stub.status().message() << "\n";
    return 1;
  }

  // One tiny valid PNG serves as every frame's output (uploaded once).
  std::string png = std::string(FRAMEFLOW_SOURCE_DIR) + "/examples/clock/textures/dial.png";
  int64_t png_size = 0;
  std::string png_sha = *ff::Sha256File(png, &png_size);
  if (!ff::UploadFileBlob(stub->get(), png, png_sha, png_size).ok()) return 1;

  std::atomic<int64_t> completed{0};
  std::mutex lat_mu;
  std::vector<double> latencies_ms;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::string address = *ff::ReadFile(addr_file);
  address.erase(address.find_last_not_of("\n ") + 1);
  for (int s = 0; s < servers; ++s) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* ctx = contexts.back().get();
    threads.emplace_back([&, s, ctx] {
      auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
      auto st = pb::ScheduleServer::NewStub(channel);
      auto stream = st->Connect(ctx);
      pb::RenderServerMessage hello;
      auto* reg = hello.mutable_register_();
      reg->set_render_server("sim" + std::to_string(s));
      reg->set_host("simhost" + std::to_string(s));
      reg->mutable_hardware()->set_cores(slots);
      auto* p = reg->add_packages();
      p->set_name("noop");
      p->set_version("1");
      p->set_kind("command");
      for (int i = 0; i < slots; ++i) {
        auto* sl = reg->add_slots();
        sl->set_name(std::to_string(i));
        sl->set_cores(1);
        sl->set_memory_bytes(1LL << 30);
      }
      stream->Write(hello);
      std::map<std::string, Clock::time_point> sent;
      pb::ScheduleServerMessage in;
      while (stream->Read(&in)) {
        if (!in.has_assign()) continue;
        const auto& a = in.assign();
        auto now = Clock::now();
        auto it = sent.find(a.slot());
        if (it != sent.end()) {
          double ms = std::chrono::duration<double, std::milli>(now - it->second).count();
          std::lock_guard<std::mutex> lock(lat_mu);
          latencies_ms.push_back(ms);
        }
        pb::RenderServerMessage out;
        auto* r = out.mutable_result();
        r->set_job_id(a.job_id());
        r->set_chunk(a.chunk());
        r->set_attempt(a.attempt());
        r->set_ok(true);
        for (int64_t f : a.frames()) {
          auto* o = r->add_outputs();
          o->set_frame(f);
          o->set_sha256(png_sha);
          o->set_size(png_size);
        }
        sent[a.slot()] = Clock::now();
        if (!stream->Write(out)) break;
        completed += a.frames_size();
      }
    });
  }

  // Wait for every simulated server to register.
  for (int i = 0; i < 500; ++i) {
    pb::ListHostsRequest req;
    pb::ListHostsResponse resp;
    grpc::ClientContext c;
    (*stub)->ListHosts(&c, req, &resp);
    if (resp.hosts_size() == servers) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  std::string jobdir = *root + "/job";
  (void)ff::MakeDirs(jobdir);
  (void)ff::LinkOrCopy(png, jobdir + "/plate.png");
  std::ofstream(jobdir + "/job.toml")
      << "name = \"load\"\nframes = \"1-" << frames
      << "\"\nchunk_size = 1\n[package]\nname = \"noop\"\n[render]\nscene = \"plate.png\"\n"
         "output = \"f_#######.png\"\n";
  auto t0 = Clock::now();
  auto id = ff::SubmitJob(stub->get(), jobdir + "/job.toml");
  if (!id.ok()) {
    std::cerr << id.status().message() << "\n";
    return 1;
  }
  auto t_submitted = Clock::now();
  auto info = ff::WaitForJob(stub->get(), *id, false);
  auto t1 = Clock::now();
  ProcStats ps = ReadProcStats((*server)->pid());
  double secs = std::chrono::duration<double>(t1 - t_submitted).count();
  double submit_s = std::chrono::duration<double>(t_submitted - t0).count();

  ::kill((*server)->pid(), SIGTERM);
  for (auto& c : contexts) c->TryCancel();
  for (auto& t : threads) t.join();
  (*server)->Wait();
  (void)ff::RemoveAll(*root);

  std::vector<double> lat = latencies_ms;
  double p50 = Percentile(lat, 0.50), p99 = Percentile(lat, 0.99);
  double max = lat.empty() ? 0 : lat.back();
  std::printf("job %s: %lld chunks on %d slots (%d servers x %d) in %.2f s after a %.2f s submit\n",
              info.ok() ? info->state().c_str() : "?", static_cast<long long>(frames),
              servers * slots, servers, slots, secs, submit_s);
  std::printf(
      "dispatches/s %.0f  latency p50 %.2f ms p99 %.2f ms max %.2f ms  cpu %.2f s  "
      "peak rss %lld MiB\n",
      static_cast<double>(frames) / secs, p50, p99, max, ps.cpu_s,
      static_cast<long long>(ps.peak_rss_kb / 1024));
  std::printf(
      "RESULT dispatch slots=%d frames=%lld per_s=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f "
      "cpu_s=%.2f rss_mib=%lld\n",
      servers * slots, static_cast<long long>(frames), static_cast<double>(frames) / secs, p50, p99,
      max, ps.cpu_s, static_cast<long long>(ps.peak_rss_kb / 1024));
  return info.ok() && info->state() == "done" ? 0 : 1;
}
