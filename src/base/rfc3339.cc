#include "base/rfc3339.h"

#include <cstdio>

#include "base/text.h"

namespace ff {
namespace {

// Proleptic Gregorian calendar <-> days since 1970-01-01, after H. Hinnant's
// algorithms (http://howardhinnant.github.io/date_algorithms.html).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, int* m, int* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  *m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

int DaysInMonth(int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

}  // namespace

Result<int64_t> ParseRfc3339(std::string_view text) {
  auto bad = [&] {
    return InvalidArgument("'" + PrintableExcerpt(text) +
                           "' is not an RFC 3339 date-time like 2026-11-21T18:00:00Z");
  };
  // Every field has its fixed number of digits: no signs, no spaces.
  auto number = [&](size_t pos, size_t digits, int* out) {
    if (pos + digits > text.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + digits; ++i) {
      if (!IsDigit(text[i])) return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  auto at = [&](size_t pos, std::string_view chars) {
    return pos < text.size() && chars.find(text[pos]) != std::string_view::npos;
  };
  int y, mo, d, h, mi, sec;
  if (!number(0, 4, &y) || !at(4, "-") || !number(5, 2, &mo) || !at(7, "-") || !number(8, 2, &d) ||
      !at(10, "Tt ") || !number(11, 2, &h) || !at(13, ":") || !number(14, 2, &mi) || !at(16, ":") ||
      !number(17, 2, &sec)) {
    return bad();
  }
  size_t pos = 19;
  int64_t millis = 0;
  if (at(pos, ".")) {
    ++pos;
    int digits = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (digits < 3) millis = millis * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad();
    for (int i = digits; i < 3; ++i) millis *= 10;
  }
  int64_t offset_s = 0;
  int oh = 0, om = 0;
  if (at(pos, "Zz")) {
    ++pos;
  } else if (at(pos, "+-") && number(pos + 1, 2, &oh) && at(pos + 3, ":") &&
             number(pos + 4, 2, &om) && oh <= 23 && om <= 59) {
    offset_s = (oh * 3600 + om * 60) * (text[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != text.size() || mo < 1 || mo > 12 || d < 1 || d > DaysInMonth(y, mo) || h > 23 ||
      mi > 59 || sec > 60) {
    return bad();
  }
  const int64_t secs = DaysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_s;
  return secs * 1000 + millis;
}

std::string FormatRfc3339(int64_t unix_ms) {
  // Floor division: a time before 1970 is a negative day plus a positive part.
  int64_t secs = unix_ms / 1000;
  int64_t millis = unix_ms % 1000;
  if (millis < 0) {
    millis += 1000;
    --secs;
  }
  int64_t days = secs / 86400;
  int64_t in_day = secs % 86400;
  if (in_day < 0) {
    in_day += 86400;
    --days;
  }
  int64_t y;
  int m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d", static_cast<long long>(y), m, d,
                static_cast<int>(in_day / 3600), static_cast<int>(in_day / 60 % 60),
                static_cast<int>(in_day % 60));
  std::string out = buf;
  if (millis != 0) {
    std::snprintf(buf, sizeof buf, ".%03d", static_cast<int>(millis));
    out += buf;
  }
  return out + "Z";
}

}  // namespace ff
