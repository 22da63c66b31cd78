#include "scheduler/placement_policy.h"

#include <gtest/gtest.h>

namespace ff {
namespace {

JobProfile Profile(const std::string& package, const std::string& version) {
  JobProfile p;
  p.package = package;
  p.package_version = *VersionConstraint::Parse(version);
  return p;
}

TEST(PlacementPolicyTest, PackageAndVersionMustMatch) {
  const std::vector<PackageRecord> host = {
      {"h", "povray", "3.7.0.10", "/usr/bin/povray", "povray"}};
  EXPECT_EQ(PackageMismatch(host, Profile("povray", ">=3.7")), "");
  EXPECT_EQ(PackageMismatch(host, Profile("blender", "")), "has no package 'blender'");
  EXPECT_EQ(PackageMismatch(host, Profile("povray", ">=3.8")),
            "has povray 3.7.0.10, the job needs '>=3.8'");
}

TEST(PlacementPolicyTest, SlotMustMeetEveryRequirement) {
  SlotRecord slot;
  slot.id = "rs1/s0";
  slot.cores = 2;
  slot.memory_bytes = 1LL << 30;
  slot.gpus = 0;
  Requirements need;
  need.cores = 2;
  need.memory_bytes = 1LL << 30;
  EXPECT_TRUE(SlotMeets(slot, need));
  EXPECT_EQ(SlotShortfall(slot, need), "");
  need.cores = 3;
  EXPECT_FALSE(SlotMeets(slot, need));
  EXPECT_EQ(SlotShortfall(slot, need), "slot rs1/s0 has 2 core(s), the job needs 3");
  need.cores = 1;
  need.memory_bytes = 8LL << 30;
  EXPECT_EQ(SlotShortfall(slot, need), "slot rs1/s0 has 1.0 GiB of memory, the job needs 8.0 GiB");
  need.memory_bytes = 0;
  need.gpus = 1;
  EXPECT_EQ(SlotShortfall(slot, need), "slot rs1/s0 has 0 GPU(s), the job needs 1");
}

TEST(PlacementPolicyTest, IdleSlotsRoundRobinLeastBusyFirst) {
  // a: 2 busy, idle a0 a1; b: 0 busy, idle b0; c: 1 busy, idle c0 c1 c2.
  std::vector<std::pair<int, std::vector<std::string>>> per_server = {
      {2, {"a0", "a1"}}, {0, {"b0"}}, {1, {"c0", "c1", "c2"}}};
  EXPECT_EQ(IdleSlotOrder(per_server),
            (std::vector<std::string>{"b0", "c0", "a0", "c1", "a1", "c2"}));
  // Ties keep the given order.
  EXPECT_EQ(IdleSlotOrder(
                std::vector<std::pair<int, std::vector<std::string>>>{{1, {"x0"}}, {1, {"y0"}}}),
            (std::vector<std::string>{"x0", "y0"}));
  EXPECT_TRUE(IdleSlotOrder(std::vector<std::pair<int, std::vector<std::string>>>{}).empty());
}

}  // namespace
}  // namespace ff
