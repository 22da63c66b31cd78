// Notifier: tells the client a job has ended, through the notify targets of
// its description — an HTTP webhook POST with a JSON body and/or a shell
// command with the job in its environment (FRAMEFLOW_JOB_ID, _NAME, _STATE,
// _DIR, _ERROR).
//
// Deliveries run on the notifier's own thread so a slow webhook never holds
// up dispatch. A webhook is tried up to 3 times (5 s timeout each); failures
// are logged; a command is killed after 60 s. The scheduler records in the
// resource database that a job was announced (the `delivered` callback), so a
// job is announced once: a job that ended while the server was down, or
// whose announcement was cut by a crash, is announced after the restart.
// Thread-safety: JobEnded() may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/job_profile.h"
#include "rpc/protocol.h"

namespace ff {

class Notifier {
 public:
  Notifier();
  ~Notifier();  // delivers what is queued, then stops

  // Queues one delivery per target; `delivered` (optional) runs on the
  // notifier's thread once every target was tried.
  void JobEnded(const frameflow::v1::JobInfo& job, const std::vector<NotifyTarget>& targets,
                std::function<void()> delivered = nullptr);

  // The JSON body a webhook receives.
  static std::string WebhookBody(const frameflow::v1::JobInfo& job);

 private:
  struct Delivery {
    frameflow::v1::JobInfo job;
    NotifyTarget target;
    std::function<void()> after;
  };
  void Loop();
  void Deliver(const Delivery& d);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Delivery> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;       // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace ff
