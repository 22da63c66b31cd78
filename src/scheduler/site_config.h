// Configuration of a site's schedule server (site.toml):
//
//   [site]
//   name = "studio"              # default "site"
//   root = "/srv/frameflow"      # required: db/, storage/, hotfolders/, logs/ live here
//
//   [schedule_server]
//   listen = "127.0.0.1:7450"    # port 0 picks a free port
//   heartbeat_timeout = "3s"     # a render server silent this long is down
//   reconnect_grace = "2s"       # a dropped stream may come back this fast
//   max_attempts = 3             # failures per chunk before it fails
//   max_upload = "8G"            # largest blob a client may upload
//
// Flags of `frameflow schedule-server` override these keys.
#pragma once

#include <cstdint>
#include <string>

#include "core/status.h"

namespace ff {

struct SiteConfig {
  std::string site_name = "site";
  std::string root;
  std::string listen = "127.0.0.1:7450";
  int64_t heartbeat_timeout_ms = 3000;
  int64_t heartbeat_interval_ms = 1000;
  int64_t reconnect_grace_ms = 2000;
  int max_attempts = 3;
  int64_t max_upload_bytes = 8LL << 30;
  bool has_peers = false;  // remote sites (a later issue); placement needs them

  std::string db_path() const { return root + "/db/frameflow.db"; }
  std::string storage_dir() const { return root + "/storage"; }
  std::string blob_dir() const { return root + "/storage/blobs"; }
  std::string jobs_dir() const { return root + "/storage/jobs"; }
  std::string address_file() const { return root + "/schedule-server.addr"; }
};

Result<SiteConfig> LoadSiteConfig(const std::string& path);

}  // namespace ff
