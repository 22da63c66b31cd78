// What a render server reports about its host when it registers: the
// hardware and the rendering packages installed on it (DESIGN.md R3). The
// render server fills them (render/host_probe.h); the schedule server
// matches jobs against them and stores them in the resource database.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ff {

struct HostRecord {
  std::string name;  // host name as reported by the render server
  std::string cpu_model;
  int cores = 0;
  int64_t memory_bytes = 0;
  std::vector<std::string> gpus;  // one entry per GPU: model name
  std::string os;                 // e.g. "Debian GNU/Linux 12 (bookworm) 6.1.0"
};

struct PackageRecord {
  std::string host;
  std::string name;     // "povray", "blender", or a command package name
  std::string version;  // e.g. "3.7.0.10"
  std::string executable;
  std::string kind;  // "povray" | "blender" | "command"
};

}  // namespace ff
