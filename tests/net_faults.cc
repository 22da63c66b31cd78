#include "net_faults.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <thread>

#include "test_support.h"
#include "util/fs.h"

namespace ff::testing {

namespace {

constexpr char kPrefix[] = "ffnf";
constexpr char kTable[] = "ffnf";

std::string Tool(const std::string& name) {
  for (const char* dir : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    if (::access((dir + name).c_str(), X_OK) == 0) return dir + name;
  }
  return name;  // let the PATH lookup say it is missing
}

std::string Join(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) out += (out.empty() ? "" : " ") + a;
  return out;
}

Status RunTool(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv);
  if (r.exit_code == 0) return Status::Ok();
  return Unavailable("'" + Join(argv) + "' failed (exit " + std::to_string(r.exit_code) +
                     "): " + r.err + r.out);
}

// Deletes namespaces of this helper whose creating process is gone.
void SweepStale() {
  CommandResult r = RunCommand({Tool("ip"), "netns", "list"});
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    std::string name = line.substr(0, line.find(' '));
    if (name.rfind(kPrefix, 0) != 0) continue;
    const std::string rest = name.substr(sizeof kPrefix - 1);
    const size_t dash = rest.find('-');
    if (dash == std::string::npos || dash == 0) continue;
    char* end = nullptr;
    const long pid = std::strtol(rest.substr(0, dash).c_str(), &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      (void)RunCommand({Tool("ip"), "netns", "del", name});
    }
  }
}

}  // namespace

Result<std::unique_ptr<NetPair>> NetPair::Create() {
  static std::atomic<int> counter{0};
  SweepStale();
  const int n = counter++;
  std::unique_ptr<NetPair> p(new NetPair());
  const std::string base =
      std::string(kPrefix) + std::to_string(::getpid()) + "-" + std::to_string(n);
  p->ns_[kA] = base + "a";
  p->ns_[kB] = base + "b";
  const std::string net = "10.213." + std::to_string(n % 256) + ".";
  p->addr_[kA] = net + "1";
  p->addr_[kB] = net + "2";
  const std::string ip = Tool("ip");
  for (Side s : {kA, kB}) {
    FF_RETURN_IF_ERROR(RunTool({ip, "netns", "add", p->ns_[s]}));
    p->made_[s] = true;
  }
  // Both ends are made inside their namespaces: nothing appears in ours.
  FF_RETURN_IF_ERROR(RunTool({ip, "link", "add", p->dev_, "netns", p->ns_[kA], "type", "veth",
                              "peer", "name", p->dev_, "netns", p->ns_[kB]}));
  for (Side s : {kA, kB}) {
    FF_RETURN_IF_ERROR(
        RunTool({ip, "-n", p->ns_[s], "addr", "add", p->addr_[s] + "/30", "dev", p->dev_}));
    FF_RETURN_IF_ERROR(RunTool({ip, "-n", p->ns_[s], "link", "set", p->dev_, "up"}));
    FF_RETURN_IF_ERROR(RunTool({ip, "-n", p->ns_[s], "link", "set", "lo", "up"}));
  }
  // netem when the kernel has it; otherwise nftables and tbf, which must
  // work (a missing mechanism fails the test, it does not skip it).
  std::vector<std::string> tc = p->ExecPrefix(kA);
  tc.insert(tc.end(),
            {Tool("tc"), "qdisc", "add", "dev", p->dev_, "root", "netem", "delay", "1ms"});
  CommandResult netem = RunCommand(tc);
  if (netem.exit_code == 0) {
    p->netem_ = true;
    p->mechanism_ = "netem (tc qdisc netem delay/loss/rate) + nftables drop-all for cuts";
  } else {
    std::string why = netem.err;
    while (!why.empty() && (why.back() == '\n' || why.back() == '.')) why.pop_back();
    p->mechanism_ = "no netem in this kernel (tc: " + why +
                    "): loss = nftables numgen random drop rule, delay/slow link = tbf rate limit "
                    "(queueing delay), cut = nftables drop-all";
  }
  FF_RETURN_IF_ERROR(p->Shape(LinkShape{}));
  if (!p->netem_) {
    // Probe tbf now, so a missing qdisc fails here and not mid-test.
    FF_RETURN_IF_ERROR(p->Shape(LinkShape{100'000, 0, 0}));
    FF_RETURN_IF_ERROR(p->Shape(LinkShape{}));
  }
  return p;
}

NetPair::~NetPair() {
  for (Side s : {kA, kB}) {
    if (made_[s]) (void)RunTool({Tool("ip"), "netns", "del", ns_[s]});
  }
}

// nsenter, not `ip netns exec`: that one also makes a mount namespace with
// a fresh /sys, without /sys/fs/cgroup, which the I/O wrapper needs.
std::vector<std::string> NetPair::ExecPrefix(Side s) const {
  return {Tool("nsenter"), "--net=/run/netns/" + ns_[s], "--"};
}

Status NetPair::Run(Side s, const std::vector<std::string>& argv) const {
  std::vector<std::string> full = ExecPrefix(s);
  full.insert(full.end(), argv.begin(), argv.end());
  return RunTool(full);
}

Status NetPair::Shape(const LinkShape& shape) {
  if (!netem_ && shape.delay_ms > 0 && shape.rate_kbit == 0) {
    return InvalidArgument("a delay without netem is the queue of a rate limit: set rate_kbit");
  }
  const std::string tc = Tool("tc");
  for (Side s : {kA, kB}) {
    // Start from the default qdisc ("del" fails when there is none to delete).
    (void)Run(s, {tc, "qdisc", "del", "dev", dev_, "root"});
    if (netem_) {
      if (shape.rate_kbit == 0 && shape.delay_ms == 0 && shape.loss_percent == 0) continue;
      std::vector<std::string> cmd = {tc,     "qdisc", "add",   "dev",  dev_,
                                      "root", "netem", "limit", "10000"};
      if (shape.delay_ms > 0)
        cmd.insert(cmd.end(), {"delay", std::to_string(shape.delay_ms) + "ms"});
      if (shape.loss_percent > 0) {
        cmd.insert(cmd.end(), {"loss", std::to_string(shape.loss_percent) + "%"});
      }
      if (shape.rate_kbit > 0) {
        cmd.insert(cmd.end(), {"rate", std::to_string(shape.rate_kbit) + "kbit"});
      }
      FF_RETURN_IF_ERROR(Run(s, cmd));
    } else if (shape.rate_kbit > 0) {
      // The queue holds up to `latency` of traffic: a bulk transfer fills
      // it, and every packet behind it waits that long.
      const int latency = std::max(shape.delay_ms, 50);
      FF_RETURN_IF_ERROR(Run(s, {tc, "qdisc", "add", "dev", dev_, "root", "tbf", "rate",
                                 std::to_string(shape.rate_kbit) + "kbit", "burst", "32kb",
                                 "latency", std::to_string(latency) + "ms"}));
    }
  }
  shape_ = shape;
  return ApplyNft();
}

Status NetPair::Cut() {
  cut_ = true;
  return ApplyNft();
}

Status NetPair::Uncut() {
  cut_ = false;
  return ApplyNft();
}

// One table per namespace, replaced as a whole (nft -f applies a file
// atomically): the drop-all rules of a cut and, without netem, the loss rule
// on what leaves through the veth end (so each direction loses its share).
Status NetPair::ApplyNft() const {
  std::string rules_out, rules_in;
  if (cut_) {
    rules_out += "    oifname \"" + dev_ + "\" drop\n";
    rules_in += "    iifname \"" + dev_ + "\" drop\n";
  }
  if (!netem_ && shape_.loss_percent > 0) {
    rules_out += "    oifname \"" + dev_ + "\" numgen random mod 100 < " +
                 std::to_string(shape_.loss_percent) + " drop\n";
  }
  const std::string table = std::string("inet ") + kTable;
  const std::string script =
      "table " + table + "\ndelete table " + table + "\ntable " + table +
      " {\n  chain out {\n    type filter hook output priority 0;\n" + rules_out +
      "  }\n  chain in {\n    type filter hook input priority 0;\n" + rules_in + "  }\n}\n";
  TempDir dir;
  const std::string file = dir.path() + "/rules.nft";
  WriteText(file, script);
  for (Side s : {kA, kB}) FF_RETURN_IF_ERROR(Run(s, {Tool("nft"), "-f", file}));
  return Status::Ok();
}

Result<int> NetPair::ConnectFrom(Side s, const std::string& host_port) const {
  const size_t colon = host_port.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("'" + host_port + "': no port");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(std::atoi(host_port.substr(colon + 1).c_str())));
  if (::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &sa.sin_addr) != 1) {
    return InvalidArgument("'" + host_port + "': not an IPv4 address");
  }
  // setns changes the namespace of the calling thread only: a thread of its
  // own enters, makes the socket (which stays in that namespace for its
  // life) and ends.
  Result<int> out = Internal("not run");
  std::thread t([&] {
    const std::string path = "/run/netns/" + ns_[s];
    int nsfd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (nsfd < 0) {
      out = ErrnoError("cannot open", path, errno);
      return;
    }
    const int rc = ::setns(nsfd, CLONE_NEWNET);
    const int setns_errno = errno;
    ::close(nsfd);
    if (rc != 0) {
      out = ErrnoError("cannot enter network namespace", path, setns_errno);
      return;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      out = ErrnoError("cannot create a socket in", path, errno);
      return;
    }
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&sa), sizeof sa) != 0) {
      out = ErrnoError("cannot connect to " + host_port + " from", path, errno);
      ::close(fd);
      return;
    }
    out = fd;
  });
  t.join();
  return out;
}

}  // namespace ff::testing
