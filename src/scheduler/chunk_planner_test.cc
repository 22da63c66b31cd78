#include "scheduler/chunk_planner.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

namespace ff {
namespace {

using Sizes = std::vector<size_t>;

FrameSet Frames(const char* text) {
  auto f = FrameSet::Parse(text);
  EXPECT_TRUE(f.ok()) << text;
  return f.ok() ? *f : FrameSet();
}

ChunkCostHints Hints(double seconds_per_frame, double start_seconds) {
  ChunkCostHints h;
  h.seconds_per_frame = seconds_per_frame;
  h.start_seconds = start_seconds;
  return h;
}

// Every property the planner promises, for one input.
void ExpectValidPlan(const FrameSet& frames, int slots, const ChunkCostHints& hints) {
  SCOPED_TRACE("frames=" + frames.ToString() + " slots=" + std::to_string(slots) +
               " t=" + std::to_string(hints.seconds_per_frame) +
               " c=" + std::to_string(hints.start_seconds));
  const std::vector<FrameSet> chunks = PlanChunks(frames, slots, hints);
  // Every frame exactly once, in order.
  std::vector<int64_t> joined;
  for (const FrameSet& c : chunks) {
    ASSERT_FALSE(c.empty());
    joined.insert(joined.end(), c.frames().begin(), c.frames().end());
  }
  EXPECT_EQ(joined, frames.frames());
  // Non-increasing sizes, never more chunks than frames.
  for (size_t i = 1; i < chunks.size(); ++i) EXPECT_LE(chunks[i].size(), chunks[i - 1].size());
  EXPECT_LE(chunks.size(), frames.size());
  // No chunk is larger than an equal share of the job per slot.
  const size_t s = static_cast<size_t>(std::max(1, slots));
  if (!chunks.empty()) {
    EXPECT_LE(chunks[0].size(), (frames.size() + s - 1) / s);
  }
  // Sizes agree with PlanChunkSizes().
  Sizes sizes;
  for (const FrameSet& c : chunks) sizes.push_back(c.size());
  EXPECT_EQ(sizes, PlanChunkSizes(frames.size(), slots, hints));
}

TEST(ChunkPlannerTest, UnknownCostsArePlainFactoring) {
  // Batches of 2 chunks, each about half of what remains per slot.
  EXPECT_EQ(PlanChunkSizes(24, 2), (Sizes{6, 6, 3, 3, 2, 2, 1, 1}));
  EXPECT_EQ(PlanChunkSizes(100, 4),
            (Sizes{13, 13, 13, 13, 6, 6, 6, 6, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1}));
  EXPECT_EQ(PlanChunkSizes(1, 8), (Sizes{1}));
}

TEST(ChunkPlannerTest, OneSlot) {
  EXPECT_EQ(PlanChunkSizes(10, 1), (Sizes{5, 3, 1, 1}));
  EXPECT_EQ(PlanChunkSizes(10, 0), PlanChunkSizes(10, 1));   // < 1 slot counts as 1
  EXPECT_EQ(PlanChunkSizes(10, -3), PlanChunkSizes(10, 1));  // < 1 slot counts as 1
}

TEST(ChunkPlannerTest, MoreSlotsThanFramesGivesOneFramePerChunk) {
  EXPECT_EQ(PlanChunkSizes(5, 10), (Sizes{1, 1, 1, 1, 1}));
  EXPECT_EQ(PlanChunkSizes(5, 10, Hints(0.1, 10)), (Sizes{1, 1, 1, 1, 1}));
}

TEST(ChunkPlannerTest, EmptyFrameSetHasNoChunks) {
  EXPECT_TRUE(PlanChunkSizes(0, 4).empty());
  EXPECT_TRUE(PlanChunks(FrameSet(), 4).empty());
}

TEST(ChunkPlannerTest, StartCostSetsTheSmallestChunk) {
  // t = 3 s, c = 0.6 s: c <= 10% of n*t from n = 2.
  EXPECT_EQ(ChunkFloorFrames(24, 2, Hints(3, 0.6)), 2u);
  EXPECT_EQ(PlanChunkSizes(24, 2, Hints(3, 0.6)), (Sizes{6, 6, 3, 3, 2, 2, 2}));
  // t = 1 s, c = 0.5 s: n >= 5.
  EXPECT_EQ(ChunkFloorFrames(100, 2, Hints(1, 0.5)), 5u);
  EXPECT_EQ(PlanChunkSizes(100, 2, Hints(1, 0.5)), (Sizes{25, 25, 13, 13, 6, 6, 5, 5, 2}));
  // A larger allowed share of start cost lowers the floor.
  ChunkCostHints h = Hints(1, 0.5);
  h.max_start_fraction = 0.5;
  EXPECT_EQ(ChunkFloorFrames(100, 2, h), 1u);
}

TEST(ChunkPlannerTest, LightFramesGetOneChunkPerSlot) {
  // t = 0.35 s, c = 0.6 s wants 18 frames per chunk; capped at 24 / 2.
  EXPECT_EQ(ChunkFloorFrames(24, 2, Hints(0.35, 0.6)), 12u);
  EXPECT_EQ(PlanChunkSizes(24, 2, Hints(0.35, 0.6)), (Sizes{12, 12}));
  EXPECT_EQ(PlanChunkSizes(25, 2, Hints(0.35, 0.6)), (Sizes{13, 12}));
  EXPECT_EQ(PlanChunkSizes(7, 3, Hints(0.01, 1)), (Sizes{3, 3, 1}));
}

TEST(ChunkPlannerTest, UnknownOrInvalidHintsMeanNoFloor) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (const ChunkCostHints& h : {Hints(0, 0.6), Hints(2, 0), Hints(-1, 0.6), Hints(2, -1),
                                  Hints(nan, 0.6), Hints(2, nan), Hints(inf, 0.6), Hints(2, inf)}) {
    EXPECT_EQ(ChunkFloorFrames(24, 2, h), 1u);
  }
  // An invalid fraction falls back to the default.
  ChunkCostHints h = Hints(3, 0.6);
  h.max_start_fraction = nan;
  EXPECT_EQ(ChunkFloorFrames(24, 2, h), 2u);
  h.max_start_fraction = -1;
  EXPECT_EQ(ChunkFloorFrames(24, 2, h), 2u);
  // A tiny frame time (huge quotient) is capped, not overflowed.
  EXPECT_EQ(ChunkFloorFrames(1000, 3, Hints(1e-300, 1e300)), 334u);
}

TEST(ChunkPlannerTest, ChunksAreRunsInSetOrder) {
  const FrameSet frames = Frames("1-20x2,100,-3");
  const std::vector<FrameSet> chunks = PlanChunks(frames, 2);
  ASSERT_EQ(chunks.size(), 6u);  // sizes 3, 3, 2, 2, 1, 1
  EXPECT_EQ(chunks[0].ToString(), "-3,1,3");
  EXPECT_EQ(chunks[1].ToString(), "5-9x2");
  EXPECT_EQ(chunks.back().ToString(), "100");
}

TEST(ChunkPlannerTest, PropertiesHoldOverManyInputs) {
  const std::vector<ChunkCostHints> hints = {Hints(0, 0),      Hints(0.35, 0.6), Hints(3, 0.6),
                                             Hints(60, 2),     Hints(0.001, 5),  Hints(1, 1),
                                             Hints(0.2, 0.25), Hints(5, 0)};
  for (size_t n : {1, 2, 3, 5, 7, 24, 25, 60, 97, 240, 1000}) {
    std::vector<int64_t> v(n);
    std::iota(v.begin(), v.end(), int64_t{1});
    const FrameSet frames(v);
    for (int slots : {1, 2, 3, 4, 7, 16, 100, 2000}) {
      for (const ChunkCostHints& h : hints) ExpectValidPlan(frames, slots, h);
    }
  }
  ExpectValidPlan(Frames("1-1000x3,5000-5100,-40--1"), 6, Hints(0.5, 0.7));
}

TEST(ChunkPlannerTest, ChunkCountGrowsLogarithmically) {
  // Factoring hands out about 2*S chunks per halving of the remaining frames.
  const size_t n = 1'000'000;
  for (int slots : {1, 10, 1000}) {
    const size_t count = PlanChunkSizes(n, slots).size();
    const double bound = slots * (std::log2(static_cast<double>(n) / slots) + 2) + slots;
    EXPECT_LE(static_cast<double>(count), bound) << slots;
  }
}

}  // namespace
}  // namespace ff
