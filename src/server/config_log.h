// The start log of a daemon's configuration: what it runs with beyond the
// built-in defaults, so a wrangler reading the log after an incident sees
// the settings that were in force.
#pragma once

#include <string>
#include <vector>

namespace ff {

// Logs (info) "<daemon>: configuration from <file>:" and one line per
// setting ("schedule_server.listen = \"0.0.0.0:7450\"", flags marked as
// such); secrets are already masked by the loader (ConfigTable::Settings).
void LogEffectiveConfig(const std::string& daemon, const std::string& file,
                        const std::vector<std::string>& settings);

}  // namespace ff
