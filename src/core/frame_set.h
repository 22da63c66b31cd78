// FrameSet: the set of frame numbers a render job renders.
//
// Syntax (comma-separated items, whitespace ignored):
//   N          one frame                       "7"
//   A-B        every frame from A to B          "1-240"
//   A-BxS      every S-th frame from A to B     "1-100x2"  -> 1,3,...,99
//   B-A        reversed range: the same frames  "10-1"     -> 1..10
//   B-AxS      reversed stepped range: steps down from B, "10-1x3" -> 10,7,4,1
// Frames are integers in [kMinFrame, kMaxFrame]; negative frames are written
// with a leading minus and the range separator is the first '-' after a digit
// ("-5--1" is -5..-1). Duplicates are allowed in the text and collapse: a
// frame set is a set, kept sorted ascending; render order is ascending.
//
// Thread-safety: immutable value type after construction.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace ff {

class FrameSet {
 public:
  static constexpr int64_t kMinFrame = -1'000'000;
  static constexpr int64_t kMaxFrame = 100'000'000;
  // Largest number of frames one set may hold (guards memory on typos like
  // "1-99999999").
  static constexpr size_t kMaxFrames = 10'000'000;

  FrameSet() = default;
  explicit FrameSet(std::vector<int64_t> frames);  // sorts and deduplicates

  // Parses the syntax above. Errors name the offending item, e.g.
  // "frame set item 'x3': expected a frame number".
  static Result<FrameSet> Parse(std::string_view text);

  const std::vector<int64_t>& frames() const { return frames_; }
  size_t size() const { return frames_.size(); }
  bool empty() const { return frames_.empty(); }
  bool Contains(int64_t frame) const;
  int64_t first() const { return frames_.front(); }  // REQUIRES: !empty()
  int64_t last() const { return frames_.back(); }    // REQUIRES: !empty()

  FrameSet Union(const FrameSet& other) const;
  FrameSet Intersect(const FrameSet& other) const;
  FrameSet Subtract(const FrameSet& other) const;

  // Splits into chunks of at most `chunk_size` frames, each a run of frames
  // adjacent in this set's order; together they partition the set.
  // REQUIRES: chunk_size >= 1.
  std::vector<FrameSet> Chunk(size_t chunk_size) const;

  // Maximal runs of consecutive integers, e.g. {1,2,3,5} -> [{1,3},{5,5}].
  std::vector<std::pair<int64_t, int64_t>> ConsecutiveRuns() const;

  // Canonical compact text that Parse() reads back to an equal set:
  // "1-10,12,14-20x2".
  std::string ToString() const;

  bool operator==(const FrameSet& o) const { return frames_ == o.frames_; }

 private:
  std::vector<int64_t> frames_;  // sorted ascending, unique
};

}  // namespace ff
