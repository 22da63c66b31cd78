// The runners of the two daemons; `frameflow schedule-server` and
// `frameflow render-server` end here once the CLI parsed their flags.
#pragma once

#include "cli/cli.h"

namespace ff {

int ScheduleServerMain(const DaemonArgs& args);
int RenderServerMain(const DaemonArgs& args);

}  // namespace ff
