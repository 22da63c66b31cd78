# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing script
# Helpers shared by the benchmark scripts in bench/ (sourced, never run; the
# runner skips files whose name starts with '_'). See bench/README.md for the
# convention every benchmark script follows.
#
#   source "$(dirname "$0")/_lib.sh"
#   bench_init "$@"            # parses [--quick] FRAMEFLOW_BINARY, makes $BENCH_WORK
#   bench_site_start 2 1 1     # render servers, slots per server, cores per slot
#   ...
#   bench_site_stop            # (also done on exit)
#
# Everything a script starts is stopped by PID on exit, and $BENCH_WORK is
# removed (set BENCH_KEEP=1 to keep it for debugging).

BENCH_QUICK=0
BENCH_BIN=
BENCH_WORK=
BENCH_PIDS=()
BENCH_SITE_PIDS=()
BENCH_SITE=
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

bench_die() {
  echo "$(basename "$0"): $*" >&2
  exit 2
}

bench_usage() { bench_die "usage: $(basename "$0") [--quick] FRAMEFLOW_BINARY"; }

# Parses the arguments every benchmark takes, creates the work directory and
# installs the exit trap.
bench_init() {
  if [ "${1:-}" = --quick ]; then
    BENCH_QUICK=1
    shift
  fi
  [ $# = 1 ] || bench_usage
  [ -x "$1" ] || bench_die "$1: not an executable frameflow binary"
  BENCH_BIN=$(realpath "$1")
  BENCH_WORK=$(mktemp -d /tmp/frameflow-bench-XXXXXX)
  # Renderers run as slot uids, even plain ones: they must reach the work dir.
  chmod 755 "$BENCH_WORK"
  trap bench_cleanup EXIT
  trap 'exit 130' INT TERM
}

bench_cleanup() {
  local status=$?
  bench_stop_pids "${BENCH_PIDS[@]}"
  BENCH_PIDS=()
  if [ -n "$BENCH_WORK" ] && [ "${BENCH_KEEP:-0}" != 1 ]; then rm -rf "$BENCH_WORK"; fi
  exit "$status"
}

# Stops the given PIDs: SIGTERM, up to 5 s to exit, then SIGKILL.
# Only PIDs that are still this shell's children are signalled, so a PID the
# system has reused for someone else's process is never hit.
bench_stop_pids() {
  local p
  for p in "$@"; do bench_is_child "$p" && kill "$p" 2> /dev/null; done
  for _ in $(seq 50); do
    local alive=0
    for p in "$@"; do bench_is_child "$p" && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for p in "$@"; do bench_is_child "$p" && kill -KILL "$p" 2> /dev/null; done
  for p in "$@"; do wait "$p" 2> /dev/null || true; done
}

# True when PID is a live (not zombie) child of this shell.
bench_is_child() {
  local stat state ppid
  stat=$(cat "/proc/$1/stat" 2> /dev/null) || return 1
  stat=${stat##*) }  # fields after "pid (comm) ": state ppid ...
  read -r state ppid _ <<< "$stat"
  [ "$ppid" = "$$" ] && [ "$state" != Z ]
}

# Installs Debian packages that are missing (root only; otherwise says what
# to install). Each argument is CHECK:PACKAGE, CHECK a command or an
# absolute path the package provides.
# Usage: bench_need_packages povray:povray /usr/share/doc/x:x-examples ...
bench_need_packages() {
  local missing=() spec check
  for spec in "$@"; do
    check=${spec%%:*}
    if [[ "$check" == /* ]]; then
      [ -e "$check" ] || missing+=("${spec#*:}")
    else
      command -v "$check" > /dev/null || missing+=("${spec#*:}")
    fi
  done
  [ ${#missing[@]} = 0 ] && return 0
  [ "$(id -u)" = 0 ] || bench_die "missing Debian packages: ${missing[*]} (install them, or run as root)"
  echo "installing Debian packages: ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
    > /dev/null || {
    DEBIAN_FRONTEND=noninteractive apt-get update -q > /dev/null &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" \
        > /dev/null
  } || bench_die "cannot install ${missing[*]}"
}

bench_now() { date +%s.%N; }

# Seconds between two bench_now stamps, 2 decimals.
bench_elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# Reads numbers on stdin; prints "median min max" (2 decimals).
bench_stats() {
  sort -g | awk '{ a[NR] = $1 }
    END { if (NR == 0) { print "- - -"; exit }
          m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          printf "%.2f %.2f %.2f\n", m, a[1], a[NR] }'
}

# a / b with 3 decimals.
bench_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }

# One line describing the machine: cores, CPU model, memory, OS.
bench_machine() {
  local cpu mem os
  cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
  os=$(. /etc/os-release && echo "$PRETTY_NAME")
  echo "$(nproc) cores ($cpu), $mem, $os"
}

# Starts a site under $BENCH_WORK/site: one schedule server and SERVERS render
# servers with SLOTS slots of CORES cores each, probing PACKAGES (default
# povray; "-" for none). Returns once every render server is up.
# BENCH_SANDBOX=wrapped runs local jobs in the I/O wrapper (default plain);
# BENCH_RS_EXTRA is appended to every render server's config.
# Usage: bench_site_start SERVERS SLOTS CORES [PACKAGE ...]
bench_site_start() {
  local servers=$1 slots=$2 cores=$3
  shift 3
  local probe="" p
  for p in "${@:-povray}"; do
    [ "$p" = - ] && continue # "-": probe nothing
    probe+="${probe:+, }\"$p\""
  done
  BENCH_SITE=$BENCH_WORK/site
  mkdir -p "$BENCH_WORK/logs"
  cat > "$BENCH_WORK/site.toml" << TOML
[site]
root = "$BENCH_SITE"
[schedule_server]
listen = "127.0.0.1:0"
# Benchmarks measure scheduling against tools that run renderers bare, so
# local jobs run plain unless BENCH_SANDBOX=wrapped (bench/sandbox.sh
# measures the I/O wrapper's own cost).
[sandbox]
local_jobs = "${BENCH_SANDBOX:-plain}"
TOML
  rm -f "$BENCH_SITE/schedule-server.addr"
  "$BENCH_BIN" schedule-server --config "$BENCH_WORK/site.toml" \
    > "$BENCH_WORK/logs/schedule-server.log" 2>&1 &
  BENCH_PIDS+=($!)
  BENCH_SITE_PIDS=($!)
  local i
  for i in $(seq "$servers"); do
    cat > "$BENCH_WORK/rs$i.toml" << TOML
name = "rs$i"
root = "$BENCH_WORK/rs$i"
schedule_server_file = "$BENCH_SITE/schedule-server.addr"
probe = [$probe]
[[slots]]
cores = $cores
count = $slots
${BENCH_RS_EXTRA:-}
TOML
    "$BENCH_BIN" render-server --config "$BENCH_WORK/rs$i.toml" \
      > "$BENCH_WORK/logs/rs$i.log" 2>&1 &
    BENCH_PIDS+=($!)
    BENCH_SITE_PIDS+=($!)
  done
  for _ in $(seq 600); do
    [ "$("$BENCH_BIN" hosts --site "$BENCH_SITE" 2> /dev/null | grep -c ': up')" = "$servers" ] &&
      return 0
    sleep 0.05
  done
  tail -n 20 "$BENCH_WORK"/logs/*.log >&2
  bench_die "the site did not come up with $servers render server(s) within 30 s"
}

# Stops the site's daemons (SIGTERM, then SIGKILL) and removes its state.
bench_site_stop() {
  [ ${#BENCH_SITE_PIDS[@]} = 0 ] && return 0
  bench_stop_pids "${BENCH_SITE_PIDS[@]}"
  local keep=() p s
  for p in "${BENCH_PIDS[@]}"; do
    for s in "${BENCH_SITE_PIDS[@]}"; do [ "$p" = "$s" ] && continue 2; done
    keep+=("$p")
  done
  BENCH_PIDS=("${keep[@]}")
  BENCH_SITE_PIDS=()
  rm -rf "$BENCH_SITE" "$BENCH_WORK"/rs[0-9]*
}

# Appends stdin to the markdown section ($BENCH_MD, when set) and echoes it.
bench_md() {
  if [ -n "${BENCH_MD:-}" ]; then tee -a "$BENCH_MD"; else cat; fi
}
