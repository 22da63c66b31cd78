// The `frameflow` command line: daemons (schedule-server, render-server),
// client commands (submit, jobs, show, wait, logs, cancel, fetch, hosts) and
// the demo. Returns the process exit code; errors are one sentence on stderr.
#pragma once

namespace ff {
int RunCli(int argc, char** argv);
}
