// Configuration of a render server (host.toml):
//
//   name = "rs1"                       # render server name, default: host name
//   root = "/srv/frameflow/rs1"        # required: cache/, work/ live here
//   schedule_server = "127.0.0.1:7450" # or schedule_server_file = ".../schedule-server.addr"
//   heartbeat_interval = "1s"
//   drain_timeout = "10m"              # SIGTERM: finish running chunks for at most this long
//   probe = ["povray", "blender"]      # packages to detect (default both)
//
//   [[slots]]                          # default: one slot with all cores
//   name = "0"
//   cores = 1
//   memory = "2G"                    # default: an equal share of the host
//   gpus = 0
//   count = 2                          # optional: N slots "<name>-0".."<name>-N-1"
//
//   [sandbox]                          # the I/O wrapper on this host
//   wrapper = "/usr/lib/frameflow/frameflow-wrap"  # default: next to frameflow
//   uid_base = 3000000000              # slot i runs as uid_base + i (>= 1e8; default: a free
//   block) cgroup_parent = "frameflow" landlock_min_abi = 1 extra_paths = ["/opt/renderer"]    #
//   read-only paths added to the default system view
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

#include "base/status.h"

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

// The I/O wrapper on this host ([sandbox] in host.toml). Which chunks run
// inside it, and with which limits, is the site's policy (site.toml),
// carried by each assignment.
struct SandboxHostConfig {
  std::string wrapper;  // frameflow-wrap; default: next to this executable
  // Slot i runs as uid/gid uid_base + i. 0: claim a free block of 1000 ids
  // from 2000000000 up, so render servers sharing a host never share a uid.
  int64_t uid_base = 0;
  // Per-run cgroups go under <parent>/<server name>-<uid_base>. Render
  // servers sharing a host must have distinct uid_base values (claimed
  // blocks are).
  std::string cgroup_parent = "frameflow";
  int landlock_min_abi = 1;
  // Host paths renderers may read and execute, mounted read-only at the
  // same place; those missing on the host are skipped.
  std::vector<std::string> system_paths = {
      "/usr",       "/etc/ld.so.cache", "/etc/alternatives", "/etc/povray",
      "/etc/fonts", "/etc/localtime",   "/etc/mime.types"};
  std::vector<std::string> extra_paths;  // appended to system_paths
};

struct RenderServerConfig {
  // What the file and the flags set, for the start log.
  std::vector<std::string> settings;
  std::string name;
  std::string root;
  std::string schedule_server;
  std::string schedule_server_file;
  int64_t heartbeat_interval_ms = 1000;
  // SIGTERM drains: no new chunks, running ones finish and are reported; the
  // ones still running after this long are killed and handed back.
  int64_t drain_timeout_ms = 10 * 60 * 1000;
  std::vector<std::string> probe = {"povray", "blender"};
  std::vector<SlotConfig> slots;
  std::vector<CommandPackageConfig> packages;
  SandboxHostConfig sandbox;

  std::string cache_dir() const { return root + "/cache"; }
  std::string work_dir() const { return root + "/work"; }
  // Secure locations of wrapped chunks: secure/<client>/<job>/<slot>/.
  std::string secure_dir() const { return root + "/secure"; }
};

// Command-line values that replace keys of the file; applied before the
// file is validated, so a flag can supply a missing required key.
struct RenderServerConfigOverrides {
  std::string name;             // --name
  std::string schedule_server;  // --schedule-server
  std::string root;             // --root
};
Result<RenderServerConfig> LoadRenderServerConfig(
    const std::string& path, const RenderServerConfigOverrides& overrides = {});

// Splits a command template into arguments (whitespace; quotes group).
Result<std::vector<std::string>> SplitCommandTemplate(const std::string& command);

// InvalidArgument naming the first `{word}` in a command template that the
// command adapter does not replace (a typo would otherwise surface only as
// a failed render). `${VAR}` is left to the shell.
Status CheckCommandTokens(const std::string& command);

// InvalidArgument when `name` is not a valid render server name (see
// ServerNameProblem in core/text.h), for a name given on the command line.
Status CheckRenderServerName(const std::string& name);

}  // namespace ff
