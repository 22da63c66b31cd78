// The `frameflow` command line: daemons (schedule-server, render-server),
// client commands (submit, jobs, show, wait, logs, cancel, fetch, hosts) and
// the demo. Returns the process exit code; errors are one sentence on stderr.
#pragma once

#include <string>

#include "base/status.h"

namespace ff {

// The parsed flags of a daemon subcommand.
struct DaemonArgs {
  std::string config;           // --config
  std::string listen;           // schedule-server --listen
  std::string root;             // --root
  std::string name;             // render-server --name
  std::string schedule_server;  // render-server --schedule-server
};

// The daemons' runners (src/exe): the CLI parses their flags and calls them.
struct DaemonEntryPoints {
  int (*schedule_server)(const DaemonArgs& args) = nullptr;
  int (*render_server)(const DaemonArgs& args) = nullptr;
};

int RunCli(int argc, char** argv, const DaemonEntryPoints& daemons);

// The exit code of a failed command, after printing its one sentence to
// stderr: 2 bad input, 3 not found, 4 unavailable, 1 otherwise.
int Fail(const Status& st);

}  // namespace ff
