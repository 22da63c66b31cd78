// Package adapters: how one rendering package renders a chunk — the
// commands to run, how to read progress from its output, and where its
// frames land. One adapter per package kind: POV-Ray, Blender, command
// template.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "render/render_config.h"
#include "util/process.h"

namespace ff {

struct ChunkSpec {
  int64_t job_id = 0;
  int chunk = 0;
  std::vector<int64_t> frames;  // ascending
  int64_t job_first_frame = 0;
  int64_t job_last_frame = 0;
  std::string job_dir;  // the job's files, laid out by relative path
  std::string scene;    // relative to job_dir
  std::string out_dir;  // empty directory the renderer writes into
  int width = 320;
  int height = 240;
  int threads = 1;
  // The job's output pattern ('#' = frame digits); empty when the job writes
  // no files (command-template packages only: the built-in adapters fail
  // such a chunk with an error naming render.output).
  std::string output_pattern;
  std::vector<std::string> args;
  // A home directory for renderers that read per-user configuration (as the
  // renderer sees it; read-only): POV-Ray's ~/.povray/3.7/povray.conf is
  // there, so it does not complain of a missing one in every log. Empty:
  // leave HOME alone.
  std::string renderer_home;
};

// Progress parsed from renderer output. Not thread-safe; owned by one chunk.
struct ChunkProgressState {
  int64_t current_frame = -1;
  int frames_done = 0;
  // The line that best says why the renderer failed: the package's own
  // error line (POV-Ray's "Parse Error: …", Blender's "Error: Cannot read
  // file …") once seen is kept — a later generic line ("Render failed")
  // does not replace it; otherwise the most recent line that looks like an
  // error. Use NoteError() to update both.
  std::string last_error_line;
  int last_error_rank = 0;          // 2: the package's own error line; 1: generic
  bool error_may_continue = false;  // the next line may be the error's wrapped rest
  void NoteError(const std::string& line, int rank) {
    if (rank > last_error_rank || (rank == 1 && last_error_rank == 1)) {
      last_error_line = line;
      last_error_rank = rank;
    }
  }
};

class PackageAdapter {
 public:
  virtual ~PackageAdapter() = default;
  virtual std::string kind() const = 0;
  // Processes to run one after another; all must exit 0.
  virtual Result<std::vector<ProcessSpec>> Commands(const ChunkSpec& spec) const = 0;
  // Updates `state` from one line of the renderer's output.
  virtual void ObserveLine(const std::string& line, ChunkProgressState* state) const = 0;
  // After every command succeeded: the file each frame was written to.
  // Frames with no file are absent from the map; a job without an output
  // pattern has none.
  virtual Result<std::map<int64_t, std::string>> FindOutputs(const ChunkSpec& spec) const = 0;
};

std::unique_ptr<PackageAdapter> MakePovrayAdapter(const std::string& executable);
std::unique_ptr<PackageAdapter> MakeBlenderAdapter(const std::string& executable);
std::unique_ptr<PackageAdapter> MakeCommandAdapter(const CommandPackageConfig& package);

// The output file name of `frame` under `pattern` (see JobProfile::OutputName).
std::string ExpandOutputPattern(const std::string& pattern, int64_t frame);

// The sub-directories of the output directory that the chunk's frames go
// to ("shot/f_####.png" -> "shot"), relative, each once; the render server
// creates them before the renderer runs.
std::vector<std::string> OutputSubdirs(const ChunkSpec& spec);

}  // namespace ff
