#include "sandbox/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace ff::sandbox {

namespace {

// Debian 12's kernel headers stop at ABI 2; the later rights and fields are
// defined here with the kernel's values.
constexpr uint64_t kFsExecute = 1ULL << 0;
constexpr uint64_t kFsWriteFile = 1ULL << 1;
constexpr uint64_t kFsReadFile = 1ULL << 2;
constexpr uint64_t kFsReadDir = 1ULL << 3;
constexpr uint64_t kFsRemoveDir = 1ULL << 4;
constexpr uint64_t kFsRemoveFile = 1ULL << 5;
constexpr uint64_t kFsMakeChar = 1ULL << 6;
constexpr uint64_t kFsMakeDir = 1ULL << 7;
constexpr uint64_t kFsMakeReg = 1ULL << 8;
constexpr uint64_t kFsMakeSock = 1ULL << 9;
constexpr uint64_t kFsMakeFifo = 1ULL << 10;
constexpr uint64_t kFsMakeBlock = 1ULL << 11;
constexpr uint64_t kFsMakeSym = 1ULL << 12;
constexpr uint64_t kFsRefer = 1ULL << 13;     // ABI 2
constexpr uint64_t kFsTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kFsIoctlDev = 1ULL << 15;  // ABI 5
constexpr uint64_t kNetBindTcp = 1ULL << 0;   // ABI 4
constexpr uint64_t kNetConnectTcp = 1ULL << 1;
constexpr uint64_t kScopeAbstractUnix = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;

struct RulesetAttr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net;
  uint64_t scoped;
};

struct PathBeneathAttr {
  uint64_t allowed_access;
  int32_t parent_fd;
} __attribute__((packed));

constexpr uint64_t kFileRights =
    kFsExecute | kFsWriteFile | kFsReadFile | kFsTruncate | kFsIoctlDev;

uint64_t FsRightsFor(int abi) {
  uint64_t all = kFsExecute | kFsWriteFile | kFsReadFile | kFsReadDir | kFsRemoveDir |
                 kFsRemoveFile | kFsMakeChar | kFsMakeDir | kFsMakeReg | kFsMakeSock | kFsMakeFifo |
                 kFsMakeBlock | kFsMakeSym;
  if (abi >= 2) all |= kFsRefer;
  if (abi >= 3) all |= kFsTruncate;
  if (abi >= 5) all |= kFsIoctlDev;
  return all;
}

uint64_t RightsOf(Access a) {
  switch (a) {
    case Access::kReadExec:
      return kFsReadFile | kFsReadDir | kFsExecute;
    case Access::kRead:
      return kFsReadFile | kFsReadDir;
    case Access::kReadWrite:
      return kFsReadFile | kFsReadDir | kFsWriteFile | kFsTruncate | kFsRemoveFile | kFsRemoveDir |
             kFsMakeReg | kFsMakeDir | kFsRefer;
    case Access::kDevice:
      return kFsReadFile | kFsWriteFile | kFsTruncate;
  }
  return 0;
}

}  // namespace

int LandlockAbi() {
  long abi = ::syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi < 0 ? 0 : static_cast<int>(abi);
}

Status CheckLandlockAbi(int min_abi) {
  const int abi = LandlockAbi();
  if (abi >= min_abi) return Status::Ok();
  return FailedPrecondition("the kernel's Landlock ABI is " + std::to_string(abi) +
                            (abi == 0 ? " (Landlock is unsupported or disabled)" : "") +
                            ", below the configured minimum " + std::to_string(min_abi) +
                            " (--landlock-min-abi; sandbox.landlock_min_abi in host.toml)");
}

Result<int> BuildLandlockRuleset(const std::vector<LandlockRule>& rules, int min_abi) {
  const int abi = LandlockAbi();
  FF_RETURN_IF_ERROR(CheckLandlockAbi(min_abi));
  const uint64_t handled = FsRightsFor(abi);
  RulesetAttr attr{handled, 0, 0};
  size_t size = sizeof(uint64_t);
  if (abi >= 4) {
    attr.handled_access_net =
        kNetBindTcp | kNetConnectTcp;  // no rule: every TCP bind/connect is refused
    size = 2 * sizeof(uint64_t);
  }
  if (abi >= 6) {
    attr.scoped = kScopeAbstractUnix | kScopeSignal;
    size = sizeof(RulesetAttr);
  }
  int fd = static_cast<int>(::syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (fd < 0) return ErrnoError("landlock_create_ruleset failed", "", errno);
  for (const auto& r : rules) {
    int pfd = ::open(r.path.c_str(), O_PATH | O_CLOEXEC);
    if (pfd < 0) {
      Status st = ErrnoError("landlock: cannot open", r.path, errno);
      ::close(fd);
      return st;
    }
    struct stat st {};
    ::fstat(pfd, &st);
    uint64_t allowed = RightsOf(r.access) & handled;
    if (!S_ISDIR(st.st_mode)) allowed &= kFileRights;
    PathBeneathAttr pb{allowed, pfd};
    long rc = ::syscall(SYS_landlock_add_rule, fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0);
    int err = errno;
    ::close(pfd);
    if (rc != 0) {
      ::close(fd);
      return ErrnoError("landlock_add_rule failed for", r.path, err);
    }
  }
  return fd;
}

Status RestrictSelf(int ruleset_fd) {
  long rc = ::syscall(SYS_landlock_restrict_self, ruleset_fd, 0);
  int err = errno;
  ::close(ruleset_fd);
  if (rc != 0) return ErrnoError("landlock_restrict_self failed", "", err);
  return Status::Ok();
}

}  // namespace ff::sandbox
