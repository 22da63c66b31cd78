// Small client calls the cross-daemon tests share (a schedule server's API,
// as the CLI would make them). Failed calls give empty results: the tests
// assert on what they expect to see.
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <vector>

#include "rpc/services.h"

namespace ff::testing {

// Every job of the site, finished ones included.
inline std::vector<frameflow::v1::JobInfo> AllJobs(frameflow::v1::ScheduleServer::Stub* stub) {
  frameflow::v1::ListJobsRequest req;
  req.set_include_finished(true);
  frameflow::v1::ListJobsResponse resp;
  grpc::ClientContext ctx;
  if (!stub->ListJobs(&ctx, req, &resp).ok()) return {};
  return {resp.jobs().begin(), resp.jobs().end()};
}

// The peer `name` as `frameflow peers` shows it (link state, courier counters).
inline frameflow::v1::PeerInfo PeerOf(frameflow::v1::ScheduleServer::Stub* stub,
                                      const std::string& name) {
  frameflow::v1::ListPeersRequest req;
  frameflow::v1::ListPeersResponse resp;
  grpc::ClientContext ctx;
  if (!stub->ListPeers(&ctx, req, &resp).ok()) return {};
  for (const auto& p : resp.peers()) {
    if (p.name() == name) return p;
  }
  return {};
}

}  // namespace ff::testing
