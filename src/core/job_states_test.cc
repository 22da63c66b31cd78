#include "core/job_states.h"

#include <gtest/gtest.h>

namespace ff {
namespace {

TEST(JobStatesTest, NamesRoundTrip) {
  for (JobQueue q : {JobQueue::kNone, JobQueue::kNew, JobQueue::kActive, JobQueue::kOutsourced}) {
    EXPECT_EQ(ParseJobQueue(JobQueueName(q)), q);
  }
  for (ExchangeState s :
       {ExchangeState::kNone, ExchangeState::kPackaging, ExchangeState::kShipping,
        ExchangeState::kDelivered, ExchangeState::kRejected, ExchangeState::kNotSent,
        ExchangeState::kCancelling, ExchangeState::kCancelSent, ExchangeState::kReturning,
        ExchangeState::kReturned}) {
    EXPECT_EQ(ParseExchangeState(ExchangeStateName(s)), s);
  }
  EXPECT_STREQ(ExchangeStateName(ExchangeState::kNotSent), "not sent");
  EXPECT_FALSE(ParseJobQueue("activ").has_value());
  EXPECT_FALSE(ParseExchangeState("shipped").has_value());
}

TEST(JobStatesTest, QueueTransitions) {
  EXPECT_EQ(QueueTransition(JobQueue::kNew, QueueEvent::kPlacedLocally), JobQueue::kActive);
  EXPECT_EQ(QueueTransition(JobQueue::kNew, QueueEvent::kOutsourced), JobQueue::kOutsourced);
  EXPECT_EQ(QueueTransition(JobQueue::kNone, QueueEvent::kAcceptedFromPeer), JobQueue::kActive);
  EXPECT_EQ(QueueTransition(JobQueue::kOutsourced, QueueEvent::kLeft), JobQueue::kNone);
  EXPECT_FALSE(QueueTransition(JobQueue::kActive, QueueEvent::kOutsourced).has_value());
}

TEST(JobStatesTest, AnOutsourcedJobsWayThroughTheExchange) {
  using S = ExchangeState;
  using E = ExchangeEvent;
  EXPECT_EQ(ExchangeTransition(S::kNone, E::kOutsourced), S::kPackaging);
  EXPECT_EQ(ExchangeTransition(S::kPackaging, E::kPackaged), S::kShipping);
  EXPECT_EQ(ExchangeTransition(S::kShipping, E::kDelivered), S::kDelivered);
  EXPECT_EQ(ExchangeTransition(S::kDelivered, E::kResultReceived), S::kReturned);
  // Late or repeated events do not apply.
  EXPECT_FALSE(ExchangeTransition(S::kDelivered, E::kDelivered).has_value());
  EXPECT_FALSE(ExchangeTransition(S::kShipping, E::kPackaged).has_value());
  EXPECT_FALSE(ExchangeTransition(S::kReturned, E::kRejected).has_value());
}

TEST(JobStatesTest, CancellingAnOutsourcedJob) {
  using S = ExchangeState;
  using E = ExchangeEvent;
  // Before its package left: nothing to tell the peer, unless the package
  // was being written at that moment.
  EXPECT_EQ(ExchangeTransition(S::kPackaging, E::kCancelledUnsent), S::kNotSent);
  EXPECT_EQ(ExchangeTransition(S::kNotSent, E::kPackaged), S::kCancelling);
  EXPECT_EQ(ExchangeTransition(S::kDelivered, E::kCancelled), S::kCancelling);
  EXPECT_EQ(ExchangeTransition(S::kCancelling, E::kCancelSent), S::kCancelSent);
  EXPECT_FALSE(ExchangeTransition(S::kRejected, E::kCancelled).has_value());
  EXPECT_FALSE(ExchangeTransition(S::kReturned, E::kCancelled).has_value());
  EXPECT_FALSE(ExchangeTransition(S::kCancelSent, E::kCancelSent).has_value());
}

TEST(JobStatesTest, ARemoteJobReturnsItsResultsOnce) {
  using S = ExchangeState;
  using E = ExchangeEvent;
  EXPECT_EQ(ExchangeTransition(S::kNone, E::kRemoteEnded), S::kReturning);
  EXPECT_EQ(ExchangeTransition(S::kReturning, E::kResultReturned), S::kReturned);
  EXPECT_FALSE(ExchangeTransition(S::kReturned, E::kResultReturned).has_value());
  EXPECT_TRUE(ExchangeWorkDue(S::kReturning));
  EXPECT_TRUE(ExchangeWorkDue(S::kPackaging));
  EXPECT_TRUE(ExchangeWorkDue(S::kCancelling));
  EXPECT_FALSE(ExchangeWorkDue(S::kReturned));
  EXPECT_FALSE(ExchangeWorkDue(S::kNone));
}

}  // namespace
}  // namespace ff
