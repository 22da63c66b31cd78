// The I/O wrapper policy of a job's chunks (site config + job), and the
// same policy in words for `show`.
#include "base/units.h"
#include "scheduler/scheduler.h"

namespace ff {

namespace pb = frameflow::v1;

void Scheduler::FillSandboxPolicyLocked(const Job& job, pb::SandboxPolicy* p) const {
  const SandboxSiteConfig& sb = config_.sandbox;
  // Remote jobs always run inside the wrapper; so does any job naming
  // central paths (only the wrapper can put its files there).
  p->set_wrap(!job.rec.origin_site.empty() || sb.wrap_local_jobs || job.profile.NeedsWrapper());
  if (!p->wrap()) return;
  p->set_memory(sb.memory_bytes);
  p->set_processes(sb.processes);
  p->set_cpu_seconds(sb.cpu_seconds);
  p->set_wall_ms(sb.wall_ms);
  p->set_output_bytes(sb.output_bytes);
  p->set_file_bytes(sb.file_bytes);
  p->set_tmp_bytes(sb.tmp_bytes);
  for (const CentralPath& c : job.profile.central) {
    pb::CentralMount* m = p->add_central();
    m->set_path(c.path);
    m->set_source(c.source);
  }
  p->set_output_dir(job.profile.OutputCentralDir());
}

std::string Scheduler::SandboxTextLocked(const Job& job) const {
  pb::SandboxPolicy p;
  FillSandboxPolicyLocked(job, &p);
  if (!p.wrap()) return "plain, no I/O wrapper (sandbox.local_jobs = \"plain\")";
  auto size = [](int64_t bytes) { return FormatBytes(bytes); };
  std::string out = std::string("I/O wrapper (") +
                    (!job.rec.origin_site.empty() ? "remote job" : "local job") +
                    "); mounts: /job <- the job's files (read-only)";
  for (const auto& c : p.central()) out += ", " + c.path() + " <- " + c.source() + " (read-only)";
  out += ", " + (p.output_dir().empty() ? std::string("/out") : p.output_dir()) + " (writable, " +
         size(p.output_bytes()) + ")";
  out += ", /tmp (" + size(p.tmp_bytes()) + "); limits: memory " +
         (p.memory() > 0 ? size(p.memory()) : std::string("the slot's")) + ", processes " +
         (p.processes() > 0 ? std::to_string(p.processes()) : "none") + ", cpu time " +
         (p.cpu_seconds() > 0 ? std::to_string(p.cpu_seconds()) + " s" : "none") + ", wall time " +
         (p.wall_ms() > 0 ? std::to_string(p.wall_ms() / 1000) + " s" : "none") + ", file size " +
         (p.file_bytes() > 0 ? size(p.file_bytes()) : "none");
  return out;
}

}  // namespace ff
