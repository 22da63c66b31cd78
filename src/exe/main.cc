// The one frameflow binary; every component is a subcommand (see cli.h).
#include "cli/cli.h"
#include "exe/daemon_mains.h"

int main(int argc, char** argv) {
  return ff::RunCli(argc, argv, {&ff::ScheduleServerMain, &ff::RenderServerMain});
}
