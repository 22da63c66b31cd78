#include "sandbox/spec.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <map>

#include "base/text.h"

namespace ff::sandbox {

namespace {

// Sandbox paths the wrapper builds itself; nothing may be mounted on or
// under them (a central path there would hide the sandbox's own view).
const char* const kReserved[] = {"/proc", "/dev", "/tmp", "/etc", "/job"};

bool IsNormalAbsolute(const std::string& p) {
  if (p.empty() || p[0] != '/' || p.find('\0') != std::string::npos) return false;
  if (p == "/") return true;
  if (p.back() == '/') return false;
  size_t i = 1;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    std::string part = p.substr(i, j - i);
    if (part.empty() || part == "." || part == "..") return false;
    i = j + 1;
  }
  return true;
}

Result<int64_t> ParseInt(const std::string& option, const std::string& text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 0) {
    return InvalidArgument(option + ": expected a non-negative integer, got '" + text + "'");
  }
  return v;
}

Result<BindMount> ParseBind(const std::string& option, const std::string& text, bool need_target) {
  BindMount b;
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    if (need_target) return InvalidArgument(option + ": expected HOST:SANDBOX, got '" + text + "'");
    b.host = b.sandbox = text;
  } else {
    b.host = text.substr(0, colon);
    b.sandbox = text.substr(colon + 1);
  }
  return b;
}

}  // namespace

Status ValidateSpec(const WrapSpec& s) {
  if (s.name.empty() || s.name.size() > 200 ||
      !std::all_of(s.name.begin(), s.name.end(),
                   [](char c) {
                     return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
                            c == '-';
                   }) ||
      s.name[0] == '.') {
    return InvalidArgument(
        "--name: 1 to 200 characters from A-Z a-z 0-9 . _ - (not starting with .), got '" + s.name +
        "'");
  }
  if (s.uid == 0)
    return InvalidArgument("--uid: the renderer never runs as root; give a uid other than 0");
  if (s.gid == 0) return InvalidArgument("--gid: give a gid other than 0");
  if (s.argv.empty()) return InvalidArgument("no program given after --");
  std::vector<std::pair<std::string, std::string>> targets;  // sandbox path, option
  for (const auto& b : s.system) {
    if (!IsNormalAbsolute(b.host) || !IsNormalAbsolute(b.sandbox) || b.sandbox == "/") {
      return InvalidArgument("--ro: paths must be absolute and normalised, not '/', got '" +
                             b.host + ":" + b.sandbox + "'");
    }
    targets.emplace_back(b.sandbox, "--ro");
  }
  if (!s.input.empty()) {
    if (!IsNormalAbsolute(s.input))
      return InvalidArgument("--input: expected an absolute path, got '" + s.input + "'");
    targets.emplace_back(kInputPath, "--input");
  }
  for (const auto& b : s.central) {
    if (!IsNormalAbsolute(b.host) || !IsNormalAbsolute(b.sandbox) || b.sandbox == "/") {
      return InvalidArgument("--central: paths must be absolute and normalised, not '/', got '" +
                             b.host + ":" + b.sandbox + "'");
    }
    targets.emplace_back(b.sandbox, "--central");
  }
  if (!s.output.empty()) {
    if (!IsNormalAbsolute(s.output) || s.output == "/") {
      return InvalidArgument("--output: expected an absolute sandbox path other than '/', got '" +
                             s.output + "'");
    }
    targets.emplace_back(s.output, "--output");
    if (s.collect_to.empty()) return InvalidArgument("--output needs --collect-to");
  }
  for (const auto& d : s.output_dirs) {
    if (s.output.empty()) return InvalidArgument("--mkdir needs --output");
    if (!IsNormalAbsolute("/" + d) || d.empty()) {
      return InvalidArgument("--mkdir: expected a relative path without '..', got '" + d + "'");
    }
  }
  if (!s.collect_to.empty() && !IsNormalAbsolute(s.collect_to)) {
    return InvalidArgument("--collect-to: expected an absolute path, got '" + s.collect_to + "'");
  }
  // /etc may hold read-only system files (--ro /etc/ld.so.cache); the
  // other reserved paths belong to the wrapper alone.
  for (const auto& [t, opt] : targets) {
    for (const char* r : kReserved) {
      if (std::string(r) == "/etc" && opt == "--ro") continue;
      if (std::string(r) == kInputPath && opt == "--input") continue;
      if (PathWithin(t, r) || PathWithin(r, t)) {
        return InvalidArgument(opt + ": '" + t + "' overlaps " + r +
                               ", which the wrapper provides");
      }
    }
  }
  for (size_t i = 0; i < targets.size(); ++i) {
    for (size_t j = i + 1; j < targets.size(); ++j) {
      // A later read-only bind may replace a file or directory inside an
      // earlier one (e.g. a farm's povray.conf inside /etc/povray).
      if (targets[i].second == "--ro" && targets[j].second == "--ro" &&
          PathWithin(targets[j].first, targets[i].first) && targets[j].first != targets[i].first) {
        continue;
      }
      if (PathWithin(targets[i].first, targets[j].first) ||
          PathWithin(targets[j].first, targets[i].first)) {
        return InvalidArgument(targets[j].second + ": '" + targets[j].first + "' overlaps '" +
                               targets[i].first + "' (" + targets[i].second + ")");
      }
    }
  }
  if (!s.cwd.empty() && !IsNormalAbsolute(s.cwd)) {
    return InvalidArgument("--cwd: expected an absolute path, got '" + s.cwd + "'");
  }
  for (const auto& e : s.env) {
    size_t eq = e.find('=');
    if (eq == std::string::npos || eq == 0)
      return InvalidArgument("--env: expected KEY=VALUE, got '" + e + "'");
  }
  if (s.hostname.empty() || s.hostname.size() > 64)
    return InvalidArgument("--hostname: 1 to 64 characters");
  if (s.limits.output_bytes <= 0) return InvalidArgument("--output-size: must be more than 0");
  if (s.limits.tmp_bytes <= 0) return InvalidArgument("--tmp-size: must be more than 0");
  if (s.limits.open_files <= 0) return InvalidArgument("--open-files: must be more than 0");
  if (s.landlock_min_abi < 1) return InvalidArgument("--landlock-min-abi: must be at least 1");
  if (s.cgroup_parent.empty() || s.cgroup_parent[0] == '/' ||
      s.cgroup_parent.find("..") != std::string::npos) {
    return InvalidArgument("--cgroup-parent: expected a relative path without '..', got '" +
                           s.cgroup_parent + "'");
  }
  return Status::Ok();
}

Result<WrapSpec> ParseWrapArgs(const std::vector<std::string>& args) {
  WrapSpec s;
  size_t i = 0;
  auto value = [&](const std::string& opt) -> Result<std::string> {
    if (i + 1 >= args.size()) return InvalidArgument(opt + ": missing value");
    return args[++i];
  };
  auto size_of = [&](const std::string& opt, int64_t* out) -> Status {
    FF_ASSIGN_OR_RETURN(std::string v, value(opt));
    auto n = ParseByteSize(v);
    if (!n.ok()) return n.status().WithContext(opt);
    *out = *n;
    return Status::Ok();
  };
  auto int_of = [&](const std::string& opt, int64_t* out) -> Status {
    FF_ASSIGN_OR_RETURN(std::string v, value(opt));
    FF_ASSIGN_OR_RETURN(*out, ParseInt(opt, v));
    return Status::Ok();
  };
  for (; i < args.size(); ++i) {
    const std::string& a = args[i];
    int64_t n = 0;
    if (a == "--") {
      s.argv.assign(args.begin() + static_cast<long>(i) + 1, args.end());
      break;
    } else if (a == "--name") {
      FF_ASSIGN_OR_RETURN(s.name, value(a));
    } else if (a == "--uid" || a == "--gid") {
      FF_RETURN_IF_ERROR(int_of(a, &n));
      if (n > 4294967294LL) return InvalidArgument(a + ": out of range");
      (a == "--uid" ? s.uid : s.gid) = static_cast<uid_t>(n);
    } else if (a == "--ro") {
      FF_ASSIGN_OR_RETURN(std::string v, value(a));
      FF_ASSIGN_OR_RETURN(auto b, ParseBind(a, v, false));
      s.system.push_back(b);
    } else if (a == "--input") {
      FF_ASSIGN_OR_RETURN(s.input, value(a));
    } else if (a == "--central") {
      FF_ASSIGN_OR_RETURN(std::string v, value(a));
      FF_ASSIGN_OR_RETURN(auto b, ParseBind(a, v, true));
      s.central.push_back(b);
    } else if (a == "--output") {
      FF_ASSIGN_OR_RETURN(s.output, value(a));
    } else if (a == "--mkdir") {
      FF_ASSIGN_OR_RETURN(std::string v, value(a));
      s.output_dirs.push_back(v);
    } else if (a == "--collect-to") {
      FF_ASSIGN_OR_RETURN(s.collect_to, value(a));
    } else if (a == "--cwd") {
      FF_ASSIGN_OR_RETURN(s.cwd, value(a));
    } else if (a == "--env") {
      FF_ASSIGN_OR_RETURN(std::string v, value(a));
      s.env.push_back(v);
    } else if (a == "--hostname") {
      FF_ASSIGN_OR_RETURN(s.hostname, value(a));
    } else if (a == "--memory") {
      FF_RETURN_IF_ERROR(size_of(a, &s.limits.memory_bytes));
    } else if (a == "--processes") {
      FF_RETURN_IF_ERROR(int_of(a, &s.limits.processes));
    } else if (a == "--cpu-time") {
      FF_RETURN_IF_ERROR(int_of(a, &s.limits.cpu_seconds));
    } else if (a == "--wall-time") {
      FF_RETURN_IF_ERROR(int_of(a, &s.limits.wall_ms));
    } else if (a == "--output-size") {
      FF_RETURN_IF_ERROR(size_of(a, &s.limits.output_bytes));
    } else if (a == "--file-size") {
      FF_RETURN_IF_ERROR(size_of(a, &s.limits.file_bytes));
    } else if (a == "--tmp-size") {
      FF_RETURN_IF_ERROR(size_of(a, &s.limits.tmp_bytes));
    } else if (a == "--open-files") {
      FF_RETURN_IF_ERROR(int_of(a, &s.limits.open_files));
    } else if (a == "--landlock-min-abi") {
      FF_RETURN_IF_ERROR(int_of(a, &n));
      s.landlock_min_abi = static_cast<int>(std::min<int64_t>(n, 1000));
    } else if (a == "--cgroup-parent") {
      FF_ASSIGN_OR_RETURN(s.cgroup_parent, value(a));
    } else if (a == "--report") {
      FF_ASSIGN_OR_RETURN(s.report, value(a));
    } else if (a == "--summary") {
      s.summary = true;
    } else {
      return InvalidArgument("unknown option '" + a + "' (see frameflow-wrap --help)");
    }
  }
  FF_RETURN_IF_ERROR(ValidateSpec(s));
  return s;
}

std::vector<std::string> ToArgs(const WrapSpec& s) {
  std::vector<std::string> a = {
      "--name", s.name, "--uid", std::to_string(s.uid), "--gid", std::to_string(s.gid)};
  for (const auto& b : s.system) a.insert(a.end(), {"--ro", b.host + ":" + b.sandbox});
  if (!s.input.empty()) a.insert(a.end(), {"--input", s.input});
  for (const auto& b : s.central) a.insert(a.end(), {"--central", b.host + ":" + b.sandbox});
  if (!s.output.empty()) a.insert(a.end(), {"--output", s.output});
  for (const auto& d : s.output_dirs) a.insert(a.end(), {"--mkdir", d});
  if (!s.collect_to.empty()) a.insert(a.end(), {"--collect-to", s.collect_to});
  if (!s.cwd.empty()) a.insert(a.end(), {"--cwd", s.cwd});
  for (const auto& e : s.env) a.insert(a.end(), {"--env", e});
  a.insert(a.end(), {"--hostname", s.hostname});
  const Limits& l = s.limits;
  a.insert(a.end(), {"--memory",           std::to_string(l.memory_bytes),
                     "--processes",        std::to_string(l.processes),
                     "--cpu-time",         std::to_string(l.cpu_seconds),
                     "--wall-time",        std::to_string(l.wall_ms),
                     "--output-size",      std::to_string(l.output_bytes),
                     "--file-size",        std::to_string(l.file_bytes),
                     "--tmp-size",         std::to_string(l.tmp_bytes),
                     "--open-files",       std::to_string(l.open_files),
                     "--landlock-min-abi", std::to_string(s.landlock_min_abi),
                     "--cgroup-parent",    s.cgroup_parent});
  if (!s.report.empty()) a.insert(a.end(), {"--report", s.report});
  if (s.summary) a.push_back("--summary");
  a.push_back("--");
  a.insert(a.end(), s.argv.begin(), s.argv.end());
  return a;
}

std::string FormatSeconds(int64_t ms) {
  char buf[32];
  if (ms % 1000 == 0) {
    std::snprintf(buf, sizeof buf, "%lld s", static_cast<long long>(ms / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ms) / 1000);
  }
  return buf;
}

std::string LimitsText(const Limits& l) {
  auto or_none = [](int64_t v, const std::string& text) { return v > 0 ? text : "none"; };
  return "memory " + or_none(l.memory_bytes, FormatBytes(l.memory_bytes)) + ", processes " +
         or_none(l.processes, std::to_string(l.processes)) + ", cpu time " +
         or_none(l.cpu_seconds, std::to_string(l.cpu_seconds) + " s") + ", wall time " +
         or_none(l.wall_ms, FormatSeconds(l.wall_ms)) + ", output " + FormatBytes(l.output_bytes) +
         ", file size " + or_none(l.file_bytes, FormatBytes(l.file_bytes)) + ", /tmp " +
         FormatBytes(l.tmp_bytes) + ", open files " + std::to_string(l.open_files);
}

std::vector<std::string> SummaryLines(const WrapSpec& s) {
  std::vector<std::string> out;
  out.push_back("run as uid " + std::to_string(s.uid) + " gid " + std::to_string(s.gid) +
                "; namespaces mount, pid, net, ipc, uts, cgroup; no capabilities; no_new_privs");
  for (const auto& b : s.system)
    out.push_back("mount " + b.sandbox + " <- " + b.host + " (read-only)");
  if (!s.input.empty())
    out.push_back(std::string("mount ") + kInputPath + " <- " + s.input + " (read-only, noexec)");
  for (const auto& b : s.central)
    out.push_back("mount " + b.sandbox + " <- " + b.host + " (read-only, noexec)");
  if (!s.output.empty()) {
    out.push_back("mount " + s.output + " <- tmpfs " + FormatBytes(s.limits.output_bytes) +
                  " (writable, noexec; collected into " + s.collect_to + ")");
  }
  out.push_back("mount /tmp <- tmpfs " + FormatBytes(s.limits.tmp_bytes) + " (writable, noexec)");
  out.push_back(
      "mount /proc (new), /dev (null, zero, urandom), /etc/passwd, /etc/group (generated)");
  out.push_back("limits " + LimitsText(s.limits));
  return out;
}

}  // namespace ff::sandbox
