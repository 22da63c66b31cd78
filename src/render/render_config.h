// Configuration of a render server (host.toml):
//
//   name = "rs1"                       # render server name, default: host name
//   root = "/srv/frameflow/rs1"        # required: cache/, work/ live here
//   schedule_server = "127.0.0.1:7450" # or schedule_server_file = ".../schedule-server.addr"
//   heartbeat_interval = "1s"
//   probe = ["povray", "blender"]      # packages to detect (default both)
//
//   [[slots]]                          # default: one slot with all cores
//   name = "0"
//   cores = 1
//   memory = "2G"                    # default: an equal share of the host
//   gpus = 0
//   count = 2                          # optional: N slots "<name>-0".."<name>-N-1"
//
//   [[packages]]                       # command-template packages
//   name = "ffmpeg-still"
//   version = "5.1"
//   command = "mytool --frame {frame} --out {output} {scene}"
//
// Command templates are split into arguments on whitespace (single and double
// quotes group) before tokens are replaced, and run without a shell. Tokens:
// {frame} {first} {last} {output} {outdir} {scene} {width} {height}
// {threads} {job} {chunk}. A template with {frame} runs once per frame with
// {output} the frame's file; without it, once per chunk with {output} the
// output pattern ('#' runs kept) inside {outdir}.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace ff {

struct SlotConfig {
  std::string name;
  int cores = 1;
  int64_t memory_bytes = 0;
  int gpus = 0;
};

struct CommandPackageConfig {
  std::string name;
  std::string version;
  std::string command;
};

struct RenderServerConfig {
  std::string name;
  std::string root;
  std::string schedule_server;
  std::string schedule_server_file;
  int64_t heartbeat_interval_ms = 1000;
  std::vector<std::string> probe = {"povray", "blender"};
  std::vector<SlotConfig> slots;
  std::vector<CommandPackageConfig> packages;

  std::string cache_dir() const { return root + "/cache"; }
  std::string work_dir() const { return root + "/work"; }
};

Result<RenderServerConfig> LoadRenderServerConfig(const std::string& path);

// Splits a command template into arguments (whitespace; quotes group).
Result<std::vector<std::string>> SplitCommandTemplate(const std::string& command);

}  // namespace ff
