#include "scheduler/site_config.h"

#include "core/config_reader.h"

namespace ff {

Result<SiteConfig> LoadSiteConfig(const std::string& path) {
  SiteConfig cfg;
  FF_ASSIGN_OR_RETURN(ConfigTable doc, ConfigTable::ParseFile(path));
  FF_ASSIGN_OR_RETURN(auto site, doc.GetTable("site"));
  if (site) {
    FF_ASSIGN_OR_RETURN(auto name, site->GetString("name"));
    if (name) cfg.site_name = *name;
    FF_ASSIGN_OR_RETURN(auto root, site->GetString("root"));
    if (root) cfg.root = *root;
    FF_RETURN_IF_ERROR(site->Finish());
  }
  FF_ASSIGN_OR_RETURN(auto ss, doc.GetTable("schedule_server"));
  if (ss) {
    FF_ASSIGN_OR_RETURN(auto listen, ss->GetString("listen"));
    if (listen) cfg.listen = *listen;
    FF_ASSIGN_OR_RETURN(auto hb, ss->GetDurationMillis("heartbeat_timeout"));
    if (hb) cfg.heartbeat_timeout_ms = *hb;
    FF_ASSIGN_OR_RETURN(auto hbi, ss->GetDurationMillis("heartbeat_interval"));
    if (hbi) cfg.heartbeat_interval_ms = *hbi;
    FF_ASSIGN_OR_RETURN(auto grace, ss->GetDurationMillis("reconnect_grace"));
    if (grace) cfg.reconnect_grace_ms = *grace;
    FF_ASSIGN_OR_RETURN(auto attempts, ss->GetInt("max_attempts", 1, 100));
    if (attempts) cfg.max_attempts = static_cast<int>(*attempts);
    FF_ASSIGN_OR_RETURN(auto upload, ss->GetBytes("max_upload"));
    if (upload) cfg.max_upload_bytes = *upload;
    FF_RETURN_IF_ERROR(ss->Finish());
  }
  FF_RETURN_IF_ERROR(doc.Finish());
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
