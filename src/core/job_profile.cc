// Parsing and validating job descriptions (job_profile.h).
//
// Long because it is the one reader of the description format: every key's
// check sits next to the error that names it, and the format's rules (frame
// sets, paths, central paths, notify targets, requirements) are kept in one
// place so Submit, ValidateJob and the CLI cannot disagree.
#include "core/job_profile.h"

#include <toml++/toml.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <limits>
#include <optional>
#include <set>
#include <utility>

#include "base/text.h"

namespace ff {
namespace {

constexpr int kMaxNameLength = 64;
// 10000-01-01T00:00:00Z in unix ms: deadlines are before it.
constexpr int64_t kEndOfYear9999Ms = 253'402'300'800'000;

// Text safe to quote in an error message: control bytes become \xNN; a long
// value is cut to 80 characters plus its length.
std::string Printable(std::string_view s) { return PrintableExcerpt(s); }

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

uint32_t LineOf(const toml::node& n) { return n.source().begin.line; }
uint32_t LineOf(const toml::key& k) { return k.source().begin.line; }

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '.' || c == '_' ||
         c == '-';
}

// Collects validation errors and keeps the one to report: the earliest in
// the document, except that a missing required key ranks after every other
// problem (a misspelt key is reported as unknown, not as missing). Line 0 =
// unknown, reported without a line after the located errors of its kind.
class Errors {
 public:
  explicit Errors(const std::string& source) : source_(source) {}

  void Add(uint32_t line, const std::string& path, const std::string& problem) {
    AddMessage(line, path + ": " + problem);
  }
  // `message` already starts with the key path.
  void AddMessage(uint32_t line, const std::string& message) { Keep(0, line, message); }
  void AddMissing(uint32_t line, const std::string& path,
                  const std::string& problem = "is required") {
    Keep(1, line, path + ": " + problem);
  }

  bool any() const { return any_; }
  Status status() const { return InvalidArgument(message_); }

 private:
  void Keep(uint64_t tier, uint32_t line, const std::string& message) {
    const uint64_t rank = (tier << 33) | (line == 0 ? uint64_t{1} << 32 : line);
    if (any_ && rank >= rank_) return;
    any_ = true;
    rank_ = rank;
    message_ = source_;
    if (line != 0) {
      message_ += ':';
      message_ += std::to_string(line);
    }
    message_ += ": ";
    message_ += message;
  }

  const std::string& source_;
  bool any_ = false;
  uint64_t rank_ = 0;
  std::string message_;
};

// Reads and validates the parsed TOML document into a JobProfile.
class DescriptionReader {
 public:
  explicit DescriptionReader(const std::string& source) : errors_(source) {}

  Result<JobProfile> Read(const toml::table& root) {
    bool have_name = false, have_frames = false;
    bool have_placement_ok = true;
    uint32_t remote_site_line = 0;
    const toml::table* package = nullptr;
    const toml::table* render = nullptr;
    for (auto&& [key, node] : root) {
      const std::string k(key.str());
      if (k == "name") {
        if (auto s = String(node, k)) {
          have_name = true;
          if (!ValidName(*s)) {
            errors_.Add(LineOf(node), k,
                        "must be 1 to " + std::to_string(kMaxNameLength) +
                            " characters from A-Z a-z 0-9 . _ -, got '" + Printable(*s) + "'");
          }
          p_.name = std::move(*s);
        }
      } else if (k == "priority") {
        if (auto v = Int(node, k, 0, 100)) p_.priority = static_cast<int>(*v);
      } else if (k == "placement") {
        have_placement_ok = false;
        if (auto s = String(node, k)) {
          if (*s == "local") {
            p_.placement = Placement::kLocal;
          } else if (*s == "remote") {
            p_.placement = Placement::kRemote;
          } else if (*s == "auto") {
            p_.placement = Placement::kAuto;
          } else {
            errors_.Add(LineOf(node), k,
                        "must be one of local, remote, auto, got '" + Printable(*s) + "'");
            continue;
          }
          have_placement_ok = true;
        }
      } else if (k == "remote_site") {
        if (auto s = String(node, k)) {
          if (Trim(*s).empty()) errors_.Add(LineOf(node), k, "must not be empty");
          remote_site_line = LineOf(node);
          p_.remote_site = std::move(*s);
        }
      } else if (k == "deadline") {
        std::optional<Result<int64_t>> ms;
        if (auto* dt = node.as_date_time()) {
          const toml::date_time& v = dt->get();
          if (!v.offset) {
            errors_.Add(LineOf(node), k, "needs a time zone offset (e.g. Z or +01:00)");
          } else {
            // The same checks as a string deadline: print it as RFC 3339.
            const int offset = v.offset->minutes;
            char buf[64];
            std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d",
                          int(v.date.year), int(v.date.month), int(v.date.day), int(v.time.hour),
                          int(v.time.minute), int(v.time.second),
                          int(v.time.nanosecond / 1'000'000), offset < 0 ? '-' : '+',
                          std::abs(offset) / 60, std::abs(offset) % 60);
            ms = ParseRfc3339(buf);
          }
        } else if (auto s = String(node, k)) {
          ms = ParseRfc3339(*s);
        }
        if (ms && !ms->ok()) {
          errors_.Add(LineOf(node), k, ms->status().message());
        } else if (ms && (**ms <= 0 || **ms >= kEndOfYear9999Ms)) {
          // 0 means "no deadline"; later than year 9999 cannot be written
          // back (ProfileToToml).
          errors_.Add(LineOf(node), k,
                      "must be after 1970-01-01T00:00:00Z and before year 10000 (UTC)");
        } else if (ms) {
          p_.deadline_ms = **ms;
        }
      } else if (k == "frames") {
        if (auto s = String(node, k)) {
          have_frames = true;
          auto frames = FrameSet::Parse(*s);
          if (frames.ok()) {
            p_.frames = std::move(frames).value();
          } else {
            errors_.Add(LineOf(node), k, frames.status().message());
          }
        }
      } else if (k == "chunk_size") {
        if (auto* str = node.as_string()) {
          if (str->get() == "auto") {
            p_.chunk_size = JobProfile::kAutoChunkSize;
          } else {
            errors_.Add(LineOf(node), k,
                        "expected an integer or \"auto\", got '" + Printable(str->get()) + "'");
          }
        } else if (!node.as_integer()) {
          errors_.Add(LineOf(node), k,
                      std::string("expected an integer or \"auto\", got ") + TypeName(node));
        } else if (auto v = Int(node, k, 1, 100'000)) {
          p_.chunk_size = static_cast<int>(*v);
        }
      } else if (k == "max_attempts") {
        if (auto* i = node.as_integer(); i && i->get() == 0) {
          p_.max_attempts = 0;  // explicit "site default"
        } else if (auto v = Int(node, k, 1, 100, " (or 0 for the site default)")) {
          p_.max_attempts = static_cast<int>(*v);
        }
      } else if (k == "package") {
        if ((package = Table(node, k))) ReadPackage(*package);
      } else if (k == "render") {
        if ((render = Table(node, k))) ReadRender(*render);
      } else if (k == "requirements") {
        if (auto* t = Table(node, k)) ReadRequirements(*t);
      } else if (k == "files") {
        ReadFiles(node, k);
      } else if (k == "notify") {
        ReadNotify(node);
      } else if (k == "central") {
        ReadCentral(node);
      } else {
        errors_.Add(LineOf(key), Printable(k), "unknown key");
      }
    }
    if (!have_name) errors_.AddMissing(0, "name");
    if (!have_frames) errors_.AddMissing(0, "frames");
    if (!package) errors_.AddMissing(0, "package.name");
    if (!render) errors_.AddMissing(0, "render.scene");
    // Only the built-in image renderers must write frames; a command-template
    // package may run a job whose chunks produce no files.
    if (!have_output_ && PackageNeedsOutput(p_.package)) {
      errors_.AddMissing(render ? LineOf(*render) : 0, "render.output",
                         "is required for package '" + p_.package +
                             "' (it renders image frames); only command-template packages may "
                             "omit it");
    }
    CheckCentral();
    if (animation_line_ != 0 && have_frames && !p_.frames.empty() &&
        (p_.frames.first() < p_.animation_first || p_.frames.last() > p_.animation_last)) {
      errors_.Add(animation_line_, "render.animation",
                  "the job's frames " + std::to_string(p_.frames.first()) + ".." +
                      std::to_string(p_.frames.last()) + " are not all inside the animation " +
                      std::to_string(p_.animation_first) + "-" + std::to_string(p_.animation_last));
    }
    if (remote_site_line != 0 && have_placement_ok && p_.placement != Placement::kRemote) {
      errors_.Add(remote_site_line, "remote_site",
                  std::string("is only allowed with placement = \"remote\", placement is \"") +
                      PlacementName(p_.placement) + "\"");
    }
    if (errors_.any()) return errors_.status();
    return std::move(p_);
  }

 private:
  static bool ValidName(const std::string& s) {
    if (s.empty() || s.size() > kMaxNameLength) return false;
    for (char c : s) {
      if (!IsNameChar(c)) return false;
    }
    return true;
  }

  std::optional<std::string> String(const toml::node& n, const std::string& path) {
    if (auto* s = n.as_string()) return s->get();
    errors_.Add(LineOf(n), path, std::string("expected a string, got ") + TypeName(n));
    return std::nullopt;
  }

  std::optional<int64_t> Int(const toml::node& n, const std::string& path, int64_t lo, int64_t hi,
                             const char* range_note = "") {
    auto* i = n.as_integer();
    if (!i) {
      errors_.Add(LineOf(n), path, std::string("expected an integer, got ") + TypeName(n));
      return std::nullopt;
    }
    const int64_t v = i->get();
    if (v < lo || v > hi) {
      errors_.Add(LineOf(n), path,
                  "must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                      range_note + ", got " + std::to_string(v));
      return std::nullopt;
    }
    return v;
  }

  const toml::table* Table(const toml::node& n, const std::string& path) {
    if (auto* t = n.as_table()) return t;
    errors_.Add(LineOf(n), path, std::string("expected a table, got ") + TypeName(n));
    return nullptr;
  }

  // Array of strings; each element's line is kept for later errors.
  std::optional<std::vector<std::pair<std::string, uint32_t>>> StringArray(
      const toml::node& n, const std::string& path) {
    auto* a = n.as_array();
    if (!a) {
      errors_.Add(LineOf(n), path, std::string("expected an array of strings, got ") + TypeName(n));
      return std::nullopt;
    }
    std::vector<std::pair<std::string, uint32_t>> out;
    bool ok = true;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string epath = path + "[" + std::to_string(i) + "]";
      if (auto s = String(e, epath)) {
        out.emplace_back(std::move(*s), LineOf(e));
      } else {
        ok = false;
      }
    }
    if (!ok) return std::nullopt;
    return out;
  }

  // Path keys: scene, output, files. Returns "" after reporting an error.
  std::string JobPath(const std::string& text, uint32_t line, const std::string& path) {
    auto r = NormaliseJobPath(text, path);
    if (r.ok()) return std::move(r).value();
    errors_.AddMessage(line, r.status().message());
    return "";
  }

  void UnknownKey(const toml::key& key, const std::string& table_path) {
    errors_.Add(LineOf(key), table_path + "." + Printable(key.str()), "unknown key");
  }

  void ReadPackage(const toml::table& t) {
    bool have_name = false;
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      const std::string path = "package." + k;
      if (k == "name") {
        if (auto s = String(node, path)) {
          have_name = true;
          std::string lower;
          bool ok = !s->empty();
          for (char c : *s) {
            if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
            if (!((c >= 'a' && c <= 'z') || IsDigit(c) || c == '.' || c == '_' || c == '-')) {
              ok = false;
            }
            lower += c;
          }
          if (!ok) {
            errors_.Add(
                LineOf(node), path,
                "must be one or more characters from a-z 0-9 . _ -, got '" + Printable(*s) + "'");
          }
          p_.package = std::move(lower);
        }
      } else if (k == "version") {
        if (auto s = String(node, path)) {
          auto c = VersionConstraint::Parse(*s);
          if (c.ok()) {
            p_.package_version = std::move(c).value();
          } else {
            errors_.Add(LineOf(node), path, c.status().message());
          }
        }
      } else {
        UnknownKey(key, "package");
      }
    }
    if (!have_name) errors_.AddMissing(LineOf(t), "package.name");
  }

  void ReadRender(const toml::table& t) {
    bool have_scene = false;
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      const std::string path = "render." + k;
      if (k == "scene") {
        if (auto s = String(node, path)) {
          have_scene = true;
          p_.scene = JobPath(*s, LineOf(node), path);
        }
      } else if (k == "width") {
        if (auto v = Int(node, path, 1, 65536)) p_.width = static_cast<int>(*v);
      } else if (k == "height") {
        if (auto v = Int(node, path, 1, 65536)) p_.height = static_cast<int>(*v);
      } else if (k == "output") {
        if (auto s = String(node, path)) {
          have_output_ = true;
          p_.output = !s->empty() && (*s)[0] == '/' ? CentralOutput(*s, LineOf(node), path)
                                                    : JobPath(*s, LineOf(node), path);
          if (!p_.output.empty() && p_.output.find('#') == std::string::npos) {
            errors_.Add(LineOf(node), path,
                        "must contain at least one '#' (replaced by the frame number), got '" +
                            Printable(*s) + "'");
          }
        }
      } else if (k == "animation") {
        if (auto s = String(node, path)) {
          auto range = FrameSet::Parse(*s);
          if (!range.ok()) {
            errors_.Add(LineOf(node), path, range.status().message());
          } else if (range->size() != static_cast<size_t>(range->last() - range->first() + 1)) {
            errors_.Add(
                LineOf(node), path,
                "must be one range of consecutive frames (\"1-240\"), got '" + Printable(*s) + "'");
          } else {
            p_.animation_first = range->first();
            p_.animation_last = range->last();
            animation_line_ = LineOf(node);
          }
        }
      } else if (k == "args") {
        if (auto items = StringArray(node, path)) {
          for (auto& [s, line] : *items) p_.args.push_back(std::move(s));
        }
      } else {
        UnknownKey(key, "render");
      }
    }
    if (!have_scene) errors_.AddMissing(LineOf(t), "render.scene");
  }

  void ReadRequirements(const toml::table& t) {
    for (auto&& [key, node] : t) {
      const std::string k(key.str());
      const std::string path = "requirements." + k;
      if (k == "cores") {
        if (auto v = Int(node, path, 1, 4096)) p_.requirements.cores = static_cast<int>(*v);
      } else if (k == "memory") {
        ReadMemory(node, path);
      } else if (k == "gpus") {
        if (auto v = Int(node, path, 0, 64)) p_.requirements.gpus = static_cast<int>(*v);
      } else if (k == "files") {
        // Accepted here too: a `files` line written after [requirements]
        // lands in this table by TOML's rules.
        ReadFiles(node, path);
      } else {
        UnknownKey(key, "requirements");
      }
    }
  }

  void ReadMemory(const toml::node& node, const std::string& path) {
    if (auto* i = node.as_integer()) {
      if (i->get() < 0) {
        errors_.Add(LineOf(node), path, "must be >= 0 bytes, got " + std::to_string(i->get()));
      } else {
        p_.requirements.memory_bytes = i->get();
      }
    } else if (auto* s = node.as_string()) {
      auto bytes = ParseByteSize(s->get());
      if (bytes.ok()) {
        p_.requirements.memory_bytes = *bytes;
      } else {
        errors_.Add(LineOf(node), path, bytes.status().message());
      }
    } else {
      errors_.Add(LineOf(node), path,
                  std::string("expected a string such as \"512M\" or an integer number of bytes, "
                              "got ") +
                      TypeName(node));
    }
  }

  void ReadFiles(const toml::node& node, const std::string& path) {
    if (files_line_ != 0) {
      errors_.Add(LineOf(node), path,
                  "associated files are already given at line " + std::to_string(files_line_) +
                      "; list them once");
      return;
    }
    files_line_ = LineOf(node);
    auto items = StringArray(node, path);
    if (!items) return;
    std::set<std::string> seen;
    for (size_t i = 0; i < items->size(); ++i) {
      const auto& [text, line] = (*items)[i];
      std::string f = JobPath(text, line, path + "[" + std::to_string(i) + "]");
      if (!f.empty() && seen.insert(f).second) p_.files.push_back(std::move(f));
    }
  }

  // An absolute central path: normalised, at least two components, outside
  // the paths the I/O wrapper provides itself. Returns "" after an error.
  std::string CentralDir(const std::string& text, uint32_t line, const std::string& path) {
    auto r = NormaliseCentralPath(text, path);
    if (r.ok()) return std::move(r).value();
    errors_.AddMessage(line, r.status().message());
    return "";
  }

  std::string CentralOutput(const std::string& text, uint32_t line, const std::string& path) {
    std::string out = CentralDir(text, line, path);
    if (out.empty()) return "";
    const std::string dir = out.substr(0, out.rfind('/'));
    if (dir.find('#') != std::string::npos || dir.find('/', 1) == std::string::npos) {
      errors_.Add(line, path,
                  "an absolute output must be a file in a central directory, with '#' only in "
                  "the file name (e.g. \"/studio/renders/shot/shot_####.png\"), got '" +
                      Printable(text) + "'");
      return "";
    }
    output_line_ = line;
    return out;
  }

  void ReadCentral(const toml::node& node) {
    auto* a = node.as_array();
    if (!a) {
      errors_.Add(LineOf(node), "central",
                  std::string("expected an array of tables ([[central]]), got ") + TypeName(node));
      return;
    }
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string prefix = "central[" + std::to_string(i) + "]";
      const toml::table* t = Table(e, prefix);
      if (!t) continue;
      CentralPath c;
      for (auto&& [key, value] : *t) {
        const std::string k(key.str());
        const std::string path = prefix + "." + k;
        if (k == "path") {
          if (auto s = String(value, path)) c.path = CentralDir(*s, LineOf(value), path);
        } else if (k == "source") {
          if (auto s = String(value, path)) {
            // "." stands for the whole job directory.
            c.source = *s == "." ? "." : JobPath(*s, LineOf(value), path);
          }
        } else {
          UnknownKey(key, prefix);
        }
      }
      if (t->get("path") == nullptr) errors_.AddMissing(LineOf(*t), prefix + ".path");
      if (t->get("source") == nullptr) errors_.AddMissing(LineOf(*t), prefix + ".source");
      central_lines_.push_back(LineOf(*t));
      p_.central.push_back(std::move(c));
    }
  }

  // Central paths may not nest in one another or in the output directory,
  // and each must stand for files the job sends.
  void CheckCentral() {
    const std::string out_dir = p_.OutputCentralDir();
    const std::vector<std::string> files = p_.AllFiles();
    for (size_t i = 0; i < p_.central.size(); ++i) {
      const CentralPath& c = p_.central[i];
      const std::string prefix = "central[" + std::to_string(i) + "]";
      if (c.path.empty() || c.source.empty()) continue;
      for (size_t j = 0; j < i; ++j) {
        if (PathWithin(c.path, p_.central[j].path) || PathWithin(p_.central[j].path, c.path)) {
          errors_.Add(central_lines_[i], prefix + ".path",
                      "'" + c.path + "' overlaps central[" + std::to_string(j) + "].path '" +
                          p_.central[j].path + "'");
        }
      }
      if (!out_dir.empty() && (PathWithin(c.path, out_dir) || PathWithin(out_dir, c.path))) {
        errors_.Add(
            central_lines_[i], prefix + ".path",
            "'" + c.path + "' overlaps the output directory '" + out_dir + "' (render.output)");
      }
      bool any = false;
      for (const auto& f : files) any = any || c.source == "." || PathWithin(f, c.source);
      if (!any) {
        errors_.Add(central_lines_[i], prefix + ".source",
                    "no file of the job is under '" + c.source +
                        "' (list the files it stands for in files)");
      }
    }
  }

  void ReadNotify(const toml::node& node) {
    auto* a = node.as_array();
    if (!a) {
      errors_.Add(LineOf(node), "notify",
                  std::string("expected an array of tables ([[notify]]), got ") + TypeName(node));
      return;
    }
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      const std::string prefix = "notify[" + std::to_string(i) + "]";
      const toml::table* t = Table(e, prefix);
      if (!t) continue;
      NotifyTarget target;
      bool have_any = false;
      for (auto&& [key, value] : *t) {
        const std::string k(key.str());
        const std::string path = prefix + "." + k;
        if (k == "webhook") {
          if (auto s = String(value, path)) {
            have_any = true;
            if (!ValidWebhook(*s)) {
              errors_.Add(
                  LineOf(value), path,
                  "must be an http:// or https:// URL without spaces, got '" + Printable(*s) + "'");
            }
            target.webhook = std::move(*s);
          }
        } else if (k == "command") {
          if (auto s = String(value, path)) {
            have_any = true;
            if (Trim(*s).empty()) errors_.Add(LineOf(value), path, "must not be empty");
            target.command = std::move(*s);
          }
        } else {
          UnknownKey(key, prefix);
        }
      }
      if (!have_any) errors_.AddMissing(LineOf(*t), prefix, "needs a webhook or a command");
      p_.notify.push_back(std::move(target));
    }
  }

  static bool ValidWebhook(std::string_view url) {
    size_t scheme = 0;
    if (url.substr(0, 7) == "http://") {
      scheme = 7;
    } else if (url.substr(0, 8) == "https://") {
      scheme = 8;
    } else {
      return false;
    }
    if (url.size() == scheme) return false;
    for (char c : url) {
      const auto u = static_cast<unsigned char>(c);
      if (u <= 0x20 || u == 0x7f) return false;
    }
    return true;
  }

  Errors errors_;
  JobProfile p_;
  uint32_t files_line_ = 0;
  // render.output was given (even if invalid: that error is reported instead).
  bool have_output_ = false;
  uint32_t animation_line_ = 0;  // line of render.animation, 0 when absent
  uint32_t output_line_ = 0;
  std::vector<uint32_t> central_lines_;
};

// TOML basic string with every character that needs it escaped.
std::string Quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out += "\\u00";
          out += kHex[u >> 4];
          out += kHex[u & 0xf];
        } else {
          out += c;
        }
    }
  }
  out += '"';
  return out;
}

std::string QuoteArray(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ", ";
    out += Quote(items[i]);
  }
  return out + "]";
}

}  // namespace

bool PackageNeedsOutput(std::string_view package) {
  return package == "povray" || package == "blender";
}

const char* PlacementName(Placement p) {
  switch (p) {
    case Placement::kLocal:
      return "local";
    case Placement::kRemote:
      return "remote";
    case Placement::kAuto:
      return "auto";
  }
  return "unknown";
}

std::vector<std::string> JobProfile::AllFiles() const {
  std::vector<std::string> out;
  std::set<std::string> seen;
  if (!scene.empty() && seen.insert(scene).second) out.push_back(scene);
  for (const std::string& f : files) {
    if (seen.insert(f).second) out.push_back(f);
  }
  return out;
}

std::string JobProfile::OutputCentralDir() const {
  if (!OutputIsCentral()) return "";
  return output.substr(0, output.rfind('/'));
}

std::string JobProfile::OutputPattern() const {
  return OutputIsCentral() ? output.substr(output.rfind('/') + 1) : output;
}

std::string JobProfile::OutputName(int64_t frame) const {
  const std::string output = OutputPattern();
  const bool negative = frame < 0;
  const uint64_t magnitude =
      negative ? uint64_t{0} - static_cast<uint64_t>(frame) : static_cast<uint64_t>(frame);
  const std::string digits = std::to_string(magnitude);
  std::string out;
  size_t i = 0;
  while (i < output.size()) {
    if (output[i] != '#') {
      out += output[i++];
      continue;
    }
    size_t j = i;
    while (j < output.size() && output[j] == '#') ++j;
    const size_t width = j - i;
    if (negative) out += '-';
    if (digits.size() < width) out.append(width - digits.size(), '0');
    out += digits;
    i = j;
  }
  return out;
}

Result<JobProfile> ParseJobDescription(std::string_view toml_text, const std::string& source_name) {
  toml::table root;
  try {
    root = toml::parse(toml_text, std::string_view(source_name));
  } catch (const toml::parse_error& err) {
    const toml::source_position& at = err.source().begin;
    return InvalidArgument(source_name + ":" + std::to_string(at.line) + ":" +
                           std::to_string(at.column) + ": " + std::string(err.description()));
  } catch (const std::exception& err) {
    return Internal(source_name + ": cannot parse the job description: " + err.what());
  }
  return DescriptionReader(source_name).Read(root);
}

Result<std::string> NormaliseJobPath(std::string_view path, const std::string& field) {
  const std::string quoted = "path '" + Printable(path) + "'";
  auto fail = [&](const std::string& problem) { return InvalidArgument(field + ": " + problem); };
  if (path.empty()) return fail("path is empty");
  if (path.find('\0') != std::string_view::npos) return fail(quoted + " contains a NUL byte");
  if (path.front() == '/') {
    return fail(quoted + " is absolute; job paths are relative to the job directory");
  }
  std::string out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    const std::string_view part = path.substr(start, slash - start);
    if (part == "..") {
      return fail(quoted + " contains '..'; job paths may not leave the job directory");
    }
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = slash + 1;
  }
  if (out.empty()) return fail(quoted + " names no file");
  return out;
}

Result<std::string> NormaliseCentralPath(std::string_view path, const std::string& field) {
  const std::string quoted = "central path '" + Printable(path) + "'";
  auto fail = [&](const std::string& problem) { return InvalidArgument(field + ": " + problem); };
  if (path.empty() || path.front() != '/') return fail(quoted + " must be absolute");
  auto rel = NormaliseJobPath(path.substr(1), field);
  if (!rel.ok()) return fail(quoted + " is not a clean path (no '..', no empty name)");
  if (path.find("/..") != std::string_view::npos) return fail(quoted + " contains '..'");
  const std::string out = "/" + *rel;
  // The I/O wrapper provides these itself; a central path there would hide
  // the renderer's own view of the system.
  static const char* const kReserved[] = {"/usr",    "/etc", "/proc", "/dev", "/tmp",   "/job",
                                          "/out",    "/bin", "/sbin", "/lib", "/lib32", "/lib64",
                                          "/libx32", "/sys", "/run",  "/var", "/root"};
  for (const char* r : kReserved) {
    if (PathWithin(out, r)) {
      return fail(quoted + " is under " + r + ", which the I/O wrapper keeps for the system");
    }
  }
  if (out.find('/', 1) == std::string::npos) {
    return fail(quoted + " must have at least two components (e.g. /studio/assets)");
  }
  return out;
}

std::string ProfileToToml(const JobProfile& p) {
  std::string out;
  auto line = [&out](const std::string& key, const std::string& value) {
    out += key + " = " + value + "\n";
  };
  line("name", Quote(p.name));
  line("priority", std::to_string(p.priority));
  line("placement", Quote(PlacementName(p.placement)));
  if (!p.remote_site.empty()) line("remote_site", Quote(p.remote_site));
  if (p.deadline_ms != 0) line("deadline", Quote(FormatRfc3339(p.deadline_ms)));
  line("frames", Quote(p.frames.ToString()));
  line("chunk_size",
       p.chunk_size == JobProfile::kAutoChunkSize ? Quote("auto") : std::to_string(p.chunk_size));
  if (p.max_attempts != 0) line("max_attempts", std::to_string(p.max_attempts));
  if (!p.files.empty()) line("files", QuoteArray(p.files));

  out += "\n[package]\n";
  line("name", Quote(p.package));
  if (!p.package_version.text().empty()) line("version", Quote(p.package_version.text()));

  out += "\n[render]\n";
  line("scene", Quote(p.scene));
  if (p.width > 0) line("width", std::to_string(p.width));
  if (p.height > 0) line("height", std::to_string(p.height));
  if (p.animation_last > 0) {
    line("animation",
         Quote(std::to_string(p.animation_first) + "-" + std::to_string(p.animation_last)));
  }
  if (!p.output.empty()) line("output", Quote(p.output));
  if (!p.args.empty()) line("args", QuoteArray(p.args));

  out += "\n[requirements]\n";
  line("cores", std::to_string(p.requirements.cores));
  line("memory", std::to_string(p.requirements.memory_bytes));
  line("gpus", std::to_string(p.requirements.gpus));

  for (const CentralPath& c : p.central) {
    out += "\n[[central]]\n";
    line("path", Quote(c.path));
    line("source", Quote(c.source));
  }

  for (const NotifyTarget& n : p.notify) {
    out += "\n[[notify]]\n";
    if (!n.webhook.empty()) line("webhook", Quote(n.webhook));
    if (!n.command.empty()) line("command", Quote(n.command));
  }
  return out;
}

Result<JobProfile> ValidateJobDescription(std::string_view text, std::string source) {
  if (source.empty()) source = "job description";
  if (static_cast<int64_t>(text.size()) > kMaxJobDescriptionBytes) {
    return InvalidArgument("description: " + PrintableExcerpt(source) + " is " +
                           std::to_string(text.size()) + " bytes, more than the limit of " +
                           std::to_string(kMaxJobDescriptionBytes));
  }
  return ParseJobDescription(text, source);
}

}  // namespace ff
