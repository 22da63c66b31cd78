// RFC 3339 date-times, as job descriptions write deadlines and the CLI
// shows times: "2026-11-21T18:00:00Z", "2026-11-21T19:00:00+01:00".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"

namespace ff {

// Unix milliseconds of an RFC 3339 date-time: fixed-width fields, 'T', 't'
// or ' ' between date and time, optional fraction (milliseconds kept), 'Z'
// or a +hh:mm / -hh:mm offset. The error quotes the text.
Result<int64_t> ParseRfc3339(std::string_view text);
// UTC, with milliseconds only when there are any: "2026-11-21T18:00:00Z".
std::string FormatRfc3339(int64_t unix_ms);

}  // namespace ff
