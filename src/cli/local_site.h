// LocalSite: a whole site on this machine — one schedule server and N
// render servers as separate processes on loopback, in one site root. Used by
// `frameflow demo` and by the cross-daemon tests (a mini-cluster).
//
// Layout under root: site/ (the schedule server's site root), rs<i>/ (render
// server roots), config/ (generated TOML), logs/<daemon>.log.
// Thread-safety: not thread-safe; one owner drives it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"
#include "cli/client_commands.h"
#include "util/process.h"

namespace ff {

struct LocalSiteOptions {
  std::string binary;  // the frameflow executable
  std::string site_name = "local";
  // Extra TOML appended to site.toml (e.g. [[peers]], [hotfolders]).
  std::string site_extra;
  int render_servers = 2;
  int slots_per_server = 1;
  int cores_per_slot = 1;
  std::string heartbeat_timeout = "5s";
  std::string heartbeat_interval = "1s";
  std::string reconnect_grace = "2s";
  int max_attempts = 3;
  // Extra TOML appended to every render server config (e.g. [[packages]]).
  std::string render_server_extra;
  // Packages render servers probe (povray, blender).
  std::vector<std::string> probe = {"povray", "blender"};
  // The schedule server's listen address (schedule_server.listen); port 0
  // picks a free port. Its address file, which render servers and peers
  // dial, holds this host with the port chosen.
  std::string listen = "127.0.0.1:0";
  // Prepended to every daemon's command line, e.g. {"nsenter",
  // "--net=/run/netns/<ns>", "--"} to run the whole site in a network
  // namespace (not `ip netns exec`: its fresh /sys lacks /sys/fs/cgroup,
  // which the I/O wrapper needs). The prefix must exec the daemon, not fork
  // it, so the pid signalled is the daemon's.
  std::vector<std::string> exec_prefix;
};

class LocalSite {
 public:
  static Result<std::unique_ptr<LocalSite>> Start(const std::string& root,
                                                  const LocalSiteOptions& options);
  ~LocalSite();  // SIGINT to render servers, SIGTERM to the schedule server; waits

  Status StartScheduleServer();
  // Sends `signal` to the schedule server and reaps it.
  void StopScheduleServer(int signal);
  // -1 when it is not running. For signals that do not end it (SIGSTOP).
  int schedule_server_pid() const { return schedule_server_ ? schedule_server_->pid() : -1; }
  Status StartRenderServer(int index);
  // -1 when it is not running. For signals that do not end it (SIGSTOP).
  int render_server_pid(int index) const {
    const auto& p = render_servers_[static_cast<size_t>(index)];
    return p ? p->pid() : -1;
  }
  void StopRenderServer(int index, int signal);
  // Starts one more render server process from the config file `config`,
  // logging to logs/<log_name>.log; the caller owns (signals and reaps) it.
  Result<std::unique_ptr<RunningProcess>> StartExtraRenderServer(const std::string& config,
                                                                 const std::string& log_name) {
    return Spawn(log_name, {"render-server", "--config", config});
  }
  // Waits until `count` render servers are up (as `hosts` shows them).
  Status WaitForRenderServers(int count, int timeout_ms);

  ClientOptions client() const;
  const std::string& root() const { return root_; }
  std::string site_root() const { return root_ + "/site"; }
  // Where the schedule server of a LocalSite rooted at `root` writes its
  // address (a peer's address_file).
  static std::string AddressFileOf(const std::string& root) {
    return root + "/site/schedule-server.addr";
  }
  // A [[peers]] entry for site.toml naming the LocalSite `name` rooted at
  // `peer_root`, with the shared `secret`.
  static std::string PeerToml(const std::string& name, const std::string& peer_root,
                              const std::string& secret);
  // 32 hex characters from /dev/urandom.
  static std::string RandomSecret();
  std::string render_server_name(int index) const { return "rs" + std::to_string(index + 1); }
  std::string log_path(const std::string& daemon) const {
    return root_ + "/logs/" + daemon + ".log";
  }

 private:
  LocalSite(std::string root, LocalSiteOptions options)
      : root_(std::move(root)), options_(std::move(options)) {}
  Result<std::unique_ptr<RunningProcess>> Spawn(const std::string& name,
                                                const std::vector<std::string>& args);

  std::string root_;
  LocalSiteOptions options_;
  std::unique_ptr<RunningProcess> schedule_server_;
  std::vector<std::unique_ptr<RunningProcess>> render_servers_;
};

}  // namespace ff
