#include "core/config_reader.h"

#include <toml++/toml.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/job_profile.h"

namespace ff {

namespace {
// Far beyond any sensible timeout, and safely convertible to int64_t.
constexpr double kMaxDurationMillis = 1e15;
}  // namespace

Result<int64_t> ParseDurationMillis(const std::string& text) {
  if (text.empty()) return InvalidArgument("duration is empty");
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  if (i == 0) return InvalidArgument("duration '" + text + "' does not start with a number");
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(text.substr(0, i), &used);
    if (used != i) throw std::invalid_argument("trailing characters");
  } catch (...) {
    return InvalidArgument("duration '" + text + "' is not a number");
  }
  std::string unit = text.substr(i);
  double factor = 0;
  if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "ms") {
    factor = 1;
  } else if (unit == "m") {
    factor = 60'000;
  } else if (unit == "h") {
    factor = 3'600'000;
  } else {
    return InvalidArgument("duration '" + text + "' has unknown unit '" + unit +
                           "' (use ms, s, m or h)");
  }
  if (!(value * factor < kMaxDurationMillis)) {
    return InvalidArgument("duration '" + text + "' is too long");
  }
  return static_cast<int64_t>(value * factor);
}

namespace {
int LineOf(const toml::node& n) { return static_cast<int>(n.source().begin.line); }
}  // namespace

Result<ConfigTable> ConfigTable::ParseText(const std::string& text, const std::string& source) {
  auto doc = std::make_shared<toml::table>();
  try {
    *doc = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return InvalidArgument(source + ":" + std::to_string(e.source().begin.line) + ":" +
                           std::to_string(e.source().begin.column) + ": " +
                           std::string(e.description()));
  }
  const toml::table* t = doc.get();
  return ConfigTable(std::static_pointer_cast<void>(doc), t, source, "");
}

Result<ConfigTable> ConfigTable::ParseFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return NotFound("config file '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  return ParseText(ss.str(), path);
}

Status ConfigTable::Error(const std::string& key, const std::string& problem) const {
  const toml::node* n = table_->get(key);
  std::string where = source_;
  if (n) where += ":" + std::to_string(LineOf(*n));
  return InvalidArgument(where + ": " + prefix_ + key + ": " + problem);
}

Result<std::optional<std::string>> ConfigTable::GetString(const std::string& key) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<std::string>();
  if (!n->is_string()) return Error(key, "must be a string");
  return std::optional<std::string>(std::string(*n->value<std::string_view>()));
}

Result<std::optional<int64_t>> ConfigTable::GetInt(const std::string& key, int64_t min,
                                                   int64_t max) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<int64_t>();
  if (!n->is_integer()) return Error(key, "must be an integer");
  int64_t v = *n->value<int64_t>();
  if (v < min || v > max) {
    return Error(key, "must be between " + std::to_string(min) + " and " + std::to_string(max) +
                          ", got " + std::to_string(v));
  }
  return std::optional<int64_t>(v);
}

Result<std::optional<bool>> ConfigTable::GetBool(const std::string& key) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<bool>();
  if (!n->is_boolean()) return Error(key, "must be true or false");
  return std::optional<bool>(*n->value<bool>());
}

Result<std::optional<int64_t>> ConfigTable::GetDurationMillis(const std::string& key) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<int64_t>();
  int64_t ms = 0;
  if (n->is_integer() || n->is_floating_point()) {
    // A number of seconds. Integers go through double too, so the checks see
    // the value before it could overflow (and NaN fails them).
    double v = n->is_integer() ? static_cast<double>(*n->value<int64_t>()) : *n->value<double>();
    if (!(v > 0)) return Error(key, "must be positive");
    if (!(v * 1000 < kMaxDurationMillis)) return Error(key, "is too long");
    ms = static_cast<int64_t>(v * 1000);
  } else if (n->is_string()) {
    auto d = ParseDurationMillis(std::string(*n->value<std::string_view>()));
    if (!d.ok()) return Error(key, d.status().message());
    ms = *d;
  } else {
    return Error(key, "must be a duration such as \"5s\" or \"250ms\"");
  }
  if (ms <= 0) return Error(key, "must be positive");
  return std::optional<int64_t>(ms);
}

Result<std::optional<int64_t>> ConfigTable::GetBytes(const std::string& key) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<int64_t>();
  if (n->is_integer()) {
    int64_t v = *n->value<int64_t>();
    if (v < 0) return Error(key, "must be >= 0 bytes, got " + std::to_string(v));
    return std::optional<int64_t>(v);
  }
  if (!n->is_string()) return Error(key, "must be a size such as \"2G\" or a number of bytes");
  auto b = ParseByteSize(*n->value<std::string_view>());
  if (!b.ok()) return Error(key, b.status().message());
  return std::optional<int64_t>(*b);
}

Result<std::optional<std::vector<std::string>>> ConfigTable::GetStringArray(
    const std::string& key) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<std::vector<std::string>>();
  const toml::array* arr = n->as_array();
  if (!arr) return Error(key, "must be an array of strings");
  std::vector<std::string> out;
  for (const auto& e : *arr) {
    if (!e.is_string()) return Error(key, "must be an array of strings");
    out.emplace_back(*e.value<std::string_view>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<ConfigTable>> ConfigTable::GetTable(const std::string& key) {
  read_.insert(key);
  const toml::node* n = table_->get(key);
  if (!n) return std::optional<ConfigTable>();
  const toml::table* t = n->as_table();
  if (!t) return Error(key, "must be a table ([" + prefix_ + key + "])");
  return std::optional<ConfigTable>(ConfigTable(doc_, t, source_, prefix_ + key + "."));
}

Result<std::vector<ConfigTable>> ConfigTable::GetTableArray(const std::string& key) {
  read_.insert(key);
  std::vector<ConfigTable> out;
  const toml::node* n = table_->get(key);
  if (!n) return out;
  const toml::array* arr = n->as_array();
  if (!arr) return Error(key, "must be an array of tables ([[" + prefix_ + key + "]])");
  for (size_t i = 0; i < arr->size(); ++i) {
    const toml::table* t = (*arr)[i].as_table();
    if (!t) return Error(key, "must be an array of tables ([[" + prefix_ + key + "]])");
    out.push_back(ConfigTable(doc_, t, source_, prefix_ + key + "[" + std::to_string(i) + "]."));
  }
  return out;
}

namespace {

template <typename T>
Status Store(Result<std::optional<T>> got, T* out) {
  if (!got.ok()) return got.status();
  if (got->has_value()) *out = std::move(**got);
  return Status::Ok();
}

}  // namespace

Status ConfigTable::ReadString(const std::string& key, std::string* out) {
  return Store(GetString(key), out);
}
Status ConfigTable::ReadBool(const std::string& key, bool* out) { return Store(GetBool(key), out); }
Status ConfigTable::ReadDurationMillis(const std::string& key, int64_t* out) {
  return Store(GetDurationMillis(key), out);
}
Status ConfigTable::ReadBytes(const std::string& key, int64_t* out) {
  return Store(GetBytes(key), out);
}
Status ConfigTable::ReadStringArray(const std::string& key, std::vector<std::string>* out) {
  return Store(GetStringArray(key), out);
}

Status ConfigTable::Finish() const {
  for (const auto& [k, v] : *table_) {
    std::string key(k.str());
    if (!read_.count(key)) {
      return InvalidArgument(source_ + ":" + std::to_string(LineOf(v)) + ": " + prefix_ + key +
                             ": unknown key");
    }
  }
  return Status::Ok();
}

namespace {

void CollectSettings(const toml::table& t, const std::string& prefix,
                     const std::set<std::string>& secret_keys, std::vector<std::string>* out) {
  for (const auto& [k, v] : t) {
    const std::string key = prefix + std::string(k.str());
    if (const toml::table* sub = v.as_table()) {
      CollectSettings(*sub, key + ".", secret_keys, out);
      continue;
    }
    if (const toml::array* arr = v.as_array(); arr && arr->is_array_of_tables()) {
      for (size_t i = 0; i < arr->size(); ++i) {
        CollectSettings(*(*arr)[i].as_table(), key + "[" + std::to_string(i) + "].", secret_keys,
                        out);
      }
      continue;
    }
    if (secret_keys.count(std::string(k.str()))) {
      out->push_back(key + " = (set, not shown)");
      continue;
    }
    std::ostringstream os;
    v.visit([&os](const auto& node) { os << node; });
    out->push_back(key + " = " + os.str());
  }
}

}  // namespace

std::vector<std::string> ConfigTable::Settings(const std::set<std::string>& secret_keys) const {
  std::vector<std::string> out;
  CollectSettings(*table_, prefix_, secret_keys, &out);
  return out;
}

}  // namespace ff
