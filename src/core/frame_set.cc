#include "core/frame_set.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "base/text.h"

namespace ff {
namespace {

// Reads one comma-free item: N | A-B | A-BxS, whitespace allowed between
// tokens but not inside a number.
class ItemParser {
 public:
  explicit ItemParser(std::string_view item) : item_(item) {}

  // On success fills first/last/step (step 0 for a single frame).
  Status Parse(int64_t* first, int64_t* last, int64_t* step) {
    FF_RETURN_IF_ERROR(Frame(first));
    SkipSpace();
    if (AtEnd()) {
      *last = *first;
      *step = 0;
      return Status::Ok();
    }
    if (Peek() == 'x' || Peek() == 'X') return Error("a step needs a range, e.g. '1-10x2'");
    if (Peek() != '-') return Unexpected();
    ++pos_;
    SkipSpace();
    FF_RETURN_IF_ERROR(Frame(last));
    SkipSpace();
    *step = 1;
    if (AtEnd()) return Status::Ok();
    if (Peek() != 'x' && Peek() != 'X') return Unexpected();
    ++pos_;
    SkipSpace();
    if (AtEnd() || !IsDigit(Peek())) return Error("expected a step (a positive integer) after 'x'");
    FF_RETURN_IF_ERROR(Number(step, "step"));
    if (*step < 1) return Error("step must be >= 1, got " + std::to_string(*step));
    SkipSpace();
    if (!AtEnd()) return Unexpected();
    return Status::Ok();
  }

 private:
  bool AtEnd() const { return pos_ >= item_.size(); }
  char Peek() const { return item_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && IsSpace(Peek())) ++pos_;
  }

  Status Error(const std::string& problem) const {
    return InvalidArgument("frame set item '" + std::string(item_) + "': " + problem);
  }
  Status Unexpected() const {
    return Error(std::string("unexpected '") + Peek() + "' at offset " + std::to_string(pos_));
  }

  Status Frame(int64_t* out) {
    bool negative = false;
    if (!AtEnd() && Peek() == '-') {
      negative = true;
      ++pos_;
    }
    if (AtEnd() || !IsDigit(Peek())) return Error("expected a frame number");
    int64_t v = 0;
    FF_RETURN_IF_ERROR(Number(&v, "frame"));
    if (negative) v = -v;
    if (v < FrameSet::kMinFrame || v > FrameSet::kMaxFrame) {
      return Error("frame " + std::to_string(v) + " is outside " +
                   std::to_string(FrameSet::kMinFrame) + ".." +
                   std::to_string(FrameSet::kMaxFrame));
    }
    *out = v;
    return Status::Ok();
  }

  // REQUIRES: a digit at pos_.
  Status Number(int64_t* out, const char* what) {
    // Anything above this is out of every valid range; stop before overflow.
    constexpr int64_t kCap = 1'000'000'000'000'000;
    int64_t v = 0;
    while (!AtEnd() && IsDigit(Peek())) {
      if (v >= kCap) return Error(std::string(what) + " is too large");
      v = v * 10 + (Peek() - '0');
      ++pos_;
    }
    *out = v;
    return Status::Ok();
  }

  std::string_view item_;
  size_t pos_ = 0;
};

void SortUnique(std::vector<int64_t>* v) {
  std::sort(v->begin(), v->end());
  v->erase(std::unique(v->begin(), v->end()), v->end());
}

}  // namespace

FrameSet::FrameSet(std::vector<int64_t> frames) : frames_(std::move(frames)) {
  SortUnique(&frames_);
}

// Two passes: every item is parsed and counted first, so the memory for the
// expansion (at most kMaxFrames values, repeats included) is known before
// any is allocated, and the work stays linear in the frames named.
Result<FrameSet> FrameSet::Parse(std::string_view text) {
  if (Trim(text).empty()) return InvalidArgument("frame set is empty");
  struct Progression {
    int64_t first;
    int64_t stride;  // signed; 0 for a single frame
    uint64_t count;
  };
  std::vector<Progression> items;
  uint64_t total = 0;
  size_t start = 0;
  while (true) {
    const size_t comma = text.find(',', start);
    const std::string_view item = Trim(text.substr(
        start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (item.empty()) {
      return InvalidArgument("frame set item " + std::to_string(items.size() + 1) +
                             " is empty (stray ',')");
    }
    int64_t first = 0, last = 0, step = 0;
    FF_RETURN_IF_ERROR(ItemParser(item).Parse(&first, &last, &step));
    const uint64_t span =
        first <= last ? static_cast<uint64_t>(last - first) : static_cast<uint64_t>(first - last);
    const uint64_t count = step == 0 ? 1 : span / static_cast<uint64_t>(step) + 1;
    const std::string quoted = "frame set item '" + std::string(item) + "': ";
    if (count > kMaxFrames) {
      return InvalidArgument(quoted + std::to_string(count) + " frames, more than the limit of " +
                             std::to_string(kMaxFrames));
    }
    total += count;
    if (total > kMaxFrames) {
      return InvalidArgument(quoted + "the items so far name " + std::to_string(total) +
                             " frames (repeats included), more than the limit of " +
                             std::to_string(kMaxFrames));
    }
    items.push_back({first, step == 0 ? 0 : (first <= last ? step : -step), count});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  // Each item is written ascending, so the frames are one sorted run per
  // item: out-of-order items cost a merge of the runs, O(n log items),
  // not a sort of every frame.
  FrameSet result;
  std::vector<int64_t>& frames = result.frames_;
  frames.reserve(total);
  std::vector<size_t> runs = {0};  // where each run starts, then the end
  for (const Progression& p : items) {
    // The item's smallest frame (its last for a reversed range).
    const int64_t low =
        p.stride < 0 ? p.first + p.stride * static_cast<int64_t>(p.count - 1) : p.first;
    if (!frames.empty() && low <= frames.back()) runs.push_back(frames.size());
    const int64_t step = p.stride < 0 ? -p.stride : p.stride;
    int64_t f = low;
    for (uint64_t i = 0; i < p.count; ++i, f += step) frames.push_back(f);
  }
  runs.push_back(frames.size());
  if (runs.size() > 2) {
    // Bottom-up: merge neighbouring runs until one is left.
    while (runs.size() > 2) {
      std::vector<size_t> merged = {0};
      for (size_t r = 0; r + 1 < runs.size(); r += 2) {
        if (r + 2 < runs.size()) {
          std::inplace_merge(frames.begin() + static_cast<ptrdiff_t>(runs[r]),
                             frames.begin() + static_cast<ptrdiff_t>(runs[r + 1]),
                             frames.begin() + static_cast<ptrdiff_t>(runs[r + 2]));
          merged.push_back(runs[r + 2]);
        } else {
          merged.push_back(runs[r + 1]);
        }
      }
      runs = std::move(merged);
    }
    frames.erase(std::unique(frames.begin(), frames.end()), frames.end());
  }
  return result;
}

bool FrameSet::Contains(int64_t frame) const {
  return std::binary_search(frames_.begin(), frames_.end(), frame);
}

FrameSet FrameSet::Union(const FrameSet& other) const {
  FrameSet out;
  out.frames_.reserve(frames_.size() + other.frames_.size());
  std::set_union(frames_.begin(), frames_.end(), other.frames_.begin(), other.frames_.end(),
                 std::back_inserter(out.frames_));
  return out;
}

FrameSet FrameSet::Intersect(const FrameSet& other) const {
  FrameSet out;
  std::set_intersection(frames_.begin(), frames_.end(), other.frames_.begin(), other.frames_.end(),
                        std::back_inserter(out.frames_));
  return out;
}

FrameSet FrameSet::Subtract(const FrameSet& other) const {
  FrameSet out;
  std::set_difference(frames_.begin(), frames_.end(), other.frames_.begin(), other.frames_.end(),
                      std::back_inserter(out.frames_));
  return out;
}

std::vector<FrameSet> FrameSet::Chunk(size_t chunk_size) const {
  if (chunk_size == 0) chunk_size = 1;
  std::vector<FrameSet> chunks;
  chunks.reserve((frames_.size() + chunk_size - 1) / chunk_size);
  for (size_t i = 0; i < frames_.size(); i += chunk_size) {
    FrameSet c;
    const size_t end = std::min(frames_.size(), i + chunk_size);
    c.frames_.assign(frames_.begin() + static_cast<ptrdiff_t>(i),
                     frames_.begin() + static_cast<ptrdiff_t>(end));
    chunks.push_back(std::move(c));
  }
  return chunks;
}

std::vector<std::pair<int64_t, int64_t>> FrameSet::ConsecutiveRuns() const {
  std::vector<std::pair<int64_t, int64_t>> runs;
  for (int64_t f : frames_) {
    if (!runs.empty() && runs.back().second + 1 == f) {
      runs.back().second = f;
    } else {
      runs.emplace_back(f, f);
    }
  }
  return runs;
}

// Greedy, left to right: from each position take the longest run with a
// constant step; a run of three or more frames becomes "A-B" (step 1) or
// "A-BxS", anything shorter is written frame by frame. Empty set -> "".
std::string FrameSet::ToString() const {
  std::string out;
  const size_t n = frames_.size();
  size_t i = 0;
  while (i < n) {
    if (!out.empty()) out += ',';
    // A set built from a vector may hold any int64 values: a difference
    // too large for int64 ends a run (Parse never makes such sets).
    int64_t step = 0;
    if (i + 2 < n && !__builtin_sub_overflow(frames_[i + 1], frames_[i], &step)) {
      size_t j = i + 1;
      int64_t next = 0;
      while (j + 1 < n && !__builtin_sub_overflow(frames_[j + 1], frames_[j], &next) &&
             next == step) {
        ++j;
      }
      if (j - i + 1 >= 3) {
        out += std::to_string(frames_[i]) + '-' + std::to_string(frames_[j]);
        if (step != 1) out += 'x' + std::to_string(step);
        i = j + 1;
        continue;
      }
    }
    out += std::to_string(frames_[i]);
    ++i;
  }
  return out;
}

}  // namespace ff
