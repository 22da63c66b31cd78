// Notifier: tells the client a job has ended, through the notify targets of
// its description — an HTTP webhook POST with a JSON body and/or a shell
// command with the job in its environment (FRAMEFLOW_JOB_ID, _NAME, _STATE,
// _DIR, _ERROR).
//
// Deliveries run on the notifier's own thread so a slow webhook never holds
// up dispatch. A webhook is tried up to 3 times (5 s timeout each); failures
// are logged; a command is killed after 60 s. Delivery is at-most-once per schedule server life: a
// job that ends while the server is down is not re-announced after restart. Thread-safety:
// JobEnded() may be called from any thread.
#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/job_profile.h"
#include "rpc/frameflow.pb.h"

namespace ff {

class Notifier {
 public:
  Notifier();
  ~Notifier();  // delivers what is queued, then stops

  void JobEnded(const frameflow::v1::JobInfo& job, const std::vector<NotifyTarget>& targets);

  // The JSON body a webhook receives.
  static std::string WebhookBody(const frameflow::v1::JobInfo& job);

 private:
  struct Delivery {
    frameflow::v1::JobInfo job;
    NotifyTarget target;
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
