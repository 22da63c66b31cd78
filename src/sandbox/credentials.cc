#include "sandbox/credentials.h"

#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace ff::sandbox {

namespace {

// Lowers a limit; 0 keeps the inherited one (raising a hard limit needs
// CAP_SYS_RESOURCE, which a confined host may not give even to root).
Status SetLimit(int resource, int64_t value, const char* name) {
  if (value <= 0) return Status::Ok();
  struct rlimit rl;
  if (::getrlimit(resource, &rl) != 0) return ErrnoError("getrlimit failed for", name, errno);
  const rlim_t v = static_cast<rlim_t>(value);
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < v) return Status::Ok();
  rl.rlim_cur = rl.rlim_max = v;
  if (::setrlimit(resource, &rl) != 0) return ErrnoError("setrlimit failed for", name, errno);
  return Status::Ok();
}

}  // namespace

Status ApplyRlimits(const Limits& l) {
  FF_RETURN_IF_ERROR(SetLimit(RLIMIT_FSIZE, l.file_bytes, "RLIMIT_FSIZE"));
  FF_RETURN_IF_ERROR(SetLimit(RLIMIT_CPU, l.cpu_seconds, "RLIMIT_CPU"));
  FF_RETURN_IF_ERROR(SetLimit(RLIMIT_NPROC, l.processes, "RLIMIT_NPROC"));
  FF_RETURN_IF_ERROR(SetLimit(RLIMIT_NOFILE, l.open_files, "RLIMIT_NOFILE"));
  struct rlimit zero = {0, 0};
  if (::setrlimit(RLIMIT_CORE, &zero) != 0)
    return ErrnoError("setrlimit failed for", "RLIMIT_CORE", errno);
  return Status::Ok();
}

Status DropToUser(uid_t uid, gid_t gid) {
  if (uid == 0 || gid == 0) return InvalidArgument("refusing to run the renderer as root");
  // The bounding set limits what any later exec could gain.
  for (int cap = 0; cap <= 63; ++cap) {
    if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the last capability
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0) {
      return ErrnoError("cannot drop capability", std::to_string(cap), errno);
    }
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
    return ErrnoError("cannot clear ambient capabilities", "", errno);
  }
  // uid 0 means nothing special any more, and that is locked.
  const unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP_LOCKED |
                             SECBIT_KEEP_CAPS_LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE |
                             SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED;
  if (::prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) != 0) {
    return ErrnoError("cannot set securebits", "", errno);
  }
  if (::setgroups(0, nullptr) != 0) return ErrnoError("setgroups failed", "", errno);
  if (::setresgid(gid, gid, gid) != 0)
    return ErrnoError("setresgid failed for gid", std::to_string(gid), errno);
  if (::setresuid(uid, uid, uid) != 0)
    return ErrnoError("setresuid failed for uid", std::to_string(uid), errno);
  // Leaving uid 0 cleared the permitted and effective sets (KEEP_CAPS is
  // off); clear them explicitly as well and check.
  struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &hdr, data) != 0) return ErrnoError("capset failed", "", errno);
  if (::syscall(SYS_capget, &hdr, data) != 0) return ErrnoError("capget failed", "", errno);
  if (data[0].effective || data[0].permitted || data[1].effective || data[1].permitted) {
    return Internal("capabilities remain after dropping to uid " + std::to_string(uid));
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return ErrnoError("cannot set no_new_privs", "", errno);
  return Status::Ok();
}

}  // namespace ff::sandbox
