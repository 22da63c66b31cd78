#include "cli/cli.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/client_commands.h"
#include "cli/local_site.h"
#include "render/render_config.h"
#include "rpc/grpc_status.h"
#include "scheduler/site_config.h"
#include "server/shutdown_signals.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

// Prints an error as one sentence and returns the exit code for it.

int ExitForJob(const pb::JobInfo& j) { return j.state() == "done" ? 0 : 1; }

std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "frameflow" : p.string();
}

// The examples the demo renders: $FRAMEFLOW_EXAMPLES, else found relative to
// the binary (<dir>/../examples from a build directory in the source tree,
// <prefix>/share/frameflow/examples when installed), else the Debian path.
// The binary holds no path of the tree it was built from.
std::string DefaultExamplesDir() {
  if (const char* env = std::getenv("FRAMEFLOW_EXAMPLES"); env && *env) return env;
  const std::string up = DirName(DirName(SelfExe()));
  for (const std::string& c : {up + "/examples", up + "/share/frameflow/examples",
                               std::string("/usr/share/frameflow/examples")}) {
    if (PathExists(c + "/clock/clock.toml")) return c;
  }
  return up + "/examples";
}

// Prints a progress line per job whenever one changes, until all ended.
Result<std::vector<pb::JobInfo>> WatchJobs(
    const std::vector<std::pair<std::string, pb::ScheduleServer::Stub*>>& sites,
    const std::vector<int64_t>& ids) {
  std::vector<std::string> last(ids.size());
  std::vector<pb::JobInfo> infos(ids.size());
  while (true) {
    bool all_final = true;
    bool changed = false;
    for (size_t i = 0; i < ids.size(); ++i) {
      pb::JobRef ref;
      ref.set_job_id(ids[i]);
      grpc::ClientContext ctx;
      pb::JobInfo info;
      grpc::Status gs = sites[i].second->GetJob(&ctx, ref, &info);
      if (!gs.ok()) return FromGrpc(gs, "GetJob");
      std::string line = sites[i].first + " " + ProgressLine(info);
      if (!info.remote_site().empty() && info.state() != "done") {
        line += "  [" + QueueText(info) + "]";
      }
      if (line != last[i]) changed = true;
      last[i] = line;
      infos[i] = info;
      if (info.state() != "done" && info.state() != "failed" && info.state() != "cancelled") {
        all_final = false;
      }
    }
    if (changed) {
      for (const auto& l : last) std::cout << l << "\n";
      std::cout << std::flush;
    }
    if (all_final) return infos;
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

// Two sites on loopback: "studio" (2 render servers with one-core slots)
// and the remote rendering site "render-co" (2 render servers with two-core
// slots), peers of each other. One job renders at the studio; the other
// needs two-core slots, so `auto` placement outsources it to render-co
// through the hot folders.
int RunDemo(const std::string& local_job, const std::string& remote_job, bool keep_running) {
  auto root = MakeTempDir("frameflow-demo");
  if (!root.ok()) return Fail(root.status());
  std::cout << "frameflow demo: sites under " << *root << "\n";
  const std::string studio_root = *root + "/studio";
  const std::string remote_root = *root + "/render-co";
  const std::string secret = LocalSite::RandomSecret();
  LocalSiteOptions studio;
  studio.binary = SelfExe();
  studio.site_name = "studio";
  studio.render_servers = 2;
  studio.slots_per_server = 1;
  studio.cores_per_slot = 1;
  studio.probe = {"povray"};
  studio.site_extra =
      LocalSite::PeerToml("render-co", remote_root, secret) + "[courier]\npoll = \"250ms\"\n";
  LocalSiteOptions remote = studio;
  remote.site_name = "render-co";
  remote.cores_per_slot = 2;
  remote.site_extra = LocalSite::PeerToml("studio", studio_root, secret);
  std::cout << "starting site 'render-co' (remote): a schedule server and 2 render servers with "
               "two-core slots...\n";
  auto remote_site = LocalSite::Start(remote_root, remote);
  if (!remote_site.ok()) return Fail(remote_site.status());
  std::cout << "starting site 'studio' (local): a schedule server and 2 render servers with "
               "one-core slots...\n";
  auto studio_site = LocalSite::Start(studio_root, studio);
  if (!studio_site.ok()) return Fail(studio_site.status());
  Status st = (*remote_site)->WaitForRenderServers(2, 30000);
  if (st.ok()) st = (*studio_site)->WaitForRenderServers(2, 30000);
  if (!st.ok()) return Fail(st);
  auto stub = (*studio_site)->client().Connect();
  if (!stub.ok()) return Fail(stub.status());
  auto remote_stub = (*remote_site)->client().Connect();
  if (!remote_stub.ok()) return Fail(remote_stub.status());
  {
    pb::ListHostsRequest req;
    pb::ListHostsResponse hosts;
    grpc::ClientContext ctx;
    (void)(*stub)->ListHosts(&ctx, req, &hosts);
    std::cout << "\nstudio render servers:\n";
    PrintHosts(hosts, false, std::cout);
  }
  std::vector<int64_t> ids;
  for (const std::string& job : {local_job, remote_job}) {
    std::cout << "submitting " << job << " to the studio\n";
    auto id = SubmitJob(stub->get(), job);
    if (!id.ok()) return Fail(id.status());
    auto info = GetJobInfo(stub->get(), *id);
    if (!info.ok()) return Fail(info.status());
    std::cout << "job " << *id << " '" << info->name() << "': " << QueueText(*info) << " ("
              << info->placement() << ")\n";
    ids.push_back(*id);
  }
  std::cout << "\n";
  auto infos = WatchJobs({{"studio", stub->get()}, {"studio", stub->get()}}, ids);
  if (!infos.ok()) return Fail(infos.status());
  int exit_code = 0;
  for (int64_t id : ids) {
    auto detail = GetJobInfo(stub->get(), id);
    if (!detail.ok()) return Fail(detail.status());
    std::cout << "\n";
    PrintJob(*detail, false, std::cout);
    std::string fetched = *root + "/fetched/job-" + std::to_string(id);
    int count = 0;
    st = FetchOutputs(stub->get(), id, fetched, &count);
    if (!st.ok()) return Fail(st);
    std::cout << "  fetched " << count << " frame(s) to " << fetched << "\n";
    if (exit_code == 0) exit_code = ExitForJob(*detail);
    // An outsourced job rendered inside render-co's I/O wrapper: show how.
    if (detail->remote_job_id() != 0) {
      auto there = GetJobInfo(remote_stub->get(), detail->remote_job_id());
      if (there.ok() && !there->sandbox().empty()) {
        std::cout << "  at render-co (frameflow show " << detail->remote_job_id() << " --site "
                  << (*remote_site)->site_root() << "):\n    sandbox: " << there->sandbox() << "\n";
      }
    }
  }
  {
    pb::ListPeersRequest req;
    pb::ListPeersResponse peers;
    grpc::ClientContext ctx;
    if ((*stub)->ListPeers(&ctx, req, &peers).ok()) {
      std::cout << "\nstudio's peers (frameflow peers --site " << (*studio_site)->site_root()
                << "):\n";
      PrintPeers(peers, false, std::cout);
    }
  }
  std::cout << "\ndaemon logs: " << *root << "/{studio,render-co}/logs/\n";
  if (keep_running) {
    std::cout << "sites running; studio: --site " << (*studio_site)->site_root()
              << ", render-co: --site " << (*remote_site)->site_root() << ". Ctrl-C to stop.\n";
    auto signals = ShutdownSignals::Install();
    if (!signals.ok()) return Fail(signals.status());
    (*signals)->Wait();
  }
  return exit_code;
}

}  // namespace

int Fail(const Status& st) {
  std::cerr << "frameflow: " << st.message() << "\n";
  switch (st.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
      return 2;
    case StatusCode::kNotFound:
      return 3;
    case StatusCode::kUnavailable:
      return 4;
    default:
      return 1;
  }
}

int RunCli(int argc, char** argv, const DaemonEntryPoints& daemons) {
  CLI::App app{"frameflow: a distributed render-farm manager"};
  app.require_subcommand(1);
  ClientOptions client;
  auto add_client_opts = [&](CLI::App* sub) {
    sub->add_option("--server", client.server,
                    "schedule server address host:port (default $FRAMEFLOW_SERVER or "
                    "127.0.0.1:7450)");
    sub->add_option("--site", client.site_root, "site root of a local schedule server");
    sub->add_flag("--json", client.json, "machine-readable output");
  };

  std::string config;
  std::string listen, root;
  auto* ss = app.add_subcommand("schedule-server", "run a site's schedule server");
  ss->add_option("--config", config, "site config (TOML)")->required();
  ss->add_option("--listen", listen, "override schedule_server.listen");
  ss->add_option("--root", root, "override site.root");

  std::string rs_name, rs_server;
  auto* rs = app.add_subcommand("render-server", "run a render server on this host");
  rs->add_option("--config", config, "render server config (TOML)")->required();
  rs->add_option("--name", rs_name, "override name");
  rs->add_option("--schedule-server", rs_server, "override schedule_server address");
  rs->add_option("--root", root, "override root");

  std::string file;
  bool wait = false;
  auto* submit = app.add_subcommand("submit", "submit a render job description");
  submit->add_option("FILE", file, "job description (TOML)")->required();
  submit->add_flag("--wait", wait, "follow the job with a progress bar until it ends");
  add_client_opts(submit);

  bool all = false;
  auto* jobs = app.add_subcommand("jobs", "list jobs");
  jobs->add_flag("--all,-a", all, "include finished jobs");
  add_client_opts(jobs);

  int64_t job_id = 0;
  auto* show = app.add_subcommand("show", "show a job: frames, chunks, render servers");
  show->add_option("JOB", job_id, "job id")->required();
  add_client_opts(show);

  double wait_timeout = 0;
  auto* waitc = app.add_subcommand("wait", "wait until a job ends (exit 0 when done)");
  waitc->add_option("JOB", job_id, "job id")->required();
  waitc->add_option("--timeout", wait_timeout, "give up after this many seconds (exit 4)");
  add_client_opts(waitc);

  int64_t frame = 0;
  auto* logs = app.add_subcommand("logs", "print the render log of one frame");
  logs->add_option("JOB", job_id, "job id")->required();
  logs->add_option("FRAME", frame, "frame number")->required();
  add_client_opts(logs);

  auto* cancel = app.add_subcommand("cancel", "cancel a job");
  cancel->add_option("JOB", job_id, "job id")->required();
  add_client_opts(cancel);

  std::string dir;
  auto* fetch = app.add_subcommand("fetch", "download a job's frames");
  fetch->add_option("JOB", job_id, "job id")->required();
  fetch->add_option("DIR", dir, "destination directory")->required();
  add_client_opts(fetch);

  auto* hosts = app.add_subcommand("hosts", "list render servers: hardware, packages, slots");
  add_client_opts(hosts);

  auto* peers = app.add_subcommand("peers", "list remote sites: link state, courier counters");
  add_client_opts(peers);

  std::string example, remote_example;
  bool keep = false;
  auto* demo = app.add_subcommand(
      "demo", "start two sites on loopback; render one job locally and outsource another");
  demo->add_option("--job", example, "job rendered locally (default: examples/clock/clock.toml)");
  demo->add_option("--outsourced-job", remote_example,
                   "job outsourced to the remote site (default: "
                   "examples/clock/clock_outsourced.toml)");
  demo->add_flag("--keep-running", keep, "leave the site running after the job");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  if (ss->parsed()) {
    return daemons.schedule_server(DaemonArgs{config, listen, root, "", ""});
  }
  if (rs->parsed()) {
    return daemons.render_server(DaemonArgs{config, "", root, rs_name, rs_server});
  }
  if (demo->parsed()) {
    if (example.empty()) example = DefaultExamplesDir() + "/clock/clock.toml";
    if (remote_example.empty()) {
      remote_example = DefaultExamplesDir() + "/clock/clock_outsourced.toml";
    }
    return RunDemo(example, remote_example, keep);
  }

  auto stub = client.Connect();
  if (!stub.ok()) return Fail(stub.status());
  pb::ScheduleServer::Stub* s = stub->get();
  if (submit->parsed()) {
    std::vector<std::string> warnings;
    auto id = SubmitJob(s, file, &warnings);
    if (!id.ok()) return Fail(id.status());
    for (const auto& w : warnings) std::cerr << "frameflow: warning: " << w << "\n";
    if (client.json && !wait) {
      nlohmann::json j = {{"job_id", *id}};
      if (!warnings.empty()) j["warnings"] = warnings;
      std::cout << j.dump(2) << "\n";
    } else {
      std::cout << *id << "\n";
    }
    if (!wait) return 0;
    auto info = WaitForJob(s, *id, !client.json);
    if (!info.ok()) return Fail(info.status());
    if (client.json) {
      PrintJob(*info, true, std::cout);
    } else {
      std::cout << "job " << *id << " " << info->state()
                << (info->error().empty() ? "" : ": " + info->error()) << "\n";
    }
    return ExitForJob(*info);
  }
  if (jobs->parsed()) {
    pb::ListJobsRequest req;
    req.set_include_finished(all);
    pb::ListJobsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status gs = s->ListJobs(&ctx, req, &resp);
    if (!gs.ok()) return Fail(FromGrpc(gs, "ListJobs"));
    PrintJobs({resp.jobs().begin(), resp.jobs().end()}, client.json, std::cout);
    return 0;
  }
  if (show->parsed()) {
    auto info = GetJobInfo(s, job_id);
    if (!info.ok()) return Fail(info.status());
    PrintJob(*info, client.json, std::cout);
    return 0;
  }
  if (waitc->parsed()) {
    auto info = WaitForJob(s, job_id, !client.json, static_cast<int64_t>(wait_timeout * 1000));
    if (!info.ok()) return Fail(info.status());
    if (client.json) {
      PrintJob(*info, true, std::cout);
    } else {
      std::cout << "job " << job_id << " " << info->state()
                << (info->error().empty() ? "" : ": " + info->error()) << "\n";
    }
    return ExitForJob(*info);
  }
  if (logs->parsed()) {
    pb::LogsRequest req;
    req.set_job_id(job_id);
    req.set_frame(frame);
    pb::LogsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status gs = s->GetLogs(&ctx, req, &resp);
    if (!gs.ok()) return Fail(FromGrpc(gs, "GetLogs"));
    if (client.json) {
      std::cout << ToJson(resp) << "\n";  // one document, the text in it
    } else {
      std::cout << resp.text();
    }
    return 0;
  }
  if (cancel->parsed()) {
    pb::JobRef ref;
    ref.set_job_id(job_id);
    pb::JobInfo info;
    grpc::ClientContext ctx;
    grpc::Status gs = s->CancelJob(&ctx, ref, &info);
    if (!gs.ok()) return Fail(FromGrpc(gs, "CancelJob"));
    if (info.state() == "done" || info.state() == "failed") {
      // It had ended before: nothing was cancelled.
      return Fail(FailedPrecondition("job " + std::to_string(job_id) + " had already ended (" +
                                     info.state() + "); nothing to cancel"));
    }
    if (client.json) {
      PrintJob(info, true, std::cout);
    } else {
      std::cout << "job " << job_id << " " << info.state() << "\n";
    }
    return 0;
  }
  if (fetch->parsed()) {
    int count = 0;
    Status st = FetchOutputs(s, job_id, dir, &count);
    if (!st.ok()) return Fail(st);
    auto info = GetJobInfo(s, job_id);
    if (!info.ok()) return Fail(info.status());
    // Exit 0 only for every frame of a finished job, as `wait` does; a
    // cancelled, failed or unfinished job gives what it has and says so.
    const std::string state = info->state();
    std::string note;
    if (state != "done") {
      note = "job " + std::to_string(job_id) + " is " + state +
             (info->error().empty() ? "" : " (" + info->error() + ")") + ": " +
             std::to_string(count) + " of " + std::to_string(info->frames_total()) +
             " frame(s) finished";
    }
    if (client.json) {
      nlohmann::json j = {{"fetched", count},
                          {"frames_total", info->frames_total()},
                          {"dir", dir},
                          {"state", state}};
      if (!note.empty()) j["note"] = note;
      std::cout << j.dump(2) << "\n";
    } else if (count == 0 && !note.empty()) {
      std::cerr << "frameflow: " << note << "; nothing to fetch\n";
    } else {
      std::cout << "fetched " << count << " frame(s) into " << dir << "\n";
      if (!note.empty()) std::cerr << "frameflow: " << note << "\n";
    }
    return state == "done" ? 0 : 1;
  }
  if (peers->parsed()) {
    pb::ListPeersRequest req;
    pb::ListPeersResponse resp;
    grpc::ClientContext ctx;
    grpc::Status gs = s->ListPeers(&ctx, req, &resp);
    if (!gs.ok()) return Fail(FromGrpc(gs, "ListPeers"));
    PrintPeers(resp, client.json, std::cout);
    return 0;
  }
  if (hosts->parsed()) {
    pb::ListHostsRequest req;
    pb::ListHostsResponse resp;
    grpc::ClientContext ctx;
    grpc::Status gs = s->ListHosts(&ctx, req, &resp);
    if (!gs.ok()) return Fail(FromGrpc(gs, "ListHosts"));
    PrintHosts(resp, client.json, std::cout);
    return 0;
  }
  return 0;
}

}  // namespace ff
