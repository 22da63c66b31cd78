// Job description (TOML, written by the client) -> JobProfile (validated,
// normalised; what the scheduler matches on).
//
// A job description looks like this (every key is documented in
// docs/job-description.md):
//
//   name = "clock"            # required, [A-Za-z0-9._-]{1,64}
//   priority = 50             # 0..100, default 50; higher renders first
//   placement = "local"       # local | remote | auto   (default local)
//   remote_site = "render-co" # with placement = "remote": which peer (default: the first)
//   deadline = "2026-11-21T18:00:00Z"  # optional, RFC 3339; `auto` outsources
//                             # when the local site cannot make it
//   frames = "1-24"           # required, FrameSet syntax
//   chunk_size = 4            # frames per chunk, 1..100000, or "auto"; default 1
//   max_attempts = 3          # tries per chunk, 1..100, default from site
//   files = ["clock.inc", "tex/wood.png"]   # associated files (top level,
//                                           # before any [table])
//
//   [package]
//   name = "povray"           # required: povray | blender | a command package
//   version = ">=3.7"         # optional constraint, see VersionConstraint
//
//   [render]
//   scene = "clock.pov"       # required, relative path inside the job
//   width = 320               # 1..65536, default 320
//   height = 240              # 1..65536, default 240
//   output = "clock_####.png" # '#' run = zero-padded frame number; required for
//                             # povray and blender, optional for command packages
//   args = ["+A0.3"]          # optional extra renderer arguments
//
//   [requirements]
//   cores = 1                 # per chunk, default 1
//   memory = "512M"           # per chunk, K/M/G/T suffix or bytes, default 0
//   gpus = 0                  # default 0
//
//   [[notify]]                # zero or more
//   webhook = "http://127.0.0.1:8080/done"  # and/or
//   command = "notify-send done"
//
// Unknown keys are errors. Every error message names the key and the line of
// the description ("clock.toml:7: frames: ..."), so a wrangler can fix it
// without reading source code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/rfc3339.h"
#include "base/status.h"
#include "base/units.h"
#include "core/frame_set.h"
#include "core/version.h"

namespace ff {

enum class Placement { kLocal, kRemote, kAuto };
const char* PlacementName(Placement p);

struct Requirements {
  int cores = 1;
  int64_t memory_bytes = 0;
  int gpus = 0;
};

struct NotifyTarget {
  std::string webhook;  // http:// or https:// URL, may be empty
  std::string command;  // shell command, may be empty
};

// A central storage path the scene names (e.g. "/studio/assets/clock"),
// standing for a directory of the job's files. Inside the I/O wrapper the
// job's copy of that directory is mounted there, read-only.
struct CentralPath {
  std::string path;    // absolute, normalised
  std::string source;  // relative directory inside the job
};

struct JobProfile {
  std::string name;
  int priority = 50;
  Placement placement = Placement::kLocal;
  std::string remote_site;  // optional peer name with placement = "remote"
  // Unix ms the client needs the frames by, 0 = none; else after 1970 and
  // before year 10000 (UTC).
  int64_t deadline_ms = 0;
  FrameSet frames;
  // Frames per chunk, or kAutoChunkSize for chunk_size = "auto": the
  // schedule server then plans the chunks itself (scheduler/chunk_planner.h).
  static constexpr int kAutoChunkSize = 0;
  int chunk_size = 1;
  int max_attempts = 0;  // 0 = use the site default
  std::string package;   // lower-case package name
  VersionConstraint package_version;
  std::string scene;  // relative path, normalised, inside the job
  // Image size; 0 = not set: Blender keeps the .blend's own resolution,
  // POV-Ray and command templates use kDefaultWidth x kDefaultHeight.
  int width = 0;
  int height = 0;
  static constexpr int kDefaultWidth = 320;
  static constexpr int kDefaultHeight = 240;
  // The animation's whole frame range ([render] animation = "1-24"): a
  // property of the scene, not of the frames this job renders, so a partial
  // re-render maps each frame to the same clock as the full one. 0, 0 = not
  // set: the job's own first and last frame. AnimationFirst/Last say which.
  int64_t animation_first = 0;
  int64_t animation_last = 0;
  int64_t AnimationFirst() const { return animation_last > 0 ? animation_first : frames.first(); }
  int64_t AnimationLast() const { return animation_last > 0 ? animation_last : frames.last(); }
  // Output pattern with at least one '#', or empty: the job writes no files
  // (command-template packages only), and a chunk is done when its commands
  // exit 0. Relative to the renderer's output directory, or absolute: a
  // central storage path ("/studio/renders/clock/clock_####.png") whose
  // directory is the writable output area inside the I/O wrapper.
  std::string output;
  std::vector<CentralPath> central;  // read-only central paths ([[central]])
  std::vector<std::string> args;
  Requirements requirements;
  std::vector<std::string> files;  // associated files, normalised relative paths
  std::vector<NotifyTarget> notify;

  // Every file the job needs on a render server: scene + associated files,
  // deduplicated, in a stable order.
  std::vector<std::string> AllFiles() const;

  // True when `output` is an absolute central storage path (the job must
  // run inside the I/O wrapper).
  bool OutputIsCentral() const { return !output.empty() && output[0] == '/'; }
  // The central output directory ("/studio/renders/clock"), or "".
  std::string OutputCentralDir() const;
  // The pattern relative to the output directory: `output`, or its last
  // component when it is central.
  std::string OutputPattern() const;
  // True when the job can only run inside the I/O wrapper.
  bool NeedsWrapper() const { return OutputIsCentral() || !central.empty(); }

  // Output file name of `frame`: each run of '#' in OutputPattern() becomes the
  // frame number zero-padded to the run's length ("f_####.png", 7 ->
  // "f_0007.png"); a number longer than the run is written in full.
  std::string OutputName(int64_t frame) const;
};

// True for the built-in image renderers (povray, blender), whose jobs must
// name an output pattern.
bool PackageNeedsOutput(std::string_view package);

// The largest job description accepted, in bytes (by `submit` and by the
// schedule server): a description lists frames and files, not their content.
constexpr int64_t kMaxJobDescriptionBytes = 1 << 20;

// Parses and validates a description. `source_name` is used in error
// messages (usually the file name). Does not touch the filesystem.
Result<JobProfile> ParseJobDescription(std::string_view toml_text, const std::string& source_name);

// What Submit checks of a description before anything else, and what the
// ValidateJob RPC answers: the size limit (kMaxJobDescriptionBytes), then
// ParseJobDescription. `source_name` names it in errors ("job description"
// when empty).
Result<JobProfile> ValidateJobDescription(std::string_view toml_text, std::string source_name);

// Checks a relative path a job names: not empty, not absolute, no "..",
// no empty or "." components after normalisation, no NUL; returns it
// normalised ("a//b/./c" -> "a/b/c"). `field` names the key for errors.
Result<std::string> NormaliseJobPath(std::string_view path, const std::string& field);

// Checks an absolute central storage path: normalised ("/a//b/" ->
// "/a/b"), no "..", at least two components, not under the paths the I/O
// wrapper keeps for the system (/usr, /etc, /proc, /dev, /tmp, /job, ...).
Result<std::string> NormaliseCentralPath(std::string_view path, const std::string& field);

// Serialises a profile back to a description that ParseJobDescription()
// reads to an equal profile (used to store the profile in the database).
std::string ProfileToToml(const JobProfile& profile);

}  // namespace ff
