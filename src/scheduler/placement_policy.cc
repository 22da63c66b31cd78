#include "scheduler/placement_policy.h"

#include "base/units.h"
#include "core/version.h"

namespace ff {

std::string PackageMismatch(const std::vector<PackageRecord>& packages, const JobProfile& p) {
  const PackageRecord* pkg = nullptr;
  for (const auto& candidate : packages) {
    if (candidate.name == p.package) pkg = &candidate;
  }
  if (!pkg) return "has no package '" + p.package + "'";
  if (!p.package_version.MatchesAny()) {
    auto v = Version::Parse(pkg->version);
    if (!v.ok() || !p.package_version.Matches(*v)) {
      return "has " + p.package + " " + pkg->version + ", the job needs '" +
             p.package_version.text() + "'";
    }
  }
  return "";
}

bool SlotMeets(const SlotRecord& slot, const Requirements& need) {
  return slot.cores >= need.cores && slot.memory_bytes >= need.memory_bytes &&
         slot.gpus >= need.gpus;
}

std::string SlotShortfall(const SlotRecord& r, const Requirements& need) {
  if (r.cores < need.cores) {
    return "slot " + r.id + " has " + std::to_string(r.cores) + " core(s), the job needs " +
           std::to_string(need.cores);
  }
  if (r.memory_bytes < need.memory_bytes) {
    return "slot " + r.id + " has " + FormatBytes(r.memory_bytes, ByteStyle::kOneDecimal) +
           " of memory, the job needs " + FormatBytes(need.memory_bytes, ByteStyle::kOneDecimal);
  }
  if (r.gpus < need.gpus) {
    return "slot " + r.id + " has " + std::to_string(r.gpus) + " GPU(s), the job needs " +
           std::to_string(need.gpus);
  }
  return "";
}

}  // namespace ff
