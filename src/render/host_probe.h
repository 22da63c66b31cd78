// Probes what a render server's host offers: hardware (CPU model, cores,
// memory, GPUs, OS) and installed rendering packages with versions.
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "core/host_record.h"

namespace ff {

// Reads /proc/cpuinfo, /proc/meminfo, /etc/os-release, uname and
// /proc/driver/nvidia/gpus (GPUs; none when absent). `host_name` is used as
// HostRecord::name. Never fails: unknown fields stay empty/zero.
HostRecord ProbeHardware(const std::string& host_name);

// Finds `executable` (a name looked up in $PATH, or a path) and asks it for
// its version: POV-Ray ("povray --version" prints "POV-Ray 3.7.0.10...") and
// Blender ("blender --version" prints "Blender 3.4.1"). Returns NotFound when
// the executable is missing, InvalidArgument when no version can be read.
Result<PackageRecord> ProbePovray(const std::string& executable = "povray");
Result<PackageRecord> ProbeBlender(const std::string& executable = "blender");

// Absolute path of `name` searched in $PATH (or `name` itself if it contains
// a '/' and is executable); NotFound otherwise.
Result<std::string> FindExecutable(const std::string& name);

}  // namespace ff
