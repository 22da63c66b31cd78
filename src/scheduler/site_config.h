// Configuration of a site's schedule server (site.toml):
//
//   [site]
//   name = "studio"              # default "site"
//   root = "/srv/frameflow"      # required: db/, storage/, hotfolders/ live here
//
//   [schedule_server]
//   listen = "127.0.0.1:7450"    # port 0 picks a free port
//   heartbeat_timeout = "3s"     # a render server silent this long is down
//   reconnect_grace = "2s"       # a dropped stream may come back this fast
//   max_attempts = 3             # failures per chunk before it fails
//   max_upload = "8G"            # largest blob a client may upload
//   tls_cert = "site.crt"        # optional: serve TLS (PEM cert chain and key)
//   tls_key = "site.key"
//   quote_timeout = "2s"         # how long `auto` placement waits for a peer's quote
//
//   [[peers]]                    # remote rendering sites (zero or more)
//   name = "render-co"           # the peer's site.name
//   address = "10.1.2.3:7450"    # its schedule server, or address_file = "..."
//   secret = "..."               # shared secret (>= 16 chars), or secret_file = "..."
//   tls_ca = "render-co-ca.pem"  # optional: TLS to this peer, trusting this CA
//
//   [hotfolders]                 # limits on packages this site accepts
//   max_package = "64G"          # all files of one package
//   max_file = "16G"             # one file
//   max_files = 100000
//
//   [courier]
//   chunk = "1M"                 # bytes per message on the link
//   max_rate = "0"               # bytes/s to each peer, 0 = unlimited
//   poll = "1s"                  # how often outsourced jobs' progress is fetched
//
//   [sandbox]                    # the I/O wrapper policy (docs/sandbox.md)
//   local_jobs = "wrapped"       # or "plain"; remote jobs are always wrapped
//   memory = "0"                 # per chunk, 0 = the slot's memory
//   processes = 1024             # per chunk, 0 = none
//   cpu_time = "0"               # per chunk, 0 = none
//   wall_time = "0"              # per chunk, 0 = none
//   output_size = "4G"           # the writable output area (tmpfs)
//   file_size = "0"              # one file, 0 = none
//   tmp_size = "1G"              # the private /tmp (tmpfs)
//
// Flags of `frameflow schedule-server` override these keys.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "transfer/job_package.h"
#include "transfer/peer.h"

namespace ff {

// The I/O wrapper policy ([sandbox] in site.toml). Jobs from remote sites
// always run inside it; local jobs do unless local_jobs = "plain" (and the
// job names no central paths, which only the wrapper can provide).
struct SandboxSiteConfig {
  bool wrap_local_jobs = true;
  int64_t memory_bytes = 0;  // 0: the slot's memory
  int64_t processes = 1024;
  int64_t cpu_seconds = 0;
  int64_t wall_ms = 0;
  int64_t output_bytes = 4LL << 30;
  int64_t file_bytes = 0;
  int64_t tmp_bytes = 1LL << 30;
};

struct SiteConfig {
  std::string site_name = "site";
  std::string root;
  std::string listen = "127.0.0.1:7450";
  int64_t heartbeat_timeout_ms = 3000;
  int64_t heartbeat_interval_ms = 1000;
  int64_t reconnect_grace_ms = 2000;
  int max_attempts = 3;
  int64_t max_upload_bytes = 8LL << 30;
  std::string tls_cert;  // PEM files; both set: the port serves TLS only
  std::string tls_key;
  int64_t quote_timeout_ms = 2000;
  std::vector<PeerConfig> peers;
  JobPackageLimits limits;
  int64_t courier_chunk_bytes = 1 << 20;
  int64_t courier_max_rate = 0;
  int64_t remote_poll_ms = 1000;
  SandboxSiteConfig sandbox;

  bool has_peers() const { return !peers.empty(); }
  const PeerConfig* FindPeer(const std::string& name) const {
    for (const PeerConfig& p : peers) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }

  // [database] url: the resource database (OpenResourceDatabase); "" is the
  // embedded SQLite database at db_path().
  std::string database_url;
  // [web] listen: the HTTP listener (/healthz, /metrics); "" for none.
  std::string web_listen;
  // What the file and the flags set, for the start log (secrets not shown).
  std::vector<std::string> settings;
  std::string db_path() const { return root + "/db/frameflow.db"; }
  std::string web_address_file() const { return root + "/web.addr"; }
  std::string storage_dir() const { return root + "/storage"; }
  std::string blob_dir() const { return root + "/storage/blobs"; }
  std::string jobs_dir() const { return root + "/storage/jobs"; }
  std::string address_file() const { return root + "/schedule-server.addr"; }
  std::string hotfolder_in() const { return root + "/hotfolders/in"; }
  std::string hotfolder_out() const { return root + "/hotfolders/out"; }
  std::string quarantine_dir() const { return root + "/hotfolders/quarantine"; }
  // Per client and job: secure/<client>/<job>/ (0700).
  std::string secure_dir() const { return root + "/secure"; }
};

// Command-line values that replace keys of the file; applied before the
// file is validated, so a flag can supply a missing required key.
struct SiteConfigOverrides {
  std::string root;    // --root: site.root
  std::string listen;  // --listen: schedule_server.listen
};
Result<SiteConfig> LoadSiteConfig(const std::string& path,
                                  const SiteConfigOverrides& overrides = {});

// Why `listen` is not an address to listen on, or "" when it is:
// "<host>:<port>" (host a name, an IPv4 address or [IPv6]) with a port in
// 0..65535 (0 picks a free one), or "unix:<path>".
std::string ListenAddressProblem(const std::string& listen);

// Site names: [A-Za-z0-9._-]{1,64}, not starting with '.'.
bool ValidSiteName(const std::string& name);

}  // namespace ff
