#include "server/config_log.h"

#include <spdlog/spdlog.h>

namespace ff {

void LogEffectiveConfig(const std::string& daemon, const std::string& file,
                        const std::vector<std::string>& settings) {
  if (settings.empty()) {
    spdlog::info("{}: configuration from {}: every setting at its default", daemon, file);
    return;
  }
  spdlog::info("{}: configuration from {} (settings that differ from the defaults):", daemon, file);
  for (const std::string& s : settings) spdlog::info("  {}", s);
}

}  // namespace ff
