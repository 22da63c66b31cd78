// Small ASCII text helpers shared by the parsers in core (locale-free:
// descriptions and frame sets are ASCII syntax whatever the user's locale).
#pragma once

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

}  // namespace ff
