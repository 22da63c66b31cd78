#include "cli/cli.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli/client_commands.h"
#include "cli/local_site.h"
#include "render/render_config.h"
#include "render/render_server.h"
#include "rpc/grpc_status.h"
#include "scheduler/service.h"
#include "scheduler/site_config.h"
#include "util/fs.h"

namespace ff {

namespace pb = frameflow::v1;

namespace {

// Prints an error as one sentence and returns the exit code for it.
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

int ExitForJob(const pb::JobInfo& j) { return j.state() == "done" ? 0 : 1; }

std::string SelfExe() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "frameflow" : p.string();
}

std::string DefaultExamplesDir() {
  // Next to the binary's source tree when run from a build, else installed.
  std::string exe = SelfExe();
  for (const std::string& c :
       {std::string(FRAMEFLOW_SOURCE_DIR) + "/examples", DirName(DirName(exe)) + "/examples",
        std::string("/usr/share/frameflow/examples")}) {
    if (PathExists(c)) return c;
  }
  return std::string(FRAMEFLOW_SOURCE_DIR) + "/examples";
}

int RunDemo(const std::string& example, bool keep_running) {
  auto root = MakeTempDir("frameflow-demo");
  if (!root.ok()) return Fail(root.status());
  std::cout << "frameflow demo: site root " << *root << "\n";
  LocalSiteOptions opts;
  opts.binary = SelfExe();
  opts.render_servers = 2;
  opts.slots_per_server = 1;
  opts.cores_per_slot = 1;
  opts.probe = {"povray"};
  std::cout << "starting a schedule server and 2 render servers on loopback...\n";
  auto site = LocalSite::Start(*root, opts);
  if (!site.ok()) return Fail(site.status());
  Status st = (*site)->WaitForRenderServers(2, 30000);
  if (!st.ok()) return Fail(st);
  auto stub = (*site)->client().Connect();
  if (!stub.ok()) return Fail(stub.status());
  {
    pb::ListHostsRequest req;
    pb::ListHostsResponse hosts;
    grpc::ClientContext ctx;
    (void)(*stub)->ListHosts(&ctx, req, &hosts);
    PrintHosts(hosts, false, std::cout);
  }
  std::cout << "submitting " << example << "\n";
  auto id = SubmitJob(stub->get(), example);
  if (!id.ok()) return Fail(id.status());
  std::cout << "job " << *id << " submitted\n";
  auto info = WaitForJob(stub->get(), *id, true);
  if (!info.ok()) return Fail(info.status());
  auto detail = GetJobInfo(stub->get(), *id);
  if (!detail.ok()) return Fail(detail.status());
  std::cout << "\n";
  PrintJob(*detail, false, std::cout);
  std::string fetched = *root + "/fetched";
  int count = 0;
  st = FetchOutputs(stub->get(), *id, fetched, &count);
  if (!st.ok()) return Fail(st);
  std::cout << "\nframes on site storage: " << detail->storage_dir() << "\n";
  std::cout << "fetched " << count << " frame(s) to " << fetched << " (frameflow fetch " << *id
            << " DIR)\n";
  std::cout << "daemon logs: " << *root << "/logs/\n";
  if (keep_running) {
    std::cout << "site running; schedule server address in " << (*site)->site_root()
              << "/schedule-server.addr. Ctrl-C to stop.\n";
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, nullptr);
    int sig;
    sigwait(&set, &sig);
  }
  return ExitForJob(*detail);
}

}  // namespace

int RunCli(int argc, char** argv) {
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

  std::string example;
  bool keep = false;
  auto* demo = app.add_subcommand("demo", "start a local site and render an example animation");
  demo->add_option("--job", example, "job description to render (default: the POV-Ray example)");
  demo->add_flag("--keep-running", keep, "leave the site running after the job");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

  if (ss->parsed()) {
    auto cfg = LoadSiteConfig(config);
    if (!cfg.ok()) return Fail(cfg.status());
    if (!listen.empty()) cfg->listen = listen;
    if (!root.empty()) cfg->root = root;
    Status st = RunScheduleServer(*cfg);
    return st.ok() ? 0 : Fail(st);
  }
  if (rs->parsed()) {
    auto cfg = LoadRenderServerConfig(config);
    if (!cfg.ok()) return Fail(cfg.status());
    if (!rs_name.empty()) cfg->name = rs_name;
    if (!rs_server.empty()) cfg->schedule_server = rs_server;
    if (!root.empty()) cfg->root = root;
    Status st = RunRenderServer(*cfg);
    return st.ok() ? 0 : Fail(st);
  }
  if (demo->parsed()) {
    if (example.empty()) example = DefaultExamplesDir() + "/clock/clock.toml";
    return RunDemo(example, keep);
  }

  auto stub = client.Connect();
  if (!stub.ok()) return Fail(stub.status());
  pb::ScheduleServer::Stub* s = stub->get();
  if (submit->parsed()) {
    auto id = SubmitJob(s, file);
    if (!id.ok()) return Fail(id.status());
    if (client.json && !wait) {
      std::cout << "{\"job_id\": " << *id << "}\n";
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
      std::cout << "{\"render_server\": \"" << resp.render_server()
                << "\", \"attempt\": " << resp.attempt() << "}\n";
    }
    std::cout << resp.text();
    return 0;
  }
  if (cancel->parsed()) {
    pb::JobRef ref;
    ref.set_job_id(job_id);
    pb::JobInfo info;
    grpc::ClientContext ctx;
    grpc::Status gs = s->CancelJob(&ctx, ref, &info);
    if (!gs.ok()) return Fail(FromGrpc(gs, "CancelJob"));
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
    if (client.json) {
      std::cout << "{\"fetched\": " << count << ", \"dir\": \"" << dir << "\"}\n";
    } else {
      std::cout << "fetched " << count << " frame(s) into " << dir << "\n";
    }
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
