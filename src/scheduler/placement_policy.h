// Placement policy: which render slot may run a job's chunk, in which order
// idle slots are offered, and why a slot or host cannot run a job. Pure
// functions of their arguments (no scheduler state, no locks), so the rules
// are tested in isolation (placement_policy_test.cc) and the scheduler and
// the `show` explanations cannot disagree.
//
// The rules (DESIGN.md R3, docs/architecture.md "Matching and order"):
//   - a host can render a job when it has the job's rendering package in a
//     version satisfying the job's constraint;
//   - a slot can run a chunk when it has at least the job's cores, memory
//     and GPUs;
//   - idle slots are offered round-robin across render servers, least-busy
//     server first (ties in the order given), so the chunks of one job
//     spread over different hosts and render at the same time (R2).
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/host_record.h"
#include "core/job_profile.h"
#include "store/resource_db.h"

namespace ff {

// Why a host with `packages` cannot render `profile` ("has no package 'x'",
// "has povray 3.6, the job needs '>=3.7'"), or "" when it can.
std::string PackageMismatch(const std::vector<PackageRecord>& packages, const JobProfile& profile);

// Whether `slot` has the cores, memory and GPUs `need` asks for.
bool SlotMeets(const SlotRecord& slot, const Requirements& need);

// Why `slot` is too small for `need` ("slot rs1/s0 has 1 core(s), the job
// needs 2"), or "" when it is not.
std::string SlotShortfall(const SlotRecord& slot, const Requirements& need);

// The order in which idle slots are offered: `per_server` holds, for each
// render server with an idle slot, its number of busy slots and its idle
// slots. Returns the idle slots round-robin across servers (one slot of each
// server per round), least busy server first; the sort is stable.
template <typename SlotT>
std::vector<SlotT> IdleSlotOrder(std::vector<std::pair<int, std::vector<SlotT>>> per_server);

// ---- implementation ----

template <typename SlotT>
std::vector<SlotT> IdleSlotOrder(std::vector<std::pair<int, std::vector<SlotT>>> per_server) {
  std::stable_sort(per_server.begin(), per_server.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<SlotT> order;
  for (size_t round = 0;; ++round) {
    bool any = false;
    for (auto& [busy, list] : per_server) {
      if (round < list.size()) {
        order.push_back(list[round]);
        any = true;
      }
    }
    if (!any) break;
  }
  return order;
}

}  // namespace ff
