// Network faults for cross-site tests: two network namespaces joined by a
// veth pair (one site in each), and faults on that link — cut, packet loss,
// delay, a slow link.
//
// Mechanisms: tc netem (delay, loss, rate) when the kernel has it; otherwise
// loss is an nftables `numgen random` drop rule and the slow link a tbf
// rate limit (its queue is the only delay there is: no fixed latency without
// netem). A cut is an nftables drop-all rule in both namespaces, so TCP
// connections are not reset: they stall, as behind a pulled cable.
// mechanism() says which one is in use.
//
// REQUIRES: root, iproute2 (ip, tc), nftables (nft), util-linux (nsenter). Nothing outside the
// two namespaces is touched: they are made by Create and deleted by the
// destructor (with their veth ends); namespaces a killed earlier run of this
// helper left behind (its pid no longer exists) are deleted by Create.
// Thread-safety: not thread-safe; one owner drives it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/status.h"

namespace ff::testing {

struct LinkShape {
  int64_t rate_kbit = 0;  // 0: unlimited
  int delay_ms = 0;       // netem only; emulated: the rate limit's queue
  int loss_percent = 0;   // each direction
};

class NetPair {
 public:
  enum Side { kA = 0, kB = 1 };

  // Namespaces ffnf<pid>-<n>{a,b}; the veth ends are 10.213.<n>.1/30 (a) and
  // .2/30 (b), with <n> counting pairs made by this process.
  static Result<std::unique_ptr<NetPair>> Create();
  ~NetPair();  // deletes both namespaces
  NetPair(const NetPair&) = delete;
  NetPair& operator=(const NetPair&) = delete;

  const std::string& ns(Side s) const { return ns_[s]; }
  const std::string& address(Side s) const { return addr_[s]; }  // "10.213.n.1"
  // {"/usr/bin/nsenter", "--net=/run/netns/<ns>", "--"}: runs a command in
  // the network namespace of `s` (and nothing else changed; it execs).
  std::vector<std::string> ExecPrefix(Side s) const;
  // "netem" or "nftables numgen loss + tbf rate (no netem in this kernel)".
  const std::string& mechanism() const { return mechanism_; }

  // Both directions of the link. Shape replaces the previous shape; Cut
  // drops every packet on top of it until Uncut.
  Status Shape(const LinkShape& shape);
  Status Cut();
  Status Uncut();
  bool cut() const { return cut_; }

  // A TCP socket connected to `host_port` from inside namespace `s`
  // (owned by the caller): for a gRPC channel made from the fd, since
  // channels dial lazily from gRPC's own threads, which are outside.
  Result<int> ConnectFrom(Side s, const std::string& host_port) const;

 private:
  NetPair() = default;
  Status Run(Side s, const std::vector<std::string>& argv) const;
  Status ApplyNft() const;

  std::string ns_[2];
  std::string addr_[2];
  std::string dev_ = "ffl0";  // the veth end's name, in each namespace
  std::string mechanism_;
  bool netem_ = false;
  bool cut_ = false;
  LinkShape shape_;
  bool made_[2] = {false, false};
};

}  // namespace ff::testing
