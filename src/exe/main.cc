// The one frameflow binary; every component is a subcommand (see cli.h).
#include "cli/cli.h"

int main(int argc, char** argv) { return ff::RunCli(argc, argv); }
