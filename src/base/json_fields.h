// Reading fields of JSON documents that another process or site wrote
// (report.json, the I/O wrapper's report) without exceptions: each reader
// returns a Result whose error names the key. nlohmann's get<int64_t>() of a
// float or an out-of-range number is undefined behaviour; these check first.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "base/status.h"

namespace ff {

// An integer field of `obj` in [lo, hi]; `absent` when the key is missing, if
// given.
inline Result<int64_t> JsonInt(const nlohmann::json& obj, const char* key,
                               std::optional<int64_t> absent = std::nullopt,
                               int64_t lo = std::numeric_limits<int64_t>::min(),
                               int64_t hi = std::numeric_limits<int64_t>::max()) {
  if (!obj.is_object()) return InvalidArgument(std::string(key) + ": not in an object");
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (absent) return *absent;
    return InvalidArgument(std::string(key) + ": missing");
  }
  bool ok = it->is_number_integer();
  if (ok && it->is_number_unsigned()) {
    ok = it->get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  }
  const int64_t v = ok ? it->get<int64_t>() : 0;
  if (!ok || v < lo || v > hi) {
    return InvalidArgument(std::string(key) + ": not an integer in " + std::to_string(lo) + ".." +
                           std::to_string(hi));
  }
  return v;
}

// A string field of `obj`; `absent` when the key is missing, if given.
inline Result<std::string> JsonString(const nlohmann::json& obj, const char* key,
                                      std::optional<std::string> absent = std::nullopt) {
  if (!obj.is_object()) return InvalidArgument(std::string(key) + ": not in an object");
  auto it = obj.find(key);
  if (it == obj.end()) {
    if (absent) return *std::move(absent);
    return InvalidArgument(std::string(key) + ": missing");
  }
  if (!it->is_string()) return InvalidArgument(std::string(key) + ": not a string");
  return it->get<std::string>();
}

// An array field of `obj` (an empty array when missing).
inline Result<const nlohmann::json*> JsonArray(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  if (!obj.is_object()) return InvalidArgument(std::string(key) + ": not in an object");
  auto it = obj.find(key);
  if (it == obj.end()) return &kEmpty;
  if (!it->is_array()) return InvalidArgument(std::string(key) + ": not an array");
  return &*it;
}

}  // namespace ff
