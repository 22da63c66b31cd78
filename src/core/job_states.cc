#include "core/job_states.h"

namespace ff {

namespace {

template <typename E, size_t N>
std::optional<E> ParseByName(std::string_view name, const E (&all)[N], const char* (*name_of)(E)) {
  for (E e : all) {
    if (name == name_of(e)) return e;
  }
  return std::nullopt;
}

constexpr JobQueue kAllQueues[] = {JobQueue::kNone, JobQueue::kNew, JobQueue::kActive,
                                   JobQueue::kOutsourced};
constexpr ExchangeState kAllExchangeStates[] = {
    ExchangeState::kNone,       ExchangeState::kPackaging,  ExchangeState::kShipping,
    ExchangeState::kDelivered,  ExchangeState::kRejected,   ExchangeState::kNotSent,
    ExchangeState::kCancelling, ExchangeState::kCancelSent, ExchangeState::kReturning,
    ExchangeState::kReturned};

}  // namespace

const char* JobQueueName(JobQueue q) {
  switch (q) {
    case JobQueue::kNone:
      return "";
    case JobQueue::kNew:
      return "new";
    case JobQueue::kActive:
      return "active";
    case JobQueue::kOutsourced:
      return "outsourced";
  }
  return "?";
}

std::optional<JobQueue> ParseJobQueue(std::string_view name) {
  return ParseByName(name, kAllQueues, &JobQueueName);
}

std::optional<JobQueue> QueueTransition(JobQueue from, QueueEvent event) {
  switch (event) {
    case QueueEvent::kPlacedLocally:
      return from == JobQueue::kNew ? std::optional(JobQueue::kActive) : std::nullopt;
    case QueueEvent::kOutsourced:
      return from == JobQueue::kNew ? std::optional(JobQueue::kOutsourced) : std::nullopt;
    case QueueEvent::kAcceptedFromPeer:
      return from == JobQueue::kNone ? std::optional(JobQueue::kActive) : std::nullopt;
    case QueueEvent::kLeft:
      return JobQueue::kNone;
  }
  return std::nullopt;
}

const char* ExchangeStateName(ExchangeState s) {
  switch (s) {
    case ExchangeState::kNone:
      return "";
    case ExchangeState::kPackaging:
      return "packaging";
    case ExchangeState::kShipping:
      return "shipping";
    case ExchangeState::kDelivered:
      return "delivered";
    case ExchangeState::kRejected:
      return "rejected";
    case ExchangeState::kNotSent:
      return "not sent";
    case ExchangeState::kCancelling:
      return "cancelling";
    case ExchangeState::kCancelSent:
      return "cancel sent";
    case ExchangeState::kReturning:
      return "returning";
    case ExchangeState::kReturned:
      return "returned";
  }
  return "?";
}

std::optional<ExchangeState> ParseExchangeState(std::string_view name) {
  return ParseByName(name, kAllExchangeStates, &ExchangeStateName);
}

std::optional<ExchangeState> ExchangeTransition(ExchangeState from, ExchangeEvent event) {
  using S = ExchangeState;
  switch (event) {
    case ExchangeEvent::kOutsourced:
      if (from == S::kNone) return S::kPackaging;
      break;
    case ExchangeEvent::kPackaged:
      if (from == S::kPackaging) return S::kShipping;
      // Cancelled while the package was written: the peer must hear of it.
      if (from == S::kNotSent) return S::kCancelling;
      break;
    case ExchangeEvent::kDelivered:
      if (from == S::kPackaging || from == S::kShipping) return S::kDelivered;
      break;
    case ExchangeEvent::kRejected:
      if (from != S::kNone && from != S::kReturned) return S::kRejected;
      break;
    case ExchangeEvent::kCancelledUnsent:
      if (from == S::kPackaging) return S::kNotSent;
      break;
    case ExchangeEvent::kCancelled:
      if (from != S::kRejected && from != S::kReturned) return S::kCancelling;
      break;
    case ExchangeEvent::kCancelSent:
      if (from == S::kCancelling) return S::kCancelSent;
      break;
    case ExchangeEvent::kRemoteEnded:
      if (from == S::kNone || from == S::kReturning) return S::kReturning;
      break;
    case ExchangeEvent::kResultReturned:
      if (from == S::kReturning) return S::kReturned;
      break;
    case ExchangeEvent::kResultReceived:
      return S::kReturned;
  }
  return std::nullopt;
}

bool ExchangeWorkDue(ExchangeState s) {
  return s == ExchangeState::kPackaging || s == ExchangeState::kCancelling ||
         s == ExchangeState::kReturning;
}

}  // namespace ff
