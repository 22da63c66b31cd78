// Small ASCII text helpers shared by the parsers in core (locale-free:
// descriptions and frame sets are ASCII syntax whatever the user's locale).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>

namespace ff {

inline bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// `s` without leading and trailing whitespace.
inline std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// True when `inner` is the path `outer` or lies beneath it ("/a/b" is
// beneath "/a", "/ab" is not). Both normalised; "/" holds everything.
inline bool PathWithin(std::string_view inner, std::string_view outer) {
  if (outer == "/") return true;
  return inner == outer || (inner.size() > outer.size() && inner.substr(0, outer.size()) == outer &&
                            inner[outer.size()] == '/');
}

// Text safe to quote in an error message: control bytes become \xNN, and
// text longer than `max` characters is cut there and ends with
// "… (N characters)" so a huge bad value does not flood the terminal or log.
inline std::string PrintableExcerpt(std::string_view s, size_t max = 80) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  size_t cut = std::min(max, s.size());
  // Not inside a UTF-8 sequence.
  while (cut > 0 && cut < s.size() && (static_cast<unsigned char>(s[cut]) & 0xc0) == 0x80) --cut;
  for (char c : s.substr(0, cut)) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  if (s.size() > max) out += "… (" + std::to_string(s.size()) + " characters)";
  return out;
}

// Render server and slot names become slot ids ("<server>/<slot>"), file
// names, log lines and `hosts` rows.
constexpr size_t kMaxServerNameLength = 64;

// Why `name` is not a valid render server or slot name, or nullptr when it
// is: 1 to kMaxServerNameLength printable ASCII characters, no '/'.
inline const char* ServerNameProblem(std::string_view name) {
  if (name.empty()) return "must not be empty";
  if (name.size() > kMaxServerNameLength) return "must be at most 64 characters";
  for (char c : name) {
    if (c == '/') return "must not contain '/'";
    if (c < 0x20 || c > 0x7e) return "must be printable ASCII (no control characters)";
  }
  return nullptr;
}

}  // namespace ff
