// What a render server accepts from its schedule server, as pure
// functions: the checks of an assignment (beside the scheduler's
// CheckRegister for the other direction) and the chunk and I/O wrapper
// specs derived from it. No I/O, no state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "render/package_adapter.h"
#include "rpc/protocol.h"
#include "sandbox/spec.h"
#include "util/process.h"

namespace ff {

// "job 3 chunk 0 attempt 1", for logs and errors.
std::string ChunkName(const frameflow::v1::Assignment& a);

// What a render server checks in an assignment before any of it touches
// the host: frames (some, ascending, in FrameSet's range), job file paths
// and the scene (clean relative paths), digests and sizes, the output
// pattern, the size, and the I/O wrapper policy (central paths, limits in
// range). The schedule server only sends what it validated; this keeps a
// buggy or hostile one from making the render server (often root) write
// outside the chunk's directories. The error names the field.
Status CheckAssignment(const frameflow::v1::Assignment& a);

// The chunk an assignment describes, for a renderer with `threads` cores
// (job_dir and out_dir left empty).
ChunkSpec ChunkSpecOf(const frameflow::v1::Assignment& a, int threads);

// What a render slot adds to the I/O wrapper spec of one of its chunks.
struct WrapSlot {
  std::string run_name;  // the run's (cgroup's) name
  uint32_t uid = 0;
  std::string secure_dir;                  // the chunk's secure location
  int64_t memory_bytes = 0;                // the slot's memory
  std::vector<sandbox::BindMount> system;  // read-only system view
  std::string cgroup_parent;
  int landlock_min_abi = 1;
};

// The I/O wrapper spec of command `ps` (number `index`) of the chunk of
// `a`, its output area `out_dir` holding `dirs`; `used_ms` and
// `used_cpu_ms` of the chunk's time limits went to its earlier commands.
// Fails when those limits are used up. REQUIRES: CheckAssignment(a) is ok.
Result<sandbox::WrapSpec> WrapSpecOf(const frameflow::v1::Assignment& a, const WrapSlot& slot,
                                     const ProcessSpec& ps, const std::string& out_dir,
                                     const std::vector<std::string>& dirs, int index,
                                     int64_t used_ms, int64_t used_cpu_ms);

}  // namespace ff
