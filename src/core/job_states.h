// Where a job stands: the queue it is in (DESIGN.md R6) and, for a job that
// crosses sites, its step in the hot-folder exchange (R7, R10;
// docs/outsourcing.md). Typed, so a typo does not compile; each machine has
// one transition function, so every change of state is a named event whose
// effect is written and tested in one place (job_states_test.cc).
#pragma once

#include <optional>
#include <string_view>

namespace ff {

// ---- queues --------------------------------------------------------------

enum class JobQueue {
  kNone,        // left every queue (final, or a remote job whose results went back)
  kNew,         // the local intake queue: placement not decided yet
  kActive,      // the site's priority-ordered run queue
  kOutsourced,  // sent to a remote rendering site
};
// "", "new", "active", "outsourced": the names stored and shown.
const char* JobQueueName(JobQueue q);
std::optional<JobQueue> ParseJobQueue(std::string_view name);

enum class QueueEvent {
  kPlacedLocally,     // new -> active
  kOutsourced,        // new -> outsourced
  kAcceptedFromPeer,  // (a remote job arrives) none -> active
  kLeft,              // the job ended (for a remote job: its results went back) -> none
};
// The queue after `event`, or nullopt when the event does not apply in
// `from` (the caller leaves the job where it is).
std::optional<JobQueue> QueueTransition(JobQueue from, QueueEvent event);

// ---- the hot-folder exchange ----------------------------------------------

enum class ExchangeState {
  kNone,  // a local job: no exchange
  // Origin side (an outsourced job).
  kPackaging,   // its job package is to be written to hotfolders/out
  kShipping,    // the package is in hotfolders/out; the courier sends it
  kDelivered,   // the peer holds the package (and may have ingested it)
  kRejected,    // the peer quarantined the package
  kNotSent,     // cancelled before its package was handed to the exchange
  kCancelling,  // a cancel package is to be written
  kCancelSent,  // the cancel package is in hotfolders/out
  // Remote side (a job accepted from a peer); also the origin's last step.
  kReturning,  // ended here: its result package is to be written
  kReturned,   // results returned (remote) / received and stored (origin)
};
// "", "packaging", "shipping", "delivered", "rejected", "not sent",
// "cancelling", "cancel sent", "returning", "returned".
const char* ExchangeStateName(ExchangeState s);
std::optional<ExchangeState> ParseExchangeState(std::string_view name);

enum class ExchangeEvent {
  kOutsourced,       // placed on a peer: none -> packaging
  kPackaged,         // job package written: packaging -> shipping; not sent -> cancelling
  kDelivered,        // the courier or the peer's status: packaging | shipping -> delivered
  kRejected,         // the peer refused the package: any unfinished step -> rejected
  kCancelledUnsent,  // cancelled while the package was not handed out: packaging -> not sent
  kCancelled,        // cancelled: -> cancelling, unless rejected or results returned
  kCancelSent,       // cancel package written: cancelling -> cancel sent
  kRemoteEnded,      // a remote job ended here: none (or returning) -> returning
  kResultReturned,   // its result package was written: returning -> returned
  kResultReceived,   // origin: the result package was stored: -> returned
};
// The state after `event`, or nullopt when the event does not apply in
// `from` (a late or repeated event: the caller ignores it).
std::optional<ExchangeState> ExchangeTransition(ExchangeState from, ExchangeEvent event);

// Whether the exchange has hot-folder work to do for a job in `s` (write a
// job, cancel or result package).
bool ExchangeWorkDue(ExchangeState s);

}  // namespace ff
