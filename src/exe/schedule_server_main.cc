// `frameflow schedule-server --config site.toml [--listen A] [--root DIR]`:
// runs until SIGINT or SIGTERM, then stops cleanly.
#include "exe/daemon_mains.h"
#include "scheduler/schedule_server_daemon.h"
#include "server/config_log.h"
#include "server/shutdown_signals.h"

namespace ff {

int ScheduleServerMain(const DaemonArgs& args) {
  auto signals = ShutdownSignals::Install();  // before any thread starts
  if (!signals.ok()) return Fail(signals.status());
  auto config = LoadSiteConfig(args.config, {args.root, args.listen});
  if (!config.ok()) return Fail(config.status());
  LogEffectiveConfig("schedule server", args.config, config->settings);
  auto daemon = ScheduleServerDaemon::Start(*config);
  if (!daemon.ok()) return Fail(daemon.status());
  (*signals)->Wait();
  (*daemon)->Stop();
  return 0;
}

}  // namespace ff
