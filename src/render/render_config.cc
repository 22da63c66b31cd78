#include "render/render_config.h"

#include <unistd.h>

#include <cctype>
#include <set>

#include "base/text.h"
#include "core/config_reader.h"

namespace ff {

Result<std::vector<std::string>> SplitCommandTemplate(const std::string& command) {
  std::vector<std::string> out;
  std::string cur;
  bool in_word = false;
  char quote = 0;
  for (char c : command) {
    if (quote) {
      if (c == quote) {
        quote = 0;
      } else {
        cur.push_back(c);
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) out.push_back(std::move(cur));
      cur.clear();
      in_word = false;
    } else {
      cur.push_back(c);
      in_word = true;
    }
  }
  if (quote) return InvalidArgument("command has an unterminated quote: " + command);
  if (in_word) out.push_back(std::move(cur));
  if (out.empty()) return InvalidArgument("command is empty");
  return out;
}

// The tokens CommandAdapter (package_adapter.cc) replaces.
constexpr const char* kCommandTokens[] = {"{frame}",   "{first}", "{last}",  "{output}",
                                          "{outdir}",  "{scene}", "{width}", "{height}",
                                          "{threads}", "{job}",   "{chunk}"};

Status CheckCommandTokens(const std::string& command) {
  for (size_t open = command.find('{'); open != std::string::npos;
       open = command.find('{', open + 1)) {
    if (open > 0 && command[open - 1] == '$') continue;  // ${VAR}: the shell's
    size_t end = open + 1;
    while (end < command.size() &&
           (std::islower(static_cast<unsigned char>(command[end])) ||
            std::isdigit(static_cast<unsigned char>(command[end])) || command[end] == '_')) {
      ++end;
    }
    // Only `{word}` looks like a token; `{1..3}` or a lone brace is left alone.
    if (end == open + 1 || end >= command.size() || command[end] != '}') continue;
    const std::string token = command.substr(open, end + 1 - open);
    bool known = false;
    std::string list;
    for (const char* t : kCommandTokens) {
      known = known || token == t;
      list += list.empty() ? t : std::string(" ") + t;
    }
    if (!known) {
      return InvalidArgument("unknown token '" + PrintableExcerpt(token) + "' (known: " + list +
                             ")");
    }
  }
  return Status::Ok();
}

Status CheckRenderServerName(const std::string& name) {
  if (const char* problem = ServerNameProblem(name)) {
    return InvalidArgument("name: '" + PrintableExcerpt(name) + "' " + problem);
  }
  return Status::Ok();
}

Result<RenderServerConfig> LoadRenderServerConfig(const std::string& path,
                                                  const RenderServerConfigOverrides& overrides) {
  RenderServerConfig cfg;
  FF_ASSIGN_OR_RETURN(ConfigTable doc, ConfigTable::ParseFile(path));
  FF_ASSIGN_OR_RETURN(auto name, doc.GetString("name"));
  if (name) {
    if (const char* problem = ServerNameProblem(*name)) {
      return doc.Error("name", "'" + PrintableExcerpt(*name) + "' " + problem);
    }
    cfg.name = *name;
  }
  FF_RETURN_IF_ERROR(doc.ReadString("root", &cfg.root));
  FF_RETURN_IF_ERROR(doc.ReadString("schedule_server", &cfg.schedule_server));
  FF_RETURN_IF_ERROR(doc.ReadString("schedule_server_file", &cfg.schedule_server_file));
  FF_RETURN_IF_ERROR(doc.ReadDurationMillis("heartbeat_interval", &cfg.heartbeat_interval_ms));
  FF_RETURN_IF_ERROR(doc.ReadDurationMillis("drain_timeout", &cfg.drain_timeout_ms));
  FF_RETURN_IF_ERROR(doc.ReadStringArray("probe", &cfg.probe));
  FF_ASSIGN_OR_RETURN(auto slots, doc.GetTableArray("slots"));
  for (auto& t : slots) {
    SlotConfig s;
    FF_ASSIGN_OR_RETURN(auto sname, t.GetString("name"));
    if (sname) {
      // "-<i>" is appended for count = N: leave room for it.
      const char* problem = ServerNameProblem(*sname);
      if (!problem && sname->size() > kMaxServerNameLength - 6) {
        problem = "must be at most 58 characters (count adds -<i>)";
      }
      if (problem) return t.Error("name", "'" + PrintableExcerpt(*sname) + "' " + problem);
    }
    // Unnamed slots are s0, s1, ... by their place on the render server.
    s.name = sname ? *sname : "s" + std::to_string(cfg.slots.size());
    FF_RETURN_IF_ERROR(t.ReadInt("cores", 1, 4096, &s.cores));
    FF_RETURN_IF_ERROR(t.ReadBytes("memory", &s.memory_bytes));
    FF_RETURN_IF_ERROR(t.ReadInt("gpus", 0, 64, &s.gpus));
    FF_ASSIGN_OR_RETURN(auto count, t.GetInt("count", 1, 100000));
    FF_RETURN_IF_ERROR(t.Finish());
    if (count) {
      for (int64_t i = 0; i < *count; ++i) {
        SlotConfig c = s;
        c.name = sname ? s.name + "-" + std::to_string(i) : "s" + std::to_string(cfg.slots.size());
        cfg.slots.push_back(c);
      }
    } else {
      cfg.slots.push_back(s);
    }
  }
  // Slots are addressed by name ("<server>/<slot>"): a duplicate would never work.
  std::set<std::string> slot_names;
  for (const auto& s : cfg.slots) {
    if (!slot_names.insert(s.name).second) {
      return InvalidArgument(path + ": slots.name: slot name '" + s.name +
                             "' is used more than once (count = N adds <name>-0..<name>-N-1)");
    }
  }
  FF_ASSIGN_OR_RETURN(auto pkgs, doc.GetTableArray("packages"));
  for (size_t i = 0; i < pkgs.size(); ++i) {
    ConfigTable& t = pkgs[i];
    CommandPackageConfig p;
    FF_ASSIGN_OR_RETURN(auto pname, t.GetString("name"));
    FF_ASSIGN_OR_RETURN(auto version, t.GetString("version"));
    FF_ASSIGN_OR_RETURN(auto command, t.GetString("command"));
    FF_RETURN_IF_ERROR(t.Finish());
    if (!pname || pname->empty()) return InvalidArgument(path + ": packages.name: is required");
    if (!command) {
      return InvalidArgument(path + ": packages.command: is required for package '" + *pname + "'");
    }
    const std::string where =
        path + ": packages[" + std::to_string(i) + "].command of '" + *pname + "'";
    FF_RETURN_IF_ERROR(SplitCommandTemplate(*command).status().WithContext(where));
    FF_RETURN_IF_ERROR(CheckCommandTokens(*command).WithContext(where));
    p.name = *pname;
    p.version = version ? *version : "0";
    p.command = *command;
    cfg.packages.push_back(p);
  }
  FF_ASSIGN_OR_RETURN(auto sandbox, doc.GetTable("sandbox"));
  if (sandbox) {
    SandboxHostConfig& sb = cfg.sandbox;
    FF_RETURN_IF_ERROR(sandbox->ReadString("wrapper", &sb.wrapper));
    // Far above login accounts and the usual subordinate-id ranges.
    FF_RETURN_IF_ERROR(sandbox->ReadInt("uid_base", 100000000, 4294000000LL, &sb.uid_base));
    FF_ASSIGN_OR_RETURN(auto parent, sandbox->GetString("cgroup_parent"));
    if (parent) {
      if (parent->empty() || (*parent)[0] == '/' || parent->find("..") != std::string::npos) {
        return InvalidArgument(path +
                               ": sandbox.cgroup_parent: expected a relative path without "
                               "'..', got '" +
                               *parent + "'");
      }
      sb.cgroup_parent = *parent;
    }
    FF_RETURN_IF_ERROR(sandbox->ReadInt("landlock_min_abi", 1, 100, &sb.landlock_min_abi));
    FF_RETURN_IF_ERROR(sandbox->ReadStringArray("system_paths", &sb.system_paths));
    FF_RETURN_IF_ERROR(sandbox->ReadStringArray("extra_paths", &sb.extra_paths));
    FF_RETURN_IF_ERROR(sandbox->Finish());
    for (const auto& p : sb.system_paths) {
      if (p.empty() || p[0] != '/') {
        return InvalidArgument(path + ": sandbox.system_paths: '" + p +
                               "' is not an absolute path");
      }
    }
    for (const auto& p : sb.extra_paths) {
      if (p.empty() || p[0] != '/') {
        return InvalidArgument(path + ": sandbox.extra_paths: '" + p + "' is not an absolute path");
      }
    }
  }
  FF_RETURN_IF_ERROR(doc.Finish());
  cfg.settings = doc.Settings({});
  if (!overrides.name.empty()) {
    FF_RETURN_IF_ERROR(CheckRenderServerName(overrides.name).WithContext("--name"));
    cfg.name = overrides.name;
    cfg.settings.push_back("name = \"" + overrides.name + "\" (--name)");
  }
  if (!overrides.schedule_server.empty()) {
    cfg.schedule_server = overrides.schedule_server;
    cfg.settings.push_back("schedule_server = \"" + overrides.schedule_server +
                           "\" (--schedule-server)");
  }
  if (!overrides.root.empty()) {
    cfg.root = overrides.root;
    cfg.settings.push_back("root = \"" + overrides.root + "\" (--root)");
  }
  if (cfg.root.empty()) return InvalidArgument(path + ": root: is required");
  if (cfg.name.empty()) {
    char host[256] = {0};
    ::gethostname(host, sizeof(host) - 1);
    cfg.name = host;
  }
  return cfg;
}

}  // namespace ff
