// Fuzz target: frame sets (core/frame_set.h) and the chunk planner
// (scheduler/chunk_planner.h) that splits them.
//
// Input: "A" or "A|B", two frame-set texts. Checks, besides the sanitizers:
// a parsed set is sorted, unique and in range; ToString() parses back to
// the same set; Chunk() and PlanChunks() partition it in order; the set
// operations agree with each other. The raw bytes also go, as int64 frame
// numbers, through the FrameSet(vector) constructor a render server uses
// on an assignment's frames, then ToString() and ConsecutiveRuns().
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "core/frame_set.h"
#include "fuzz_common.h"
#include "scheduler/chunk_planner.h"

namespace {

using ff::FrameSet;

// Sets this large cost seconds per check; they are still parsed.
constexpr size_t kCheckLimit = 200'000;

void CheckPartition(const FrameSet& set, const std::vector<FrameSet>& parts, const char* what) {
  std::vector<int64_t> joined;
  for (const FrameSet& p : parts) {
    FUZZ_CHECK(!p.empty(), std::string(what) + ": an empty chunk");
    joined.insert(joined.end(), p.frames().begin(), p.frames().end());
  }
  FUZZ_CHECK(joined == set.frames(), std::string(what) + ": chunks do not partition the set");
}

void CheckSet(const FrameSet& set) {
  const auto& f = set.frames();
  FUZZ_CHECK(!f.empty(), "parsed an empty set");
  FUZZ_CHECK(f.size() <= FrameSet::kMaxFrames, std::to_string(f.size()));
  FUZZ_CHECK(std::adjacent_find(f.begin(), f.end(), [](int64_t a, int64_t b) { return a >= b; }) ==
                 f.end(),
             "not sorted and unique");
  FUZZ_CHECK(f.front() >= FrameSet::kMinFrame && f.back() <= FrameSet::kMaxFrame, "out of range");
  if (f.size() > kCheckLimit) return;
  const std::string text = set.ToString();
  auto again = FrameSet::Parse(text);
  FUZZ_CHECK(again.ok(), "ToString() does not parse: " + text + ": " + again.status().message());
  FUZZ_CHECK(*again == set, "ToString() parses to another set: " + text);

  const size_t chunk = 1 + f.size() % 7;
  CheckPartition(set, set.Chunk(chunk), "Chunk");
  for (int slots : {1, 3, 64}) {
    const auto parts = ff::PlanChunks(set, slots);
    CheckPartition(set, parts, "PlanChunks");
    for (size_t i = 1; i < parts.size(); ++i) {
      // The plan's chunks never grow (the last may be smaller).
      FUZZ_CHECK(parts[i].size() <= parts[i - 1].size(), "PlanChunks: a chunk grew");
    }
  }
  size_t covered = 0;
  int64_t prev_end = 0;
  for (const auto& [a, b] : set.ConsecutiveRuns()) {
    FUZZ_CHECK(a <= b, "a reversed run");
    FUZZ_CHECK(covered == 0 || a > prev_end + 1, "adjacent runs not merged");
    covered += static_cast<size_t>(b - a + 1);
    prev_end = b;
  }
  FUZZ_CHECK(covered == f.size(), "ConsecutiveRuns() does not cover the set");
}

void CheckOperations(const FrameSet& a, const FrameSet& b) {
  if (a.size() > kCheckLimit || b.size() > kCheckLimit) return;
  const FrameSet u = a.Union(b), i = a.Intersect(b), d = a.Subtract(b);
  FUZZ_CHECK(u.size() + i.size() == a.size() + b.size(), "|A u B| + |A n B| != |A| + |B|");
  FUZZ_CHECK(d.size() + i.size() == a.size(), "|A - B| + |A n B| != |A|");
  FUZZ_CHECK(d.Intersect(b).empty(), "A - B meets B");
  FUZZ_CHECK(d.Union(i) == a, "(A - B) u (A n B) != A");
  for (int64_t f : i.frames()) FUZZ_CHECK(a.Contains(f) && b.Contains(f), "intersection");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const size_t bar = text.find('|');
  auto a = FrameSet::Parse(text.substr(0, bar));
  if (a.ok()) CheckSet(*a);
  if (bar != std::string_view::npos) {
    auto b = FrameSet::Parse(text.substr(bar + 1));
    if (b.ok()) CheckSet(*b);
    if (a.ok() && b.ok()) CheckOperations(*a, *b);
  }

  // Any int64 values, as an assignment from a schedule server may carry.
  std::vector<int64_t> raw(size / sizeof(int64_t));
  if (!raw.empty()) std::memcpy(raw.data(), data, raw.size() * sizeof(int64_t));
  const FrameSet any(raw);
  (void)any.ToString();
  for (const auto& [first, last] : any.ConsecutiveRuns()) FUZZ_CHECK(first <= last, "run");
  return 0;
}
