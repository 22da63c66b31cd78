#include "base/units.h"

#include <cstdio>
#include <limits>

#include "base/text.h"

namespace ff {

Result<int64_t> ParseByteSize(std::string_view text) {
  const std::string_view t = Trim(text);
  if (t.empty()) return InvalidArgument("byte size is empty");
  const std::string quoted = "byte size '" + PrintableExcerpt(t) + "'";
  size_t i = 0;
  int64_t value = 0;
  while (i < t.size() && IsDigit(t[i])) {
    const int digit = t[i] - '0';
    if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
      return InvalidArgument(quoted + ": too large");
    }
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) {
    return InvalidArgument(quoted +
                           ": expected a whole number of bytes, optionally followed by K, M, G "
                           "or T");
  }
  const std::string_view suffix = t.substr(i);
  int shift = -1;
  if (suffix.empty()) {
    shift = 0;
  } else if (suffix.size() == 1) {
    switch (suffix[0]) {
      case 'K':
      case 'k':
        shift = 10;
        break;
      case 'M':
      case 'm':
        shift = 20;
        break;
      case 'G':
      case 'g':
        shift = 30;
        break;
      case 'T':
      case 't':
        shift = 40;
        break;
    }
  }
  if (shift < 0) {
    return InvalidArgument(quoted + ": unknown suffix '" + PrintableExcerpt(suffix) +
                           "' (use K, M, G or T, powers of 1024)");
  }
  if (value > (std::numeric_limits<int64_t>::max() >> shift)) {
    return InvalidArgument(quoted + ": too large");
  }
  return value << shift;
}

std::string FormatBytes(int64_t bytes, ByteStyle style) {
  const bool fixed = style == ByteStyle::kOneDecimal;
  const char* units[] = {fixed ? "B" : "bytes", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  double v = static_cast<double>(bytes);
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[48];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%lld %s", static_cast<long long>(bytes), units[0]);
  } else if (!fixed && v == static_cast<double>(static_cast<int64_t>(v))) {
    std::snprintf(buf, sizeof buf, "%lld %s", static_cast<long long>(v), units[u]);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  }
  return buf;
}

}  // namespace ff
