#include "scheduler/chunk_planner.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>

namespace ff {
namespace {

size_t CeilDiv(size_t a, size_t b) { return a / b + (a % b != 0 ? 1 : 0); }

bool Known(double v) { return std::isfinite(v) && v > 0; }

}  // namespace

size_t ChunkFloorFrames(size_t frames, int slots, const ChunkCostHints& hints) {
  const size_t cap = std::max<size_t>(1, CeilDiv(frames, static_cast<size_t>(std::max(1, slots))));
  if (!Known(hints.seconds_per_frame) || !Known(hints.start_seconds)) return 1;
  double fraction = hints.max_start_fraction;
  if (!Known(fraction)) fraction = ChunkCostHints().max_start_fraction;
  fraction = std::min(fraction, 1.0);
  // c <= fraction * n * t  <=>  n >= c / (fraction * t).
  const double need = std::ceil(hints.start_seconds / (fraction * hints.seconds_per_frame));
  if (!(need < static_cast<double>(cap))) return cap;  // also catches overflow to inf
  return std::max<size_t>(1, static_cast<size_t>(need));
}

std::vector<size_t> PlanChunkSizes(size_t frames, int slots, const ChunkCostHints& hints) {
  std::vector<size_t> sizes;
  if (frames == 0) return sizes;
  const size_t s = static_cast<size_t>(std::max(1, slots));
  const size_t floor_frames = ChunkFloorFrames(frames, slots, hints);
  size_t remaining = frames;
  while (remaining > 0) {
    const size_t size = std::max(floor_frames, CeilDiv(remaining, 2 * s));
    for (size_t i = 0; i < s && remaining > 0; ++i) {
      const size_t n = std::min(size, remaining);
      sizes.push_back(n);
      remaining -= n;
    }
  }
  return sizes;
}

std::vector<FrameSet> PlanChunks(const FrameSet& frames, int slots, const ChunkCostHints& hints) {
  std::vector<FrameSet> chunks;
  const std::vector<int64_t>& all = frames.frames();
  auto begin = all.begin();
  for (size_t n : PlanChunkSizes(all.size(), slots, hints)) {
    auto end = std::next(begin, static_cast<std::ptrdiff_t>(n));
    chunks.emplace_back(std::vector<int64_t>(begin, end));
    begin = end;
  }
  return chunks;
}

}  // namespace ff
