// Fuzz target: job descriptions (core/job_profile.h), the TOML a client
// submits and a peer site sends inside a job package.
//
// Input: the description text. Besides "no crash, no sanitizer report" it
// checks what the scheduler relies on:
//  - a parsed profile survives the database: ProfileToToml() reads back to
//    a profile that prints the same (a job whose stored profile did not
//    parse would be dropped at the next restart);
//  - the values are in their documented ranges;
//  - the path and size helpers, run on every line of the input, agree with
//    their own output (normalising twice changes nothing).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/job_profile.h"
#include "fuzz_common.h"

namespace {

using ff::JobProfile;

constexpr int64_t kYear0Ms = -62'167'219'200'000;      // 0000-01-01T00:00:00Z
constexpr int64_t kYear10000Ms = 253'402'300'800'000;  // 10000-01-01T00:00:00Z

void CheckProfile(const JobProfile& p) {
  FUZZ_CHECK(!p.name.empty() && p.name.size() <= 64, p.name);
  FUZZ_CHECK(p.priority >= 0 && p.priority <= 100, std::to_string(p.priority));
  FUZZ_CHECK(!p.frames.empty(), "a profile without frames");
  FUZZ_CHECK(p.frames.first() >= ff::FrameSet::kMinFrame, p.frames.ToString());
  FUZZ_CHECK(p.frames.last() <= ff::FrameSet::kMaxFrame, p.frames.ToString());
  FUZZ_CHECK(
      p.chunk_size == JobProfile::kAutoChunkSize || (p.chunk_size >= 1 && p.chunk_size <= 100000),
      std::to_string(p.chunk_size));
  // 0 = not set (the renderer's or the scene's own size).
  FUZZ_CHECK(p.width >= 0 && p.width <= 65536 && p.height >= 0 && p.height <= 65536, "size");
  FUZZ_CHECK(p.AnimationFirst() <= p.frames.first() && p.AnimationLast() >= p.frames.last(),
             "the animation holds every frame of the job");
  FUZZ_CHECK(p.requirements.memory_bytes >= 0, "memory");
  FUZZ_CHECK(!p.scene.empty() && p.scene[0] != '/', p.scene);
  FUZZ_CHECK(p.output.empty() || p.output.find('#') != std::string::npos, p.output);
  if (ff::PackageNeedsOutput(p.package)) FUZZ_CHECK(!p.output.empty(), p.package);
  for (const std::string& f : p.AllFiles()) {
    auto again = ff::NormaliseJobPath(f, "file");
    FUZZ_CHECK(again.ok() && *again == f, f);
  }
  // What a render server does with the profile's output pattern.
  const std::string first = p.OutputName(p.frames.first());
  const std::string last = p.OutputName(p.frames.last());
  if (!p.output.empty()) {
    FUZZ_CHECK(first.find('#') == std::string::npos, first);
    FUZZ_CHECK(p.frames.size() == 1 || first != last, first + " for two frames");
  }
  (void)p.OutputCentralDir();
  (void)p.NeedsWrapper();
}

void CheckRoundTrip(const JobProfile& p) {
  const std::string stored = ff::ProfileToToml(p);
  auto again = ff::ParseJobDescription(stored, "stored profile");
  FUZZ_CHECK(again.ok(), "the stored profile does not parse: " + again.status().message() +
                             "\n--- stored:\n" + stored);
  const std::string twice = ff::ProfileToToml(*again);
  FUZZ_CHECK(twice == stored, "the stored profile changes when read back:\n--- first:\n" + stored +
                                  "--- second:\n" + twice);
  FUZZ_CHECK(again->frames == p.frames, "frames changed");
  FUZZ_CHECK(again->deadline_ms == p.deadline_ms, "deadline " + std::to_string(p.deadline_ms) +
                                                      " read back as " +
                                                      std::to_string(again->deadline_ms));
}

// The helpers on one line of text.
void CheckHelpers(std::string_view line) {
  if (auto bytes = ff::ParseByteSize(line); bytes.ok()) {
    FUZZ_CHECK(*bytes >= 0, std::string(line));
    auto plain = ff::ParseByteSize(std::to_string(*bytes));
    FUZZ_CHECK(plain.ok() && *plain == *bytes, std::string(line));
  }
  if (auto ms = ff::ParseRfc3339(line); ms.ok()) {
    // Every time in years 0000-9999 prints to text that parses back to it.
    const std::string text = ff::FormatRfc3339(*ms);
    auto again = ff::ParseRfc3339(text);
    if (*ms >= kYear0Ms && *ms < kYear10000Ms) {
      FUZZ_CHECK(again.ok() && *again == *ms,
                 std::string(line) + " -> " + std::to_string(*ms) + " -> " + text);
    }
  }
  if (auto path = ff::NormaliseJobPath(line, "path"); path.ok()) {
    auto again = ff::NormaliseJobPath(*path, "path");
    FUZZ_CHECK(again.ok() && *again == *path, *path);
    FUZZ_CHECK((*path)[0] != '/' && ("/" + *path + "/").find("/../") == std::string::npos &&
                   ("/" + *path + "/").find("/./") == std::string::npos &&
                   path->find("//") == std::string::npos,
               *path);
  }
  if (auto path = ff::NormaliseCentralPath(line, "central"); path.ok()) {
    auto again = ff::NormaliseCentralPath(*path, "central");
    FUZZ_CHECK(again.ok() && *again == *path, *path);
    FUZZ_CHECK((*path)[0] == '/' && (*path + "/").find("/../") == std::string::npos, *path);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto profile = ff::ParseJobDescription(text, "fuzz.toml");
  if (profile.ok()) {
    CheckProfile(*profile);
    CheckRoundTrip(*profile);
  } else {
    FUZZ_CHECK(profile.status().message().rfind("fuzz.toml", 0) == 0,
               "an error that does not name the file: " + profile.status().message());
  }
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    CheckHelpers(text.substr(start, end - start));
    start = end + 1;
  }
  return 0;
}
