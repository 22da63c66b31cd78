#include "scheduler/notifier.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "util/process.h"

namespace ff {

namespace {
constexpr int kCommandTimeoutSeconds = 60;
}  // namespace

Notifier::Notifier() {
  thread_ = std::thread([this] { Loop(); });
}

Notifier::~Notifier() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Notifier::JobEnded(const frameflow::v1::JobInfo& job, const std::vector<NotifyTarget>& targets,
                        std::function<void()> delivered) {
  if (targets.empty()) {
    if (delivered) delivered();
    return;
  }
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < targets.size(); ++i) {
    queue_.push_back(
        Delivery{job, targets[i], i + 1 == targets.size() ? std::move(delivered) : nullptr});
  }
  cv_.notify_all();
}

std::string Notifier::WebhookBody(const frameflow::v1::JobInfo& job) {
  nlohmann::json body = {
      {"event", "job." + job.state()},
      {"job_id", job.job_id()},
      {"name", job.name()},
      {"state", job.state()},
      {"frames", job.frames()},
      {"frames_total", job.frames_total()},
      {"frames_done", job.frames_done()},
      {"frames_failed", job.frames_failed()},
      {"storage_dir", job.storage_dir()},
      {"error", job.error()},
  };
  return body.dump();
}

void Notifier::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    Delivery d = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    Deliver(d);
    if (d.after) d.after();
    lock.lock();
  }
}

void Notifier::Deliver(const Delivery& d) {
  const auto& job = d.job;
  if (!d.target.webhook.empty()) {
    // Split "http://host:port/path" into the client base and the path.
    const std::string& url = d.target.webhook;
    size_t scheme_end = url.find("://");
    size_t path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    std::string base = path_start == std::string::npos ? url : url.substr(0, path_start);
    std::string path = path_start == std::string::npos ? "/" : url.substr(path_start);
    std::string body = WebhookBody(job);
    std::string outcome;
    for (int attempt = 1; attempt <= 3; ++attempt) {
      httplib::Client client(base);
      client.set_connection_timeout(5);
      client.set_read_timeout(5);
      client.set_write_timeout(5);
      auto res = client.Post(path, body, "application/json");
      if (res && res->status >= 200 && res->status < 300) {
        outcome.clear();
        break;
      }
      outcome = res ? "HTTP " + std::to_string(res->status) : httplib::to_string(res.error());
      std::this_thread::sleep_for(std::chrono::milliseconds(500 * attempt));
    }
    if (outcome.empty()) {
      spdlog::info("job {}: webhook {} notified", job.job_id(), url);
    } else {
      spdlog::warn("job {}: webhook {} failed after 3 attempts: {}", job.job_id(), url, outcome);
    }
  }
  if (!d.target.command.empty()) {
    ProcessSpec spec;
    spec.argv = {"/bin/sh", "-c", d.target.command};
    spec.env = {"FRAMEFLOW_JOB_ID=" + std::to_string(job.job_id()),
                "FRAMEFLOW_JOB_NAME=" + job.name(), "FRAMEFLOW_JOB_STATE=" + job.state(),
                "FRAMEFLOW_JOB_DIR=" + job.storage_dir(), "FRAMEFLOW_JOB_ERROR=" + job.error()};
    std::string output;
    auto proc = DefaultProcessLauncher()->Start(spec, [&](const std::string& line) {
      if (output.size() < 4096) output += line + "\n";
    });
    if (!proc.ok()) {
      spdlog::warn("job {}: notify command failed to start: {}", job.job_id(),
                   proc.status().message());
      return;
    }
    // A hanging command must not hold up later notifications or shutdown.
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    std::thread watchdog([&] {
      std::unique_lock<std::mutex> lock(m);
      if (!cv.wait_for(lock, std::chrono::seconds(kCommandTimeoutSeconds), [&] { return done; })) {
        (*proc)->KillTree(0);
      }
    });
    int code = (*proc)->Wait();
    {
      std::lock_guard<std::mutex> lock(m);
      done = true;
    }
    cv.notify_all();
    watchdog.join();
    if (code == 0) {
      spdlog::info("job {}: notify command ran", job.job_id());
    } else {
      spdlog::warn("job {}: notify command exited with code {}: {}", job.job_id(), code, output);
    }
  }
}

}  // namespace ff
