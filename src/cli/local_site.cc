#include "cli/local_site.h"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <thread>

#include "util/fs.h"

namespace ff {

Result<std::unique_ptr<LocalSite>> LocalSite::Start(const std::string& root,
                                                    const LocalSiteOptions& options) {
  std::unique_ptr<LocalSite> site(new LocalSite(root, options));
  for (const char* d : {"site", "config", "logs"}) FF_RETURN_IF_ERROR(MakeDirs(JoinPath(root, d)));
  std::string site_toml =
      "[site]\nname = \"" + options.site_name + "\"\nroot = \"" + site->site_root() +
      "\"\n\n[schedule_server]\nlisten = \"" + options.listen + "\"\nheartbeat_timeout = \"" +
      options.heartbeat_timeout + "\"\nheartbeat_interval = \"" + options.heartbeat_interval +
      "\"\nreconnect_grace = \"" + options.reconnect_grace +
      "\"\nmax_attempts = " + std::to_string(options.max_attempts) + "\n\n" + options.site_extra +
      "\n";
  FF_RETURN_IF_ERROR(WriteFileAtomic(root + "/config/site.toml", site_toml));
  for (int i = 0; i < options.render_servers; ++i) {
    std::string name = site->render_server_name(i);
    std::string probe;
    for (const auto& p : options.probe) probe += (probe.empty() ? "\"" : ", \"") + p + "\"";
    std::string toml = "name = \"" + name + "\"\nroot = \"" + root + "/" + name +
                       "\"\nschedule_server_file = \"" + site->site_root() +
                       "/schedule-server.addr\"\nheartbeat_interval = \"" +
                       options.heartbeat_interval + "\"\nprobe = [" + probe +
                       "]\n\n[[slots]]\n"
                       "name = \"s\"\ncores = " +
                       std::to_string(options.cores_per_slot) +
                       "\ncount = " + std::to_string(options.slots_per_server) + "\n\n" +
                       options.render_server_extra + "\n";
    FF_RETURN_IF_ERROR(WriteFileAtomic(root + "/config/" + name + ".toml", toml));
  }
  site->render_servers_.resize(static_cast<size_t>(options.render_servers));
  FF_RETURN_IF_ERROR(site->StartScheduleServer());
  for (int i = 0; i < options.render_servers; ++i) FF_RETURN_IF_ERROR(site->StartRenderServer(i));
  return site;
}

LocalSite::~LocalSite() {
  // SIGINT stops a render server at once (SIGTERM would drain it first).
  for (size_t i = 0; i < render_servers_.size(); ++i) StopRenderServer(static_cast<int>(i), SIGINT);
  StopScheduleServer(SIGTERM);
}

Result<std::unique_ptr<RunningProcess>> LocalSite::Spawn(const std::string& name,
                                                         const std::vector<std::string>& args) {
  auto log = std::make_shared<std::ofstream>(log_path(name), std::ios::app);
  ProcessSpec spec;
  spec.argv = options_.exec_prefix;
  spec.argv.push_back(options_.binary);
  spec.argv.insert(spec.argv.end(), args.begin(), args.end());
  return DefaultProcessLauncher()->Start(spec, [log](const std::string& line) {
    *log << line << '\n';
    log->flush();
  });
}

Status LocalSite::StartScheduleServer() {
  (void)::unlink((site_root() + "/schedule-server.addr").c_str());
  FF_ASSIGN_OR_RETURN(schedule_server_, Spawn("schedule-server", {"schedule-server", "--config",
                                                                  root_ + "/config/site.toml"}));
  // The address file appears once the server listens.
  std::string addr_file = site_root() + "/schedule-server.addr";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!PathExists(addr_file)) {
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable("the schedule server did not start within 30 s; see " +
                         log_path("schedule-server"));
    }
    if (::kill(schedule_server_->pid(), 0) != 0) {
      return Unavailable("the schedule server exited; see " + log_path("schedule-server"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return Status::Ok();
}

void LocalSite::StopScheduleServer(int signal) {
  if (!schedule_server_) return;
  ::kill(schedule_server_->pid(), signal);
  schedule_server_->Wait();
  schedule_server_.reset();
}

Status LocalSite::StartRenderServer(int index) {
  std::string name = render_server_name(index);
  FF_ASSIGN_OR_RETURN(
      render_servers_[static_cast<size_t>(index)],
      Spawn(name, {"render-server", "--config", root_ + "/config/" + name + ".toml"}));
  return Status::Ok();
}

void LocalSite::StopRenderServer(int index, int signal) {
  auto& p = render_servers_[static_cast<size_t>(index)];
  if (!p) return;
  // After SIGKILL its renderers die with it (they carry a parent-death
  // signal), as they would on a crashed host.
  ::kill(p->pid(), signal);
  p->Wait();
  p.reset();
}

Status LocalSite::WaitForRenderServers(int count, int timeout_ms) {
  FF_ASSIGN_OR_RETURN(auto stub, client().Connect());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (true) {
    frameflow::v1::ListHostsRequest req;
    frameflow::v1::ListHostsResponse resp;
    grpc::ClientContext ctx;
    if (stub->ListHosts(&ctx, req, &resp).ok()) {
      int up = 0;
      for (const auto& h : resp.hosts()) {
        if (h.status() == "up") ++up;
      }
      if (up >= count) return Status::Ok();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable(std::to_string(count) + " render server(s) did not register within " +
                         std::to_string(timeout_ms) + " ms; see " + root_ + "/logs/");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

std::string LocalSite::PeerToml(const std::string& name, const std::string& peer_root,
                                const std::string& secret) {
  return "[[peers]]\nname = \"" + name + "\"\naddress_file = \"" + AddressFileOf(peer_root) +
         "\"\nsecret = \"" + secret + "\"\n\n";
}

std::string LocalSite::RandomSecret() {
  unsigned char bytes[16] = {};
  std::ifstream in("/dev/urandom", std::ios::binary);
  in.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

ClientOptions LocalSite::client() const {
  ClientOptions o;
  o.site_root = site_root();
  return o;
}

}  // namespace ff
