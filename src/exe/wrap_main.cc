// frameflow-wrap: runs one program inside the I/O wrapper (src/sandbox).
// The render server starts every sandboxed renderer through it; admins can
// run it by hand to see what a chunk sees. Usage: frameflow-wrap --help.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "sandbox/cgroup.h"
#include "sandbox/landlock.h"
#include "sandbox/spec.h"
#include "sandbox/wrapper.h"

namespace {

constexpr const char* kUsage = R"(usage: frameflow-wrap [options] -- PROGRAM [ARGS...]

Runs PROGRAM as an unprivileged uid in new mount, PID, network, IPC, UTS and
cgroup namespaces, seeing only the mounts given here (must run as root).

  --name NAME              run name (the cgroup's), required
  --uid N --gid N          the unprivileged uid/gid to run as, required
  --ro HOST[:SANDBOX]      read-only, executable bind (system files)
  --input HOST             the job's input, read-only at /job
  --central HOST:SANDBOX   read-only bind at a central storage path
  --output SANDBOX         writable tmpfs at SANDBOX, collected after the run
  --collect-to HOST        where the output is collected to
  --cwd DIR  --env K=V  --hostname NAME
  --memory SIZE --processes N --cpu-time SECONDS --wall-time MS
  --output-size SIZE --file-size SIZE --tmp-size SIZE --open-files N
  --landlock-min-abi N  --cgroup-parent PATH
  --report FILE            JSON report: exit code, limit hit, files collected/refused
  --summary                print the mounts and limits to stderr first

frameflow-wrap --check prints what this host offers the wrapper.

Exit status: the program's (128 + signal when killed), 125 when the sandbox
cannot be set up, 126/127 when the program cannot be run.
)";

}  // namespace

int Main(int argc, char** argv);

int main(int argc, char** argv) {
  // Nothing should throw here; if anything does, the chunk fails as a
  // wrapper failure rather than as a crash of the program.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "frameflow-wrap: internal error: %s\n", e.what());
    return ff::sandbox::kSetupFailed;
  }
}

int Main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::fputs(kUsage, args.empty() ? stderr : stdout);
    return args.empty() ? ff::sandbox::kSetupFailed : 0;
  }
  if (args[0] == "--check") {
    const int abi = ff::sandbox::LandlockAbi();
    std::printf("landlock ABI %d%s\ncgroups %s\nrunning as %s\n", abi,
                abi == 0 ? " (unsupported or disabled)" : "",
                ff::sandbox::DescribeHierarchies().c_str(),
                ::geteuid() == 0 ? "root" : "non-root (the wrapper needs root)");
    return 0;
  }
  auto spec = ff::sandbox::ParseWrapArgs(args);
  if (argc > 0) {
    char* last = argv[argc - 1];
    ff::sandbox::SetCommandLineArea(argv[0],
                                    static_cast<size_t>(last + std::strlen(last) - argv[0]));
  }
  if (!spec.ok()) {
    std::fprintf(stderr, "frameflow-wrap: %s\n", spec.status().message().c_str());
    return ff::sandbox::kSetupFailed;
  }
  if (spec->summary) {
    for (const auto& line : ff::sandbox::SummaryLines(*spec)) {
      std::fprintf(stderr, "frameflow-wrap: sandbox: %s\n", line.c_str());
    }
    std::fflush(stderr);
  }
  ff::sandbox::WrapReport report = ff::sandbox::RunWrapped(*spec);
  if (!report.setup_error.empty()) {
    std::fprintf(stderr, "frameflow-wrap: %s\n", report.setup_error.c_str());
  }
  if (!report.reason.empty()) std::fprintf(stderr, "frameflow-wrap: %s\n", report.reason.c_str());
  for (const auto& r : report.collection.refused) {
    std::fprintf(stderr, "frameflow-wrap: refused output '%s': %s\n",
                 ff::sandbox::PrintableName(r.path).c_str(), r.why.c_str());
  }
  if (!spec->report.empty()) {
    // Read by the render server right after this process exits: no fsync
    // needed (a crash redoes the chunk).
    const std::string json = ff::sandbox::ReportToJson(report);
    FILE* f = std::fopen(spec->report.c_str(), "we");
    if (!f || std::fwrite(json.data(), 1, json.size(), f) != json.size() || std::fclose(f) != 0) {
      std::fprintf(stderr, "frameflow-wrap: cannot write the report '%s'\n", spec->report.c_str());
      return ff::sandbox::kSetupFailed;
    }
  }
  return report.exit_code;
}
