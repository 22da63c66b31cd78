// `frameflow render-server --config host.toml [--name N]
// [--schedule-server A] [--root DIR]`. The first SIGTERM drains the render
// server (no new chunks; running ones finish and are reported); a second
// SIGTERM, or SIGINT, stops it at once, handing its chunks back.
#include <signal.h>
#include <sys/prctl.h>

#include <atomic>
#include <thread>

#include "base/clock.h"
#include "exe/daemon_mains.h"
#include "render/render_server.h"
#include "server/config_log.h"
#include "server/shutdown_signals.h"

namespace ff {

int RenderServerMain(const DaemonArgs& args) {
  auto signals = ShutdownSignals::Install();  // before any thread starts
  if (!signals.ok()) return Fail(signals.status());
  auto config = LoadRenderServerConfig(args.config, {args.name, args.schedule_server, args.root});
  if (!config.ok()) return Fail(config.status());
  LogEffectiveConfig("render server", args.config, config->settings);
  // Orphaned grandchildren of renderers come to us, not to init, so process
  // trees stay within reach.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1);
  RenderServer server(*config, DefaultProcessLauncher(), SystemClock::Default());
  if (Status st = server.Init(); !st.ok()) return Fail(st);
  std::atomic<bool> stop{false}, drain{false};
  std::thread on_signal([&] {
    while (int sig = (*signals)->Wait()) {
      if (sig == SIGINT || drain.exchange(true)) {
        stop = true;
        return;
      }
    }
  });
  Status st = server.Run(&stop, &drain);
  (*signals)->Interrupt();
  on_signal.join();
  return st.ok() ? 0 : Fail(st);
}

}  // namespace ff
