#include "scheduler/site_config.h"

#include <algorithm>

#include "base/text.h"
#include "core/config_reader.h"
#include "store/resource_db.h"
#include "util/fs.h"

namespace ff {

namespace {
// A relative path in the config is relative to the config file's directory.
std::string ResolvePath(const std::string& config_path, const std::string& p) {
  if (p.empty() || p[0] == '/') return p;
  return JoinPath(DirName(config_path), p);
}
}  // namespace

bool ValidSiteName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-')) {
      return false;
    }
  }
  return name[0] != '.';
}

std::string ListenAddressProblem(const std::string& listen) {
  if (listen.rfind("unix:", 0) == 0) {
    return listen.size() > 5 ? "" : "names no socket path after unix:";
  }
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return "must be <host>:<port>";
  const std::string host = listen.substr(0, colon);
  const std::string port = listen.substr(colon + 1);
  if (host.empty()) return "must be <host>:<port>: the host is missing";
  for (char c : host) {
    if (c <= ' ' || c > '~')
      return "must be <host>:<port>: the host has a space or control character";
  }
  if (host.find(':') != std::string::npos && (host.front() != '[' || host.back() != ']')) {
    return "must be <host>:<port>: write an IPv6 host in brackets ([::1]:7450)";
  }
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535) {
    return "must be <host>:<port> with a port from 0 to 65535 (0 picks a free port)";
  }
  return "";
}

Result<SiteConfig> LoadSiteConfig(const std::string& path, const SiteConfigOverrides& overrides) {
  SiteConfig cfg;
  FF_ASSIGN_OR_RETURN(ConfigTable doc, ConfigTable::ParseFile(path));
  FF_ASSIGN_OR_RETURN(auto site, doc.GetTable("site"));
  if (site) {
    FF_RETURN_IF_ERROR(site->ReadString("name", &cfg.site_name));
    FF_RETURN_IF_ERROR(site->ReadString("root", &cfg.root));
    FF_RETURN_IF_ERROR(site->Finish());
    if (!ValidSiteName(cfg.site_name)) {
      return InvalidArgument(path + ": site.name: '" + cfg.site_name +
                             "' must be [A-Za-z0-9._-]{1,64}");
    }
  }
  FF_ASSIGN_OR_RETURN(auto ss, doc.GetTable("schedule_server"));
  if (ss) {
    FF_ASSIGN_OR_RETURN(auto listen, ss->GetString("listen"));
    if (listen) cfg.listen = *listen;
    FF_RETURN_IF_ERROR(ss->ReadDurationMillis("heartbeat_timeout", &cfg.heartbeat_timeout_ms));
    FF_RETURN_IF_ERROR(ss->ReadDurationMillis("heartbeat_interval", &cfg.heartbeat_interval_ms));
    FF_RETURN_IF_ERROR(ss->ReadDurationMillis("reconnect_grace", &cfg.reconnect_grace_ms));
    FF_RETURN_IF_ERROR(ss->ReadInt("max_attempts", 1, 100, &cfg.max_attempts));
    FF_RETURN_IF_ERROR(ss->ReadBytes("max_upload", &cfg.max_upload_bytes));
    FF_ASSIGN_OR_RETURN(auto cert, ss->GetString("tls_cert"));
    if (cert) cfg.tls_cert = ResolvePath(path, *cert);
    FF_ASSIGN_OR_RETURN(auto key, ss->GetString("tls_key"));
    if (key) cfg.tls_key = ResolvePath(path, *key);
    if (cert.has_value() != key.has_value()) {
      return InvalidArgument(path + ": schedule_server.tls_cert and tls_key: set both or neither");
    }
    FF_RETURN_IF_ERROR(ss->ReadDurationMillis("quote_timeout", &cfg.quote_timeout_ms));
    FF_RETURN_IF_ERROR(ss->Finish());
    if (listen) {
      // gRPC would otherwise pick a random port for a bad one, silently.
      const std::string problem = ListenAddressProblem(*listen);
      if (!problem.empty()) {
        return ss->Error("listen", "'" + PrintableExcerpt(*listen) + "' " + problem);
      }
    }
  }
  FF_ASSIGN_OR_RETURN(auto peers, doc.GetTableArray("peers"));
  for (size_t i = 0; i < peers.size(); ++i) {
    ConfigTable& t = peers[i];
    const std::string where = path + ": peers[" + std::to_string(i) + "]";
    PeerConfig p;
    FF_ASSIGN_OR_RETURN(auto name, t.GetString("name"));
    if (!name || !ValidSiteName(*name)) {
      return InvalidArgument(where + ".name: required, [A-Za-z0-9._-]{1,64}");
    }
    p.name = *name;
    FF_RETURN_IF_ERROR(t.ReadString("address", &p.address));
    FF_ASSIGN_OR_RETURN(auto address_file, t.GetString("address_file"));
    if (address_file) p.address_file = ResolvePath(path, *address_file);
    if (p.address.empty() == p.address_file.empty()) {
      return InvalidArgument(where + " (" + p.name + "): set exactly one of address, address_file");
    }
    FF_ASSIGN_OR_RETURN(auto secret, t.GetString("secret"));
    FF_ASSIGN_OR_RETURN(auto secret_file, t.GetString("secret_file"));
    if (secret.has_value() == secret_file.has_value()) {
      return InvalidArgument(where + " (" + p.name + "): set exactly one of secret, secret_file");
    }
    if (secret) {
      p.secret = *secret;
    } else {
      const std::string file = ResolvePath(path, *secret_file);
      auto text = ReadFile(file);
      if (!text.ok()) {
        return InvalidArgument(where + ".secret_file: " + text.status().message());
      }
      p.secret = std::string(Trim(*text));
    }
    if (p.secret.size() < 16) {
      return InvalidArgument(where + ".secret: must be at least 16 characters");
    }
    FF_ASSIGN_OR_RETURN(auto ca, t.GetString("tls_ca"));
    if (ca) p.tls_ca = ResolvePath(path, *ca);
    FF_RETURN_IF_ERROR(t.ReadString("tls_server_name", &p.tls_server_name));
    FF_RETURN_IF_ERROR(t.Finish());
    if (cfg.FindPeer(p.name)) return InvalidArgument(where + ".name: '" + p.name + "' twice");
    cfg.peers.push_back(std::move(p));
  }
  FF_ASSIGN_OR_RETURN(auto hot, doc.GetTable("hotfolders"));
  if (hot) {
    FF_RETURN_IF_ERROR(hot->ReadBytes("max_package", &cfg.limits.max_package_bytes));
    FF_RETURN_IF_ERROR(hot->ReadBytes("max_file", &cfg.limits.max_file_bytes));
    FF_RETURN_IF_ERROR(hot->ReadInt("max_files", 1, 10'000'000, &cfg.limits.max_files));
    FF_RETURN_IF_ERROR(hot->Finish());
  }
  FF_ASSIGN_OR_RETURN(auto courier, doc.GetTable("courier"));
  if (courier) {
    FF_ASSIGN_OR_RETURN(auto chunk, courier->GetBytes("chunk"));
    if (chunk) {
      if (*chunk < 4096 || *chunk > (64 << 20)) {
        return InvalidArgument(path + ": courier.chunk: must be between 4K and 64M");
      }
      cfg.courier_chunk_bytes = *chunk;
    }
    FF_RETURN_IF_ERROR(courier->ReadBytes("max_rate", &cfg.courier_max_rate));
    FF_ASSIGN_OR_RETURN(auto poll, courier->GetDurationMillis("poll"));
    if (poll) cfg.remote_poll_ms = std::max<int64_t>(*poll, 50);
    FF_RETURN_IF_ERROR(courier->Finish());
  }
  FF_ASSIGN_OR_RETURN(auto sandbox, doc.GetTable("sandbox"));
  if (sandbox) {
    SandboxSiteConfig& sb = cfg.sandbox;
    FF_ASSIGN_OR_RETURN(auto local, sandbox->GetString("local_jobs"));
    if (local) {
      if (*local != "wrapped" && *local != "plain") {
        return InvalidArgument(
            path + ": sandbox.local_jobs: must be \"wrapped\" or \"plain\", got '" + *local + "'");
      }
      sb.wrap_local_jobs = *local == "wrapped";
    }
    FF_RETURN_IF_ERROR(sandbox->ReadBytes("memory", &sb.memory_bytes));
    FF_RETURN_IF_ERROR(sandbox->ReadInt("processes", 0, 1'000'000, &sb.processes));
    FF_ASSIGN_OR_RETURN(auto cpu, sandbox->GetDurationMillis("cpu_time"));
    if (cpu) sb.cpu_seconds = (*cpu + 999) / 1000;
    FF_RETURN_IF_ERROR(sandbox->ReadDurationMillis("wall_time", &sb.wall_ms));
    FF_RETURN_IF_ERROR(sandbox->ReadBytes("output_size", &sb.output_bytes));
    FF_RETURN_IF_ERROR(sandbox->ReadBytes("file_size", &sb.file_bytes));
    FF_RETURN_IF_ERROR(sandbox->ReadBytes("tmp_size", &sb.tmp_bytes));
    FF_RETURN_IF_ERROR(sandbox->Finish());
    if (sb.output_bytes < (1 << 20)) {
      return InvalidArgument(path + ": sandbox.output_size: must be at least 1M");
    }
    if (sb.tmp_bytes < (1 << 20))
      return InvalidArgument(path + ": sandbox.tmp_size: must be at least 1M");
  }
  FF_ASSIGN_OR_RETURN(auto database, doc.GetTable("database"));
  if (database) {
    FF_ASSIGN_OR_RETURN(auto url, database->GetString("url"));
    if (url) {
      if (Status st = CheckResourceDatabaseUrl(*url); !st.ok()) {
        return InvalidArgument(path + ": database.url: " + st.message());
      }
      cfg.database_url = *url;
    }
    FF_RETURN_IF_ERROR(database->Finish());
  }
  FF_ASSIGN_OR_RETURN(auto web, doc.GetTable("web"));
  if (web) {
    FF_ASSIGN_OR_RETURN(auto listen, web->GetString("listen"));
    if (listen) {
      const std::string problem = ListenAddressProblem(*listen);
      if (!problem.empty()) return web->Error("listen", "'" + *listen + "' " + problem);
      cfg.web_listen = *listen;
    }
    FF_RETURN_IF_ERROR(web->Finish());
  }
  FF_RETURN_IF_ERROR(doc.Finish());
  cfg.settings = doc.Settings({"secret"});
  if (!overrides.listen.empty()) {
    const std::string problem = ListenAddressProblem(overrides.listen);
    if (!problem.empty()) {
      return InvalidArgument("--listen: '" + overrides.listen + "' " + problem);
    }
    cfg.listen = overrides.listen;
    cfg.settings.push_back("schedule_server.listen = \"" + overrides.listen + "\" (--listen)");
  }
  if (!overrides.root.empty()) {
    cfg.root = overrides.root;
    cfg.settings.push_back("site.root = \"" + overrides.root + "\" (--root)");
  }
  if (cfg.root.empty()) {
    return InvalidArgument(path + ": site.root: is required (the directory the site owns)");
  }
  if (cfg.heartbeat_interval_ms >= cfg.heartbeat_timeout_ms) {
    return InvalidArgument(path +
                           ": schedule_server.heartbeat_interval: must be shorter than "
                           "heartbeat_timeout");
  }
  return cfg;
}

}  // namespace ff
