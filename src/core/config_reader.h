// Typed reading of daemon config files (site.toml, host.toml) over toml++,
// with errors that name the file, line and key, and refusal of unknown keys
// (a typo in a config must not be silently ignored).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "base/status.h"

namespace toml {
inline namespace v3 {
class table;
}
}  // namespace toml

namespace ff {

// "5s", "250ms", "2m", or a bare number of seconds -> milliseconds.
Result<int64_t> ParseDurationMillis(const std::string& text);

// A view of one TOML table. Getters return std::nullopt for an absent key
// and an error for a present key of the wrong type or range. Finish()
// reports the first key that no getter asked for.
class ConfigTable {
 public:
  // Parses a whole file. The returned table owns the document.
  static Result<ConfigTable> ParseFile(const std::string& path);
  static Result<ConfigTable> ParseText(const std::string& text, const std::string& source);

  Result<std::optional<std::string>> GetString(const std::string& key);
  Result<std::optional<int64_t>> GetInt(const std::string& key, int64_t min, int64_t max);
  Result<std::optional<bool>> GetBool(const std::string& key);
  // A positive duration: a string or a number of seconds.
  Result<std::optional<int64_t>> GetDurationMillis(const std::string& key);
  // A byte size string ("2G") or a non-negative integer of bytes.
  Result<std::optional<int64_t>> GetBytes(const std::string& key);
  Result<std::optional<std::vector<std::string>>> GetStringArray(const std::string& key);
  // The same getters for the common case: when the key is present, its
  // value is stored in *out (converted to *out's type for ReadInt);
  // absent, *out keeps its default.
  Status ReadString(const std::string& key, std::string* out);
  Status ReadBool(const std::string& key, bool* out);
  Status ReadDurationMillis(const std::string& key, int64_t* out);
  Status ReadBytes(const std::string& key, int64_t* out);
  Status ReadStringArray(const std::string& key, std::vector<std::string>* out);
  template <typename T>
  Status ReadInt(const std::string& key, int64_t min, int64_t max, T* out) {
    FF_ASSIGN_OR_RETURN(auto v, GetInt(key, min, max));
    if (v) *out = static_cast<T>(*v);
    return Status::Ok();
  }

  // A sub-table; absent -> nullopt.
  Result<std::optional<ConfigTable>> GetTable(const std::string& key);
  // An array of tables ([[key]]); absent -> empty.
  Result<std::vector<ConfigTable>> GetTableArray(const std::string& key);

  // InvalidArgument naming the first unread key, if any.
  Status Finish() const;

  // Every key the file sets, as "table.key = value" sorted by key (nested
  // tables and arrays of tables included), for the daemon's start log. The
  // values of keys named in `secret_keys` read "(set, not shown)".
  std::vector<std::string> Settings(const std::set<std::string>& secret_keys) const;

  const std::string& source() const { return source_; }

  // InvalidArgument "<file>:<line>: <table.>key: <problem>", for checks a
  // getter cannot make (the line is left out when the key is absent).
  Status Error(const std::string& key, const std::string& problem) const;

 private:
  ConfigTable(std::shared_ptr<void> doc, const toml::table* table, std::string source,
              std::string prefix)
      : doc_(std::move(doc)),
        table_(table),
        source_(std::move(source)),
        prefix_(std::move(prefix)) {}

  std::shared_ptr<void> doc_;  // keeps the parsed document alive
  const toml::table* table_;
  std::string source_;
  std::string prefix_;  // "section." for nested tables
  std::set<std::string> read_;
};

}  // namespace ff
