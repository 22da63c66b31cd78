#!/usr/bin/env bash
# Real processes against Slurm: N one-frame chunks whose renderer is
# /bin/true, on the same number of slots (nproc) three ways, run side by side:
#
#   frameflow  a local site (schedule server + one render server with nproc
#              1-core slots, separate processes on loopback); one job of N
#              one-frame chunks of a command-template package running
#              /bin/true, without outputs; `frameflow submit --wait`, timed
#              from submit to the job's done event.
#   Slurm      a private single-node Slurm (Debian's slurm-wlm) started from a
#              temp dir: munged with its own key and socket, slurmctld -D,
#              slurmd -D -N localhost; select/cons_tres with CR_Core, nproc
#              cores, batch_sched_delay=0,sched_min_interval=0. One job array
#              `sbatch --array=1-N --wrap=/bin/true`, timed from submit until
#              slurmctld has logged N completed jobs (jobcomp/filetxt).
#   xargs      `seq N | xargs -P nproc -n 1 /bin/true`: the fork/exec limit.
#   parallel   GNU parallel -j nproc running the same N processes (reference).
#
# Why a job array: like the frameflow job it is one submission whose N tasks
# are scheduled, launched and accounted one by one (each is a Slurm job with
# its own id, slurmstepd and completion record). N separate sbatch calls
# would add N client start-ups and submit RPCs that frameflow does not pay.
#
# Each system gets an untimed warm-up of 20 tasks first (page cache, the
# render server's host cache, slurmd's first launch; 4 with --quick). Done is detected
# without adding load where possible: frameflow pushes a job event, xargs
# exits; Slurm is polled every 50 ms by reading the jobcomp file (no RPCs to
# slurmctld), so its times are late by at most 50 ms.
#
# Slurm on a small node is slow for this (a few jobs per second: after most
# completions the next jobs start from slurmctld's once-a-second background
# scheduling pass), so a full run takes ~20 minutes, nearly all of it Slurm.
# --quick (a smoke check in well under 2 minutes) gives Slurm 20 s and
# reports the rate of the jobs finished by then (their time scaled to N).
#
# Usage: bench/true_vs_slurm.sh [--quick] BUILD_DIR/frameflow
#   RUNS=3        timed runs of each system (--quick: 1)
#   CHUNKS=1000   chunks/jobs/processes per run (--quick: 200)
#   SLURM_BUDGET_S=600  give up on a Slurm run after this long (--quick: 20)
#                 and report the rate of the jobs that finished
#   SKIP_SLURM=1  do not install or run Slurm
#   BENCH_MD=FILE also write the markdown table to FILE
# Needs root to install missing Debian packages (slurm-wlm munge parallel)
# and to run the Slurm daemons. Prints the table, then one line
# `RESULT true_vs_slurm key=value ...`. Everything it starts is stopped by
# PID and its temp dir removed on exit, also on failure or ^C.
set -euo pipefail

usage() {
  echo "usage: $0 [--quick] BUILD_DIR/frameflow" >&2
  exit 2
}
quick=0
positional=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    -h | --help) usage ;;
    -*) echo "unknown option: $1" >&2; usage ;;
    *) positional+=("$1") ;;
  esac
  shift
done
[ ${#positional[@]} -eq 1 ] || usage
bin=$(realpath "${positional[0]}")
[ -x "$bin" ] || { echo "not an executable: ${positional[0]}" >&2; exit 2; }

slots=$(nproc)
if [ "$quick" = 1 ]; then
  runs=${RUNS:-1} chunks=${CHUNKS:-200} slurm_budget=${SLURM_BUDGET_S:-20} warmup=4
else
  runs=${RUNS:-3} chunks=${CHUNKS:-1000} slurm_budget=${SLURM_BUDGET_S:-600} warmup=20
fi
skip_slurm=${SKIP_SLURM:-0}

log() { echo "true_vs_slurm: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ------------------------------------------------------------ packages ---

need=(parallel)
[ "$skip_slurm" = 1 ] || need+=(slurm-wlm munge)
missing=()
for p in "${need[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing Debian packages: ${missing[*]} (run as root to install them)"
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
if [ "$skip_slurm" != 1 ] && [ "$(id -u)" != 0 ]; then
  die "the Slurm baseline runs its daemons as root; run as root or set SKIP_SLURM=1"
fi

# ------------------------------------------------------------- cleanup ---

work=$(mktemp -d /tmp/frameflow-true-vs-slurm-XXXXXX)
# Renderers run as slot uids, even plain ones: they must reach the work dir.
chmod 755 "$work"
pids=()    # daemons started here, in start order
names=()   # their names, for messages
slurm_up=0
cleanup() {
  local rc=$?
  set +e
  if [ "$slurm_up" = 1 ]; then
    # Nothing may keep running in the private cluster (its slurmstepds are
    # children of slurmd, not ours).
    timeout 10 scancel --quiet --full --user="$(id -un)" 2>/dev/null
    for _ in $(seq 100); do
      [ -z "$(timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  local i p
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    p=${pids[i]}
    kill -TERM "$p" 2>/dev/null || continue
    for _ in $(seq 100); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
      log "${names[i]} (pid $p) ignored SIGTERM; killing it"
      kill -KILL "$p" 2>/dev/null
    fi
    wait "$p" 2>/dev/null
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOGFILE COMMAND...: runs a daemon in the background, records it.
start() {
  local name=$1 logfile=$2
  shift 2
  "$@" >"$logfile" 2>&1 &
  pids+=($!)
  names+=("$name")
}

# wait_until TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 50 ms.
wait_until() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((EPOCHSECONDS + timeout))
  until "$@"; do
    [ "$EPOCHSECONDS" -lt "$deadline" ] || die "$what did not happen within ${timeout} s"
    sleep 0.05
  done
}

# A free TCP port on loopback (nothing answers on it right now).
free_port() {
  local p
  while true; do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return
    fi
  done
}

elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# ----------------------------------------------------------- frameflow ---

ff=$work/frameflow
mkdir -p "$ff/job"
cat >"$ff/site.toml" <<TOML
[site]
name = "bench"
root = "$ff/site"
[schedule_server]
listen = "127.0.0.1:0"
# These benchmarks measure scheduling against tools that run renderers
# bare; the I/O wrapper's own cost is measured by bench/sandbox.sh.
[sandbox]
local_jobs = "plain"
TOML
cat >"$ff/rs.toml" <<TOML
name = "rs1"
root = "$ff/rs1"
schedule_server_file = "$ff/site/schedule-server.addr"
probe = []
[[slots]]
name = "s"
cores = 1
count = $slots
[[packages]]
name = "true"
version = "1"
command = "/bin/true"
TOML
echo "scene" >"$ff/job/input.txt"
ff_job() { # ff_job FILE N: a job of N one-frame chunks without outputs
  cat >"$1" <<TOML
name = "true-x$2"
frames = "1-$2"
chunk_size = 1
[package]
name = "true"
[render]
scene = "input.txt"
TOML
}
ff_job "$ff/job/warmup.toml" "$warmup"
ff_job "$ff/job/true.toml" "$chunks"

hosts_up() { [ "$("$bin" hosts --site "$ff/site" 2>/dev/null | grep -c ': up')" = 1 ]; }
start schedule-server "$ff/schedule-server.log" "$bin" schedule-server --config "$ff/site.toml"
start render-server "$ff/render-server.log" "$bin" render-server --config "$ff/rs.toml"
wait_until 30 "the frameflow schedule server writing its address" \
  test -s "$ff/site/schedule-server.addr"
wait_until 30 "the frameflow render server registering" hosts_up

ff_run() { # ff_run FILE: submit-to-done seconds on stdout
  local t0 t1
  t0=$EPOCHREALTIME
  "$bin" submit --wait --site "$ff/site" "$1" >/dev/null 2>"$ff/submit.err" ||
    die "frameflow job $1 did not complete: $(tail -c 300 "$ff/submit.err")"
  t1=$EPOCHREALTIME
  elapsed "$t0" "$t1"
}

# --------------------------------------------------------------- Slurm ---

slurm_version=""
if [ "$skip_slurm" != 1 ]; then
  sl=$work/slurm
  mkdir -p "$sl/munge" "$sl/state" "$sl/spool" "$sl/log"
  chmod 0700 "$sl/munge"
  # munged refuses a key others can read.
  dd if=/dev/urandom of="$sl/munge/munge.key" bs=1024 count=1 status=none
  chmod 0600 "$sl/munge/munge.key"
  start munged "$sl/log/munged.out" munged --foreground --force \
    --socket="$sl/munge/munge.socket" --key-file="$sl/munge/munge.key" \
    --pid-file="$sl/munge/munged.pid" --log-file="$sl/log/munged.log" \
    --seed-file="$sl/munge/munged.seed"
  wait_until 30 "munged creating its socket" test -S "$sl/munge/munge.socket"

  ctld_port=$(free_port)
  slurmd_port=$(free_port)
  while [ "$slurmd_port" = "$ctld_port" ]; do slurmd_port=$(free_port); done
  export SLURM_CONF=$sl/slurm.conf
  # The node declares exactly `nproc` single-thread cores, so CR_Core gives
  # Slurm the same number of slots as frameflow and xargs (config_overrides:
  # a different real topology does not drain the node).
  cat >"$SLURM_CONF" <<CONF
ClusterName=ffbench
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$sl/munge/munge.socket
StateSaveLocation=$sl/state
SlurmdSpoolDir=$sl/spool/slurmd-%n
SlurmctldPidFile=$sl/slurmctld.pid
SlurmdPidFile=$sl/slurmd-%n.pid
SlurmctldLogFile=$sl/log/slurmctld.log
SlurmdLogFile=$sl/log/slurmd.log
SlurmctldDebug=error
SlurmdDebug=error
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=$sl/jobcomp.txt
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MaxArraySize=$((chunks + 1))
MaxJobCount=$((4 * (chunks * (runs + 1) + warmup) + 1000))
MinJobAge=300
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$slots Boards=1 SocketsPerBoard=1 CoresPerSocket=$slots ThreadsPerCore=1 RealMemory=1024 State=UNKNOWN
PartitionName=bench Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
  start slurmctld "$sl/log/slurmctld.out" slurmctld -D -f "$SLURM_CONF"
  start slurmd "$sl/log/slurmd.out" slurmd -D -N localhost -f "$SLURM_CONF"
  slurm_up=1
  node_idle() { [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ]; }
  wait_until 60 "the Slurm node becoming idle (see $sl/log)" node_idle
  slurm_version=$(sinfo --version | awk '{print $2}')
  touch "$sl/jobcomp.txt"
fi

# Sets `completed` to the number of jobcomp records (no fork: this runs
# every 50 ms while Slurm is timed).
completed=0
count_completed() {
  local lines=()
  mapfile -t lines <"$sl/jobcomp.txt"
  completed=${#lines[@]}
}

# slurm_run N: seconds on stdout; "~" prefix when it gave up (partial rate).
slurm_run() {
  local n=$1 before t0 t1 done_count deadline
  count_completed
  before=$completed
  t0=$EPOCHREALTIME
  sbatch --parsable --quiet --array="1-$n" --output=/dev/null --job-name=true \
    --wrap=/bin/true >"$sl/sbatch.out" || die "sbatch failed"
  deadline=$((EPOCHSECONDS + slurm_budget))
  while true; do
    count_completed
    done_count=$((completed - before))
    [ "$done_count" -ge "$n" ] && break
    if [ "$EPOCHSECONDS" -ge "$deadline" ]; then
      t1=$EPOCHREALTIME
      log "Slurm finished $done_count of $n jobs within ${slurm_budget} s; cancelling the rest"
      scancel --quiet "$(cat "$sl/sbatch.out")"
      awk -v a="$t0" -v b="$t1" -v d="$done_count" -v n="$n" \
        'BEGIN { printf "~%.3f", (b - a) * n / (d > 0 ? d : 1) }'
      return
    fi
    sleep 0.05
  done
  t1=$EPOCHREALTIME
  local ok
  ok=$(tail -n "$n" "$sl/jobcomp.txt" | grep -c 'JobState=COMPLETED' || true)
  [ "$ok" -ge "$n" ] || die "only $ok of $n Slurm jobs COMPLETED (see $sl/jobcomp.txt)"
  elapsed "$t0" "$t1"
}

# --------------------------------------------------- xargs and parallel ---

xargs_run() {
  local t0 t1
  t0=$EPOCHREALTIME
  seq "$1" | xargs -P "$slots" -n 1 /bin/true
  t1=$EPOCHREALTIME
  elapsed "$t0" "$t1"
}

parallel_run() {
  local t0 t1
  t0=$EPOCHREALTIME
  seq "$1" | parallel --will-cite -j "$slots" /bin/true >/dev/null
  t1=$EPOCHREALTIME
  elapsed "$t0" "$t1"
}

# ----------------------------------------------------------------- runs ---

log "warm-up: $warmup tasks each"
ff_run "$ff/job/warmup.toml" >/dev/null
[ "$skip_slurm" = 1 ] || slurm_run "$warmup" >/dev/null
xargs_run "$warmup" >/dev/null
parallel_run "$warmup" >/dev/null

declare -a t_ff=() t_slurm=() t_xargs=() t_parallel=()
slurm_partial=0
for r in $(seq "$runs"); do
  s=$(ff_run "$ff/job/true.toml")
  t_ff+=("$s")
  if [ "$skip_slurm" != 1 ]; then
    s=$(slurm_run "$chunks")
    if [ "${s#\~}" != "$s" ]; then
      slurm_partial=1
      s=${s#\~}
    fi
    t_slurm+=("$s")
  fi
  s=$(xargs_run "$chunks")
  t_xargs+=("$s")
  s=$(parallel_run "$chunks")
  t_parallel+=("$s")
  last_slurm=skipped
  [ ${#t_slurm[@]} -eq 0 ] || last_slurm="${t_slurm[-1]} s"
  log "run $r/$runs: frameflow ${t_ff[-1]} s, slurm $last_slurm," \
    "xargs ${t_xargs[-1]} s, parallel ${t_parallel[-1]} s"
done

# stats V...: "median min max" of the values.
stats() {
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
    END { m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
          printf "%.3f %.3f %.3f", m, a[1], a[NR] }'
}
rate() { awk -v n="$chunks" -v s="$1" 'BEGIN { printf "%.1f", n / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

read -r ff_med ff_min ff_max <<<"$(stats "${t_ff[@]}")"
read -r x_med x_min x_max <<<"$(stats "${t_xargs[@]}")"
read -r p_med p_min p_max <<<"$(stats "${t_parallel[@]}")"
ff_rate=$(rate "$ff_med")
x_rate=$(rate "$x_med")
p_rate=$(rate "$p_med")
if [ "$skip_slurm" != 1 ]; then
  read -r s_med s_min s_max <<<"$(stats "${t_slurm[@]}")"
  s_rate=$(rate "$s_med")
  vs_slurm=$(ratio "$ff_rate" "$s_rate")
else
  s_rate=NA vs_slurm=NA
fi
vs_xargs=$(ratio "$ff_rate" "$x_rate")
vs_parallel=$(ratio "$ff_rate" "$p_rate")

cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
os=$(awk -F= '/^PRETTY_NAME=/ { gsub(/"/, "", $2); print $2 }' /etc/os-release)
cmd="bench/true_vs_slurm.sh$([ "$quick" = 1 ] && echo " --quick") $(basename "$(dirname "$bin")")/frameflow"
table=$(
  echo "## Real processes against Slurm: $chunks chunks of \`/bin/true\` on $slots slots"
  echo
  echo '```'
  echo "RUNS=$runs CHUNKS=$chunks $cmd"
  echo '```'
  echo
  echo "Machine: $slots × $cpu (\`nproc\` = $slots), $os, $(date -u +%Y-%m-%d)." \
    "$runs timed run(s) per system after a $warmup-task warm-up, interleaved;" \
    "seconds from submit to all done."
  echo
  echo "| system | what runs | median s | min–max s | chunks/s | frameflow ÷ system |"
  echo "|---|---|---|---|---|---|"
  echo "| frameflow | \`frameflow submit --wait\`: 1 job, $chunks one-frame chunks, command package \`/bin/true\`, no outputs; 1 render server, $slots slots | $ff_med | $ff_min–$ff_max | $ff_rate | 1 |"
  if [ "$skip_slurm" != 1 ]; then
    note=""
    [ "$slurm_partial" = 1 ] && note=" (gave up after ${slurm_budget} s; rate of the jobs that finished)"
    echo "| Slurm $slurm_version | \`sbatch --array=1-$chunks --wrap=/bin/true\`, 1 node, $slots cores, cons_tres/CR_Core$note | $s_med | $s_min–$s_max | $s_rate | $vs_slurm |"
  else
    echo "| Slurm | skipped (SKIP_SLURM=1) | – | – | – | – |"
  fi
  echo "| xargs | \`seq $chunks \\| xargs -P $slots -n 1 /bin/true\` | $x_med | $x_min–$x_max | $x_rate | $vs_xargs |"
  echo "| GNU parallel | \`seq $chunks \\| parallel -j $slots /bin/true\` | $p_med | $p_min–$p_max | $p_rate | $vs_parallel |"
)
echo "$table"
if [ -n "${BENCH_MD:-}" ]; then
  echo "$table" >"$BENCH_MD"
fi
echo "RESULT true_vs_slurm chunks=$chunks slots=$slots runs=$runs frameflow_s=$ff_med" \
  "frameflow_per_s=$ff_rate slurm_per_s=$s_rate xargs_per_s=$x_rate parallel_per_s=$p_rate" \
  "vs_slurm=$vs_slurm vs_xargs=$vs_xargs vs_parallel=$vs_parallel"
