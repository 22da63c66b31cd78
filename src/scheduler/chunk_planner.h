// Chunk planner: splits a job's frame set into chunks when the job says
// chunk_size = "auto" (JobProfile::chunk_size == JobProfile::kAutoChunkSize).
//
// Policy: factoring, the batched form of guided self-scheduling (Hummel,
// Schonberg and Flynn, 1992). Chunks are handed out in batches of S, S being
// the number of render slots able to run the job. With R frames not yet in a
// chunk, the next batch is S chunks of
//
//     size = max(floor_frames, ceil(R / (2 * S)))
//
// frames each (the last chunk of the plan takes what is left, so it may be
// smaller). Each batch covers about half of what remains: the first batch
// gives every slot a long chunk, later batches shrink geometrically so the
// last chunks, which decide when the job ends, are short and the slots finish
// together. Halving (rather than GSS's R / S) keeps the first chunk from
// taking a large share of the job when frame times are uneven — e.g. an
// animation whose first half is ten times as expensive as its second.
//
// `floor_frames` amortises the cost of starting a renderer process (POV-Ray
// spends ~0.5 s parsing and starting per process): with a known start cost c
// and time per frame t, a chunk of n frames must be long enough that c is at
// most `max_start_fraction` (10%) of its frame time n * t, i.e.
// floor_frames = ceil(c / (0.1 * t)).
// It is capped at ceil(N / S), an equal share per slot: a very light job
// becomes at most S chunks, one process per slot, rendered in one wave.
// When c or t is unknown the floor is 1 frame and the plan is plain factoring.
//
// Chunks are runs of frames adjacent in the set's (ascending) order, like
// FrameSet::Chunk(); the plan covers every frame exactly once, in order,
// with non-increasing sizes and never more chunks than frames.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <vector>

#include "core/frame_set.h"

namespace ff {

// What the caller knows about how long the job's frames take. A value <= 0
// means unknown.
struct ChunkCostHints {
  // Measured wall seconds one frame takes in a running renderer process.
  double seconds_per_frame = 0;
  // Wall seconds a renderer process costs before its first frame (start,
  // parse, load) — paid once per chunk.
  double start_seconds = 0;
  // Largest share of a chunk's time the start cost may take; in (0, 1].
  double max_start_fraction = 0.1;
};

// Smallest chunk the plan uses (see above), in [1, ceil(frames / slots)].
// REQUIRES: frames >= 1, slots >= 1.
size_t ChunkFloorFrames(size_t frames, int slots, const ChunkCostHints& hints);

// Sizes of the chunks, first to last; they sum to `frames`. Empty when
// frames == 0. `slots` < 1 is treated as 1.
std::vector<size_t> PlanChunkSizes(size_t frames, int slots, const ChunkCostHints& hints = {});

// The chunks of `frames` with the sizes PlanChunkSizes() gives.
std::vector<FrameSet> PlanChunks(const FrameSet& frames, int slots,
                                 const ChunkCostHints& hints = {});

}  // namespace ff
