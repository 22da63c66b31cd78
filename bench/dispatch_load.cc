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
//
// With --hold-ms 0 (the default) every slot reports its chunk done the moment
// it arrives: the schedule server is saturated and throughput is its
// capacity. In that closed loop every slot always waits on the server, so
// latency is slots / throughput (Little's law) whatever the server does. To
// measure latency at a given load, --hold-ms T makes each slot hold a chunk
// for a random time, uniform in [0, 2T] ms (a render that takes T on average)
// before reporting it: the offered load is slots / T chunks per second.
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
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
  int hold_ms = 0;
  int jobs = 1;
  app.add_option("--jobs", jobs,
                 "split the frames over this many jobs (submitted one after another)");
  app.add_option("--hold-ms", hold_ms, "simulated render time per chunk (0: report at once)");
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

  // Frame outputs: a pool of distinct small PNGs (a real PNG with a distinct
  // trailer each), uploaded once. Distinct, because storage hard-links a
  // frame to its blob and a file system caps the links per inode (ext4:
  // 65,000); a million frames share 256 blobs.
  std::string png = std::string(FRAMEFLOW_SOURCE_DIR) + "/examples/clock/textures/dial.png";
  std::string png_data = *ff::ReadFile(png);
  std::vector<std::pair<std::string, int64_t>> outputs;  // sha256, size
  for (int i = 0; i < 256; ++i) {
    std::string data = png_data + "frameflow-load-" + std::to_string(i);
    std::string path = *root + "/out" + std::to_string(i) + ".png";
    if (!ff::WriteFileAtomic(path, data).ok()) return 1;
    std::string sha = ff::Sha256Hex(data);
    auto size = static_cast<int64_t>(data.size());
    if (!ff::UploadFileBlob(stub->get(), path, sha, size).ok()) return 1;
    outputs.emplace_back(sha, size);
  }

  std::atomic<int64_t> completed{0};
  std::mutex lat_mu;
  std::vector<double> latencies_ms;
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::string address = *ff::ReadFile(addr_file);
  address.erase(address.find_last_not_of("\n ") + 1);
  // Every job is queued before the simulated render servers connect, so
  // what is timed is dispatch of J queued jobs, not the client submitting.
  std::string jobdir = *root + "/job";
  (void)ff::MakeDirs(jobdir);
  (void)ff::LinkOrCopy(png, jobdir + "/plate.png");
  jobs = std::max(1, static_cast<int>(std::min<int64_t>(jobs, frames)));
  auto t0 = Clock::now();
  std::vector<int64_t> ids;
  for (int j = 0; j < jobs; ++j) {
    int64_t first = 1 + frames * j / jobs, last = frames * (j + 1) / jobs;
    std::ofstream(jobdir + "/job.toml", std::ios::trunc)
        << "name = \"load" << j << "\"\nframes = \"" << first << "-" << last
        << "\"\nchunk_size = 1\n[package]\nname = \"noop\"\n[render]\nscene = \"plate.png\"\n"
           "output = \"f_#######.png\"\n";
    auto id = ff::SubmitJob(stub->get(), jobdir + "/job.toml");
    if (!id.ok()) {
      std::cerr << id.status().message() << "\n";
      return 1;
    }
    ids.push_back(*id);
  }
  auto t_all_submitted = Clock::now();
  auto t_submitted = t_all_submitted;  // dispatch starts as servers register
  for (int s = 0; s < servers; ++s) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    grpc::ClientContext* ctx = contexts.back().get();
    threads.emplace_back([&, s, ctx] {
      auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
      auto st = pb::RenderServerLink::NewStub(channel);
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
      std::map<std::string, Clock::time_point> sent;  // slot -> its result sent
      std::mutex write_mu;                            // one writer per stream
      auto report = [&](const pb::Assignment& a) {
        pb::RenderServerMessage out;
        auto* r = out.mutable_result();
        r->set_job_id(a.job_id());
        r->set_chunk(a.chunk());
        r->set_attempt(a.attempt());
        r->set_ok(true);
        for (int64_t f : a.frames()) {
          const auto& [sha, size] = outputs[static_cast<size_t>(f) % outputs.size()];
          auto* o = r->add_outputs();
          o->set_frame(f);
          o->set_sha256(sha);
          o->set_size(size);
        }
        std::lock_guard<std::mutex> lock(write_mu);
        sent[a.slot()] = Clock::now();
        if (stream->Write(out)) completed += a.frames_size();
      };
      // Held chunks: reported by this server's timer thread when due.
      std::mutex held_mu;
      std::condition_variable held_cv;
      std::multimap<Clock::time_point, pb::Assignment> held;
      bool reading = true;
      std::thread timer;
      if (hold_ms > 0) {
        timer = std::thread([&] {
          std::unique_lock<std::mutex> lock(held_mu);
          while (reading || !held.empty()) {
            if (held.empty()) {
              held_cv.wait(lock);
              continue;
            }
            auto due = held.begin()->first;
            if (Clock::now() < due) {
              held_cv.wait_until(lock, due);
              continue;
            }
            pb::Assignment a = std::move(held.begin()->second);
            held.erase(held.begin());
            lock.unlock();
            report(a);
            lock.lock();
          }
        });
      }
      std::mt19937 rng(static_cast<unsigned>(s) * 7919u + 1u);
      std::uniform_int_distribution<int64_t> hold_us(0, int64_t{2000} * hold_ms);
      pb::ScheduleServerMessage in;
      while (stream->Read(&in)) {
        if (!in.has_assign()) continue;
        const auto& a = in.assign();
        auto now = Clock::now();
        {
          std::lock_guard<std::mutex> lock(write_mu);
          auto it = sent.find(a.slot());
          if (it != sent.end()) {
            double ms = std::chrono::duration<double, std::milli>(now - it->second).count();
            std::lock_guard<std::mutex> lat_lock(lat_mu);
            latencies_ms.push_back(ms);
          }
        }
        if (hold_ms == 0) {
          report(a);
        } else {
          // Render times vary: uniform in [0, 2 x hold], so completions do
          // not arrive in lockstep bursts of every slot at once.
          auto hold = std::chrono::microseconds(hold_us(rng));
          std::lock_guard<std::mutex> lock(held_mu);
          held.emplace(now + hold, a);
          held_cv.notify_one();
        }
      }
      {
        std::lock_guard<std::mutex> lock(held_mu);
        reading = false;
        held.clear();
        held_cv.notify_one();
      }
      if (timer.joinable()) timer.join();
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

  ff::Result<frameflow::v1::JobInfo> info = ff::NotFound("no job");
  bool all_done = true;
  for (int64_t id : ids) {
    info = ff::WaitForJob(stub->get(), id, false);
    all_done = all_done && info.ok() && info->state() == "done";
  }
  auto t1 = Clock::now();
  ProcStats ps = ReadProcStats((*server)->pid());
  double secs = std::chrono::duration<double>(t1 - t_submitted).count();
  double submit_s = std::chrono::duration<double>(t_all_submitted - t0).count();

  ::kill((*server)->pid(), SIGTERM);
  for (auto& c : contexts) c->TryCancel();
  for (auto& t : threads) t.join();
  (*server)->Wait();
  (void)ff::RemoveAll(*root);

  std::vector<double> lat = latencies_ms;
  double p50 = Percentile(lat, 0.50), p99 = Percentile(lat, 0.99);
  double max = lat.empty() ? 0 : lat.back();
  std::printf(
      "%d job(s) %s: %lld chunks on %d slots (%d servers x %d), hold %d ms, in %.2f s; "
      "submitting took %.2f s\n",
      jobs, all_done ? "done" : "NOT done", static_cast<long long>(frames), servers * slots,
      servers, slots, hold_ms, secs, submit_s);
  std::printf(
      "dispatches/s %.0f  latency p50 %.2f ms p99 %.2f ms max %.2f ms  cpu %.2f s  "
      "peak rss %lld MiB\n",
      static_cast<double>(frames) / secs, p50, p99, max, ps.cpu_s,
      static_cast<long long>(ps.peak_rss_kb / 1024));
  std::printf(
      "RESULT dispatch slots=%d frames=%lld jobs=%d hold_ms=%d per_s=%.0f p50_ms=%.2f p99_ms=%.2f "
      "max_ms=%.2f cpu_s=%.2f rss_mib=%lld submit_s=%.2f\n",
      servers * slots, static_cast<long long>(frames), jobs, hold_ms,
      static_cast<double>(frames) / secs, p50, p99, max, ps.cpu_s,
      static_cast<long long>(ps.peak_rss_kb / 1024), submit_s);
  return all_done ? 0 : 1;
}
