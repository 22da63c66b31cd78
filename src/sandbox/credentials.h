// Credentials: the renderer never runs as root. Drops every capability from
// the bounding and ambient sets, locks the securebits so that no uid
// transition or setuid binary gives any back, switches to the slot's
// unprivileged uid/gid with no supplementary groups, and sets
// no_new_privs.
#pragma once

#include <sys/types.h>

#include "base/status.h"
#include "sandbox/spec.h"

namespace ff::sandbox {

// REQUIRES: running as root (uid 0, CAP_SETUID, CAP_SETGID, CAP_SETPCAP).
Status DropToUser(uid_t uid, gid_t gid);

// Resource limits that are per process: per-file size, CPU time (each
// process; the cgroup accounts for all of them), processes of the uid,
// open files, and no core dumps.
Status ApplyRlimits(const Limits& limits);

}  // namespace ff::sandbox
