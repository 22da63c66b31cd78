#include "core/frame_set.h"

#include <gtest/gtest.h>

#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace ff {
namespace {

using Frames = std::vector<int64_t>;

Frames ParseOk(std::string_view text) {
  auto r = FrameSet::Parse(text);
  EXPECT_TRUE(r.ok()) << "'" << text << "': " << r.status().message();
  return r.ok() ? r->frames() : Frames{};
}

std::string ParseError(std::string_view text) {
  auto r = FrameSet::Parse(text);
  EXPECT_FALSE(r.ok()) << "'" << text << "' parsed to " << (r.ok() ? r->ToString() : "");
  return r.ok() ? "" : r.status().message();
}

Frames Range(int64_t a, int64_t b) {
  Frames v(static_cast<size_t>(b - a + 1));
  std::iota(v.begin(), v.end(), a);
  return v;
}

TEST(FrameSetParse, SingleFrame) { EXPECT_EQ(ParseOk("7"), Frames({7})); }

TEST(FrameSetParse, Zero) { EXPECT_EQ(ParseOk("0"), Frames({0})); }

TEST(FrameSetParse, Range) { EXPECT_EQ(ParseOk("1-240"), Range(1, 240)); }

TEST(FrameSetParse, SingletonRange) { EXPECT_EQ(ParseOk("5-5"), Frames({5})); }

TEST(FrameSetParse, SteppedRange) {
  Frames odd;
  for (int64_t f = 1; f <= 99; f += 2) odd.push_back(f);
  EXPECT_EQ(ParseOk("1-100x2"), odd);
}

TEST(FrameSetParse, SteppedRangeIncludesEndWhenOnStep) {
  EXPECT_EQ(ParseOk("1-10x3"), Frames({1, 4, 7, 10}));
}

TEST(FrameSetParse, StepLargerThanRange) { EXPECT_EQ(ParseOk("1-5x100"), Frames({1})); }

TEST(FrameSetParse, StepOfOneIsPlainRange) { EXPECT_EQ(ParseOk("3-6x1"), Frames({3, 4, 5, 6})); }

TEST(FrameSetParse, UppercaseStepMarker) { EXPECT_EQ(ParseOk("1-5X2"), Frames({1, 3, 5})); }

TEST(FrameSetParse, ReversedRangeIsSameSet) {
  EXPECT_EQ(ParseOk("10-1"), Range(1, 10));
  EXPECT_EQ(ParseOk("10-1"), ParseOk("1-10"));
}

TEST(FrameSetParse, ReversedSteppedRangeStepsDownFromFirst) {
  EXPECT_EQ(ParseOk("10-1x3"), Frames({1, 4, 7, 10}));
  // Stepping down from 10 is not the same as stepping up from 1.
  EXPECT_EQ(ParseOk("10-2x3"), Frames({4, 7, 10}));
  EXPECT_EQ(ParseOk("2-10x3"), Frames({2, 5, 8}));
}

TEST(FrameSetParse, List) { EXPECT_EQ(ParseOk("1,5,9-12"), Frames({1, 5, 9, 10, 11, 12})); }

TEST(FrameSetParse, DuplicatesCollapseAndSort) {
  EXPECT_EQ(ParseOk("5,1,5,3,1"), Frames({1, 3, 5}));
  EXPECT_EQ(ParseOk("1-5,3-7"), Range(1, 7));
  EXPECT_EQ(ParseOk("1-10,1-10,1-10"), Range(1, 10));
}

TEST(FrameSetParse, NegativeFrames) {
  EXPECT_EQ(ParseOk("-3"), Frames({-3}));
  EXPECT_EQ(ParseOk("-5--1"), Range(-5, -1));
  EXPECT_EQ(ParseOk("-1--5"), Range(-5, -1));
  EXPECT_EQ(ParseOk("-2-2"), Range(-2, 2));
  EXPECT_EQ(ParseOk("-10--1x3"), Frames({-10, -7, -4, -1}));
  EXPECT_EQ(ParseOk("2--2x2"), Frames({-2, 0, 2}));
}

TEST(FrameSetParse, WhitespaceIgnored) {
  EXPECT_EQ(ParseOk("  1 - 10 x 2 , 20 ,\t-3 -  -1 \n"), Frames({-3, -2, -1, 1, 3, 5, 7, 9, 20}));
}

TEST(FrameSetParse, Limits) {
  EXPECT_EQ(ParseOk("-1000000"), Frames({FrameSet::kMinFrame}));
  EXPECT_EQ(ParseOk("100000000"), Frames({FrameSet::kMaxFrame}));
  EXPECT_EQ(ParseOk("99999998-100000000"), Frames({99999998, 99999999, 100000000}));
}

TEST(FrameSetParse, ExactlyMaxFramesIsAccepted) {
  auto r = FrameSet::Parse("1-10000000");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->size(), FrameSet::kMaxFrames);
  EXPECT_EQ(r->first(), 1);
  EXPECT_EQ(r->last(), 10'000'000);
}

TEST(FrameSetParseError, Empty) {
  EXPECT_EQ(ParseError(""), "frame set is empty");
  EXPECT_EQ(ParseError("   \t"), "frame set is empty");
}

TEST(FrameSetParseError, EmptyItem) {
  EXPECT_EQ(ParseError("1,,2"), "frame set item 2 is empty (stray ',')");
  EXPECT_EQ(ParseError("1,"), "frame set item 2 is empty (stray ',')");
  EXPECT_EQ(ParseError(",1"), "frame set item 1 is empty (stray ',')");
  EXPECT_EQ(ParseError(" , "), "frame set item 1 is empty (stray ',')");
}

TEST(FrameSetParseError, NotANumber) {
  EXPECT_EQ(ParseError("x3"), "frame set item 'x3': expected a frame number");
  EXPECT_EQ(ParseError("1,abc"), "frame set item 'abc': expected a frame number");
  EXPECT_EQ(ParseError("1-"), "frame set item '1-': expected a frame number");
  EXPECT_EQ(ParseError("-"), "frame set item '-': expected a frame number");
  EXPECT_EQ(ParseError("1-b"), "frame set item '1-b': expected a frame number");
  EXPECT_EQ(ParseError("+3"), "frame set item '+3': expected a frame number");
  EXPECT_EQ(ParseError("--3"), "frame set item '--3': expected a frame number");
}

TEST(FrameSetParseError, TrailingGarbageNamesItem) {
  EXPECT_EQ(ParseError("1,2a"), "frame set item '2a': unexpected 'a' at offset 1");
  EXPECT_EQ(ParseError("1 2"), "frame set item '1 2': unexpected '2' at offset 2");
  EXPECT_EQ(ParseError("1-5-7"), "frame set item '1-5-7': unexpected '-' at offset 3");
  EXPECT_EQ(ParseError("1-5x2x3"), "frame set item '1-5x2x3': unexpected 'x' at offset 5");
  EXPECT_EQ(ParseError("1.5"), "frame set item '1.5': unexpected '.' at offset 1");
  EXPECT_EQ(ParseError("1;2"), "frame set item '1;2': unexpected ';' at offset 1");
}

TEST(FrameSetParseError, StepWithoutRange) {
  EXPECT_EQ(ParseError("5x2"), "frame set item '5x2': a step needs a range, e.g. '1-10x2'");
}

TEST(FrameSetParseError, BadStep) {
  EXPECT_EQ(ParseError("1-10x0"), "frame set item '1-10x0': step must be >= 1, got 0");
  EXPECT_EQ(ParseError("1-10x"),
            "frame set item '1-10x': expected a step (a positive integer) after 'x'");
  EXPECT_EQ(ParseError("1-10x-2"),
            "frame set item '1-10x-2': expected a step (a positive integer) after 'x'");
  EXPECT_EQ(ParseError("1-10x99999999999999999999"),
            "frame set item '1-10x99999999999999999999': step is too large");
}

TEST(FrameSetParseError, OutOfRange) {
  EXPECT_EQ(ParseError("100000001"),
            "frame set item '100000001': frame 100000001 is outside -1000000..100000000");
  EXPECT_EQ(ParseError("-1000001-5"),
            "frame set item '-1000001-5': frame -1000001 is outside -1000000..100000000");
  EXPECT_EQ(ParseError("1-200000000"),
            "frame set item '1-200000000': frame 200000000 is outside -1000000..100000000");
  EXPECT_EQ(ParseError("99999999999999999999999"),
            "frame set item '99999999999999999999999': frame is too large");
}

TEST(FrameSetParseError, TooManyFramesCheckedBeforeExpanding) {
  EXPECT_EQ(ParseError("1-99999999"),
            "frame set item '1-99999999': 99999999 frames, more than the limit of 10000000");
  EXPECT_EQ(ParseError("-1000000-100000000"),
            "frame set item '-1000000-100000000': 101000001 frames, more than the limit of "
            "10000000");
}

TEST(FrameSetParseError, TooManyFramesAcrossItems) {
  EXPECT_EQ(ParseError("1-6000000,6000001-12000000"),
            "frame set item '6000001-12000000': the items so far name 12000000 frames (repeats "
            "included), more than the limit of 10000000");
  // Repeats count: the limit bounds the work done before they collapse.
  EXPECT_EQ(ParseError("1-10000000,7"),
            "frame set item '7': the items so far name 10000001 frames (repeats included), more "
            "than the limit of 10000000");
}

TEST(FrameSetParseError, ErrorNamesTheFirstBadItem) {
  EXPECT_EQ(ParseError("1-10, 12, 1q, zz"), "frame set item '1q': unexpected 'q' at offset 1");
}

TEST(FrameSet, ConstructorSortsAndDeduplicates) {
  FrameSet s({5, 3, 5, -1, 3});
  EXPECT_EQ(s.frames(), Frames({-1, 3, 5}));
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.first(), -1);
  EXPECT_EQ(s.last(), 5);
  EXPECT_FALSE(s.empty());
  EXPECT_TRUE(FrameSet().empty());
}

TEST(FrameSet, Contains) {
  FrameSet s({1, 3, 5});
  EXPECT_TRUE(s.Contains(1));
  EXPECT_TRUE(s.Contains(5));
  EXPECT_FALSE(s.Contains(2));
  EXPECT_FALSE(s.Contains(0));
  EXPECT_FALSE(s.Contains(6));
  EXPECT_FALSE(FrameSet().Contains(0));
}

TEST(FrameSet, Equality) {
  EXPECT_EQ(FrameSet({1, 2, 3}), *FrameSet::Parse("3-1"));
  EXPECT_FALSE(FrameSet({1, 2}) == FrameSet({1, 2, 3}));
}

TEST(FrameSetAlgebra, Union) {
  FrameSet a({1, 2, 3, 10});
  FrameSet b({3, 4, 11});
  EXPECT_EQ(a.Union(b).frames(), Frames({1, 2, 3, 4, 10, 11}));
  EXPECT_EQ(a.Union(FrameSet()), a);
  EXPECT_EQ(FrameSet().Union(a), a);
  EXPECT_EQ(a.Union(a), a);
}

TEST(FrameSetAlgebra, Intersect) {
  FrameSet a({1, 2, 3, 10});
  FrameSet b({3, 4, 10, 11});
  EXPECT_EQ(a.Intersect(b).frames(), Frames({3, 10}));
  EXPECT_TRUE(a.Intersect(FrameSet()).empty());
  EXPECT_TRUE(a.Intersect(FrameSet({100})).empty());
  EXPECT_EQ(a.Intersect(a), a);
}

TEST(FrameSetAlgebra, Subtract) {
  FrameSet a({1, 2, 3, 10});
  FrameSet b({3, 4, 10, 11});
  EXPECT_EQ(a.Subtract(b).frames(), Frames({1, 2}));
  EXPECT_EQ(b.Subtract(a).frames(), Frames({4, 11}));
  EXPECT_EQ(a.Subtract(FrameSet()), a);
  EXPECT_TRUE(a.Subtract(a).empty());
}

TEST(FrameSetAlgebra, RandomizedIdentities) {
  std::mt19937_64 rng(20240601);
  std::uniform_int_distribution<int64_t> frame(-20, 60);
  std::uniform_int_distribution<int> count(0, 40);
  for (int iter = 0; iter < 300; ++iter) {
    Frames va, vb;
    for (int i = count(rng); i > 0; --i) va.push_back(frame(rng));
    for (int i = count(rng); i > 0; --i) vb.push_back(frame(rng));
    FrameSet a(va), b(vb);
    std::set<int64_t> sa(va.begin(), va.end()), sb(vb.begin(), vb.end());
    for (int64_t f = -21; f <= 61; ++f) {
      const bool in_a = sa.count(f) > 0, in_b = sb.count(f) > 0;
      EXPECT_EQ(a.Union(b).Contains(f), in_a || in_b);
      EXPECT_EQ(a.Intersect(b).Contains(f), in_a && in_b);
      EXPECT_EQ(a.Subtract(b).Contains(f), in_a && !in_b);
    }
    EXPECT_EQ(a.Union(b), b.Union(a));
    EXPECT_EQ(a.Intersect(b), b.Intersect(a));
    EXPECT_EQ(a.Subtract(b).Union(a.Intersect(b)), a);
    EXPECT_TRUE(a.Subtract(b).Intersect(b).empty());
  }
}

// Checks that `chunks` partition `set` into adjacent runs of at most `size`.
void ExpectPartition(const FrameSet& set, const std::vector<FrameSet>& chunks, size_t size) {
  Frames joined;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const FrameSet& c = chunks[i];
    ASSERT_FALSE(c.empty()) << "chunk " << i;
    EXPECT_LE(c.size(), size) << "chunk " << i;
    if (i + 1 < chunks.size()) {
      EXPECT_EQ(c.size(), size) << "only the last chunk may be short";
    }
    if (!joined.empty()) {
      EXPECT_LT(joined.back(), c.first()) << "chunks overlap or out of order";
    }
    joined.insert(joined.end(), c.frames().begin(), c.frames().end());
  }
  EXPECT_EQ(joined, set.frames());
  EXPECT_EQ(chunks.size(), (set.size() + size - 1) / size);
}

TEST(FrameSetChunk, EvenSplit) {
  FrameSet s = *FrameSet::Parse("1-12");
  auto chunks = s.Chunk(4);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].frames(), Frames({1, 2, 3, 4}));
  EXPECT_EQ(chunks[1].frames(), Frames({5, 6, 7, 8}));
  EXPECT_EQ(chunks[2].frames(), Frames({9, 10, 11, 12}));
}

TEST(FrameSetChunk, ShortLastChunk) {
  FrameSet s = *FrameSet::Parse("1-10");
  auto chunks = s.Chunk(4);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].frames(), Frames({9, 10}));
  ExpectPartition(s, chunks, 4);
}

TEST(FrameSetChunk, FollowsSetOrderAcrossGaps) {
  FrameSet s = *FrameSet::Parse("1,5,9-12,100");
  auto chunks = s.Chunk(3);
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0].frames(), Frames({1, 5, 9}));
  EXPECT_EQ(chunks[1].frames(), Frames({10, 11, 12}));
  EXPECT_EQ(chunks[2].frames(), Frames({100}));
}

TEST(FrameSetChunk, SizeOneAndHuge) {
  FrameSet s = *FrameSet::Parse("-2-2");
  auto ones = s.Chunk(1);
  ASSERT_EQ(ones.size(), 5u);
  for (size_t i = 0; i < ones.size(); ++i) EXPECT_EQ(ones[i].frames(), Frames({int64_t(i) - 2}));
  auto all = s.Chunk(1000);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], s);
}

TEST(FrameSetChunk, EmptySetHasNoChunks) { EXPECT_TRUE(FrameSet().Chunk(3).empty()); }

TEST(FrameSetChunk, RandomizedPartition) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int64_t> frame(-50, 500);
  std::uniform_int_distribution<int> count(1, 200);
  std::uniform_int_distribution<size_t> size(1, 30);
  for (int iter = 0; iter < 200; ++iter) {
    Frames v;
    for (int i = count(rng); i > 0; --i) v.push_back(frame(rng));
    FrameSet s(v);
    const size_t n = size(rng);
    ExpectPartition(s, s.Chunk(n), n);
  }
}

TEST(FrameSetRuns, ConsecutiveRuns) {
  using Runs = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(FrameSet({1, 2, 3, 5}).ConsecutiveRuns(), Runs({{1, 3}, {5, 5}}));
  EXPECT_EQ(FrameSet({-2, -1, 0, 1, 7, 8, 10}).ConsecutiveRuns(),
            Runs({{-2, 1}, {7, 8}, {10, 10}}));
  EXPECT_EQ(FrameSet({4}).ConsecutiveRuns(), Runs({{4, 4}}));
  EXPECT_TRUE(FrameSet().ConsecutiveRuns().empty());
  EXPECT_EQ(FrameSet::Parse("1-9x2")->ConsecutiveRuns(),
            Runs({{1, 1}, {3, 3}, {5, 5}, {7, 7}, {9, 9}}));
}

TEST(FrameSetToString, Examples) {
  EXPECT_EQ(FrameSet::Parse("1-10,12,14-20x2")->ToString(), "1-10,12-20x2");
  EXPECT_EQ(FrameSet::Parse("1-10,13,14-20x2")->ToString(), "1-10,13,14-20x2");
  EXPECT_EQ(FrameSet::Parse("7")->ToString(), "7");
  EXPECT_EQ(FrameSet::Parse("10-1")->ToString(), "1-10");
  EXPECT_EQ(FrameSet::Parse("10-1x3")->ToString(), "1-10x3");
  EXPECT_EQ(FrameSet::Parse("1,2")->ToString(), "1,2");
  EXPECT_EQ(FrameSet::Parse("1,2,3")->ToString(), "1-3");
  EXPECT_EQ(FrameSet::Parse("1,3")->ToString(), "1,3");
  EXPECT_EQ(FrameSet::Parse("1,3,5")->ToString(), "1-5x2");
  EXPECT_EQ(FrameSet::Parse("-5--1")->ToString(), "-5--1");
  EXPECT_EQ(FrameSet::Parse("-3-3")->ToString(), "-3-3");
  EXPECT_EQ(FrameSet::Parse("-9--1x4")->ToString(), "-9--1x4");
  EXPECT_EQ(FrameSet::Parse(" 3 , 1 , 2 , 1 ")->ToString(), "1-3");
  EXPECT_EQ(FrameSet().ToString(), "");
}

TEST(FrameSetToString, AnyInt64Frames) {
  // Found by tests/fuzz/frame_set_fuzz: the step between two frames of a set
  // built from a vector (a render server's assignment frames) overflowed.
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(FrameSet({kMin, 0, kMax}).ToString(), "-9223372036854775808,0,9223372036854775807");
  EXPECT_EQ(FrameSet({kMin, -1, kMax}).ToString(), "-9223372036854775808,-1,9223372036854775807");
  // Steps of exactly INT64_MAX still make a run.
  EXPECT_EQ(FrameSet({kMin, -1, kMax - 1}).ToString(),
            "-9223372036854775808-9223372036854775806x9223372036854775807");
  EXPECT_EQ(FrameSet({kMax - 4, kMax - 2, kMax}).ToString(),
            "9223372036854775803-9223372036854775807x2");
}

TEST(FrameSetToString, GreedyIsDeterministic) {
  // From 1 the longest constant-step run is 1,2 (too short), so 1 stands
  // alone and 2,4,6,8 becomes a stepped range.
  EXPECT_EQ(FrameSet({1, 2, 4, 6, 8}).ToString(), "1,2-8x2");
  EXPECT_EQ(FrameSet({1, 2, 3, 5, 7, 9}).ToString(), "1-3,5-9x2");
  EXPECT_EQ(FrameSet({1, 2, 3, 4, 6, 7}).ToString(), "1-4,6,7");
  EXPECT_EQ(FrameSet({0, 100, 200, 201}).ToString(), "0-200x100,201");
}

TEST(FrameSetToString, LargeRangeIsCompact) {
  EXPECT_EQ(FrameSet::Parse("1-10000000")->ToString(), "1-10000000");
}

TEST(FrameSetToString, RandomizedRoundTrip) {
  std::mt19937_64 rng(12345);
  std::uniform_int_distribution<int> kind(0, 3);
  std::uniform_int_distribution<int64_t> start(-1000, 1000);
  std::uniform_int_distribution<int64_t> len(0, 60);
  std::uniform_int_distribution<int64_t> step(1, 7);
  std::uniform_int_distribution<int> items(1, 8);
  for (int iter = 0; iter < 2000; ++iter) {
    // Build a random set from a mix of singles, runs and stepped runs.
    Frames v;
    for (int i = items(rng); i > 0; --i) {
      const int64_t a = start(rng);
      switch (kind(rng)) {
        case 0:
          v.push_back(a);
          break;
        case 1:
          for (int64_t f = a, n = len(rng); f <= a + n; ++f) v.push_back(f);
          break;
        default: {
          const int64_t s = step(rng);
          for (int64_t f = a, n = len(rng); f <= a + n; f += s) v.push_back(f);
        }
      }
    }
    FrameSet s(v);
    const std::string text = s.ToString();
    auto back = FrameSet::Parse(text);
    ASSERT_TRUE(back.ok()) << text << ": " << back.status().message();
    ASSERT_EQ(*back, s) << text;
    EXPECT_EQ(back->ToString(), text) << "ToString must be canonical";
  }
}

TEST(FrameSetToString, RoundTripOfParsedText) {
  for (const char* text : {"1-240", "1-100x2", "1,5,9-12", "10-1x3", "-5--1,3,100-90x5",
                           "1,1,1,2,2", "0", "-1000000,100000000"}) {
    FrameSet s = *FrameSet::Parse(text);
    EXPECT_EQ(*FrameSet::Parse(s.ToString()), s) << text;
  }
}

}  // namespace
}  // namespace ff
