#!/usr/bin/env bash
# Recovery time (issue 3, item 5) on a local site: one schedule server and two
# render servers of one slot each, separate processes on loopback (port 0).
#
#   render_server_kill  kill -9 of the render server running a chunk (its TCP
#                       connection closes: reconnect_grace applies) -> that chunk
#                       is recorded running on the other render server.
#   render_server_hang  kill -STOP of that render server instead (the socket
#                       stays open, heartbeats stop: heartbeat_timeout applies).
#   schedule_server_kill  kill -9 of the schedule server while dispatch runs,
#                       restarted at once with the same config (new port) ->
#                       the first chunk dispatched by the new process. Broken
#                       down from the daemons' logs into start-up (kill -> the
#                       new process listens), reconnect (-> first render server
#                       registered) and first dispatch.
#   schedule_server_down  the same, but restarted only after DOWN_S seconds (a
#                       supervisor's restart delay or a slow start): the time
#                       from the restart to the first dispatch shows what the
#                       render servers' reconnect backoff adds.
#
# Dispatch times are the ones the schedule server records (a chunk's
# started_at_ms is the moment its assignment was committed), so the client's
# polling interval adds nothing to them; polling only decides when to stop.
# The breakdown comes from the daemons' log lines (millisecond timestamps).
#
# Usage: bench/recovery.sh [--quick] [path/to/frameflow]
#   RUNS=5             repetitions of each measurement (--quick: 1)
#   DOWN_S=1.5         how long the schedule server stays down in schedule_server_down
#   COPY_FRAMES=1000   frames (chunks) of the job that keeps dispatch busy
#   HEARTBEAT_TIMEOUT, HEARTBEAT_INTERVAL, RECONNECT_GRACE
#                      site settings to try instead of the defaults
#   BENCH_MD=FILE      also write the markdown table to FILE
#   KEEP_WORK=1        keep the temp dir (daemon logs) for a look afterwards
#   ONLY="kill hang ss down"  run only these measurements
# Ends with: RESULT recovery key=value ...
set -euo pipefail

quick=0
if [ "${1:-}" = "--quick" ]; then
  quick=1
  shift
fi
bin_arg=${1:-build/frameflow}
bin=$(realpath "$bin_arg")
[ -x "$bin" ] || { echo "recovery.sh: no frameflow binary at $bin" >&2; exit 2; }
runs=${RUNS:-5}
[ "$quick" = 1 ] && runs=1
down_s=${DOWN_S:-1.5}
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/frameflow-recovery-XXXXXX)
site=$work/site

# Daemons are started in the background and disowned (so bash prints no
# "Killed" notice for the ones this benchmark kills); bash still reaps them.
declare -A pid=()  # ss, rs1, rs2 -> pid of the running daemon
gone() {  # PID: true once the process has exited (and been reaped), within 5 s
  for _ in $(seq 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  return 1
}
cleanup() {
  local p
  for p in "${pid[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${pid[@]}"; do
    gone "$p" || kill -KILL "$p" 2>/dev/null || true
  done
  if [ -n "${KEEP_WORK:-}" ]; then log "logs kept in $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { date +%s%3N; }
ff() { "$bin" "$@" --site "$site"; }
log() { echo "recovery: $*" >&2; }
die() {  # keeps the temp dir: the daemons' logs say why
  log "$*"
  KEEP_WORK=1
  exit 1
}

# ------------------------------------------------------------------ the site
site_extra=""
[ -n "${HEARTBEAT_TIMEOUT:-}" ] && site_extra+="heartbeat_timeout = \"$HEARTBEAT_TIMEOUT\""$'\n'
[ -n "${HEARTBEAT_INTERVAL:-}" ] && site_extra+="heartbeat_interval = \"$HEARTBEAT_INTERVAL\""$'\n'
[ -n "${RECONNECT_GRACE:-}" ] && site_extra+="reconnect_grace = \"$RECONNECT_GRACE\""$'\n'
cat > "$work/site.toml" <<TOML
[site]
name = "recovery"
root = "$site"
[schedule_server]
listen = "127.0.0.1:0"
$site_extra
# These benchmarks measure scheduling against tools that run renderers
# bare; the I/O wrapper's own cost is measured by bench/sandbox.sh.
[sandbox]
local_jobs = "plain"
TOML

# Two command packages: "slow" is a chunk that runs for 30 s (it is mid-render
# when its render server dies; its job is cancelled long before it would end,
# so it need not write a frame), "copy" writes its frame at once, a real PNG
# (a copy of the scene) because frames must be valid images. Each renderer is
# the render server's direct child, so it dies with it (parent-death signal).
# shellcheck disable=SC2016 # $1 and $2 belong to the script
printf '#!/bin/sh\nexec cp "$1" "$2"\n' > "$work/copy.sh"
chmod +x "$work/copy.sh"
# Renderers run as the slot's unprivileged uid (even plain): let them reach it.
chmod 755 "$work"
for i in 1 2; do
  cat > "$work/rs$i.toml" <<TOML
name = "rs$i"
root = "$work/rs$i"
schedule_server_file = "$site/schedule-server.addr"
probe = []
[[slots]]
name = "s"
cores = 1
[[packages]]
name = "slow"
version = "1.0"
command = "sleep 30"
[[packages]]
name = "copy"
version = "1.0"
command = "$work/copy.sh {scene} {output} {frame}"
TOML
done
mkdir -p "$work/job"
cp "$src/examples/clock/textures/dial.png" "$work/job/plate.png"
job_toml() {  # NAME PACKAGE FRAMES
  cat > "$work/job/$1.toml" <<TOML
name = "$1"
frames = "$3"
chunk_size = 1
max_attempts = 100
[package]
name = "$2"
[render]
scene = "plate.png"
output = "f_######.png"
TOML
  echo "$work/job/$1.toml"
}

ss_life=0
start_ss() {
  ss_life=$((ss_life + 1))
  "$bin" schedule-server --config "$work/site.toml" > "$work/ss.$ss_life.log" 2>&1 &
  pid[ss]=$!
  disown "$!"
}
start_rs() {  # NAME
  "$bin" render-server --config "$work/$1.toml" >> "$work/$1.log" 2>&1 &
  pid[$1]=$!
  disown "$!"
}
stop_daemon() {  # NAME: kill -9 (a stopped process too), wait until it is gone
  local p=${pid[$1]}
  kill -KILL "$p" 2>/dev/null || true
  gone "$p" || die "process $p ($1) survived kill -9"
  unset "pid[$1]"
}
# Waits until both render servers are up with idle slots (nothing left over
# from the previous measurement).
wait_site_idle() {
  local deadline=$(($(now_ms) + 30000)) ready
  while [ "$(now_ms)" -lt "$deadline" ]; do
    ready=$(ff hosts --json 2>/dev/null | jq '[.hosts[] | select(.status == "up")
      | select(all(.slots[]; .state == "idle"))] | length' 2>/dev/null || echo 0)
    [ "$ready" = 2 ] && return 0
    sleep 0.05
  done
  ff hosts >&2 || true
  die "the render servers did not come up idle within 30 s; logs in $work"
}
# Prints the spdlog timestamps (ms since the epoch) of the lines of FILE
# matching REGEX that are not older than SINCE_MS, one per line.
log_times() {  # FILE REGEX SINCE_MS
  local line t
  while IFS= read -r line; do
    t=$(date -d "${line:0:23}" +%s%3N 2>/dev/null) || continue
    [ "$t" -ge "$3" ] && echo "$t"
  done < <(grep -E "$2" "$1" 2>/dev/null || true)
}
secs() { awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }

start_ss
for _ in $(seq 600); do [ -s "$site/schedule-server.addr" ] && break; sleep 0.05; done
[ -s "$site/schedule-server.addr" ] || die "the schedule server did not start; see $work/ss.1.log"
start_rs rs1
start_rs rs2
wait_site_idle

# -------------------------------------------------- render server lost
# One kill/stop of the render server running a slow chunk. Sets out_ms
# (recorded), out_seen_ms (seen by polling) and out_victim. Runs in this shell,
# not a subshell: it restarts daemons and die must end the script.
render_server_lost() {  # kill|stop RUN
  local id victim t0 out started seen deadline
  id=$(ff submit "$(job_toml "lost-$1-$2" slow 1)")
  deadline=$(($(now_ms) + 30000))
  victim=""
  while [ -z "$victim" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "job $id never started"
    victim=$(ff show --json "$id" 2>/dev/null |
      jq -r '.chunks[0] | select(.state == "running") | .render_server' 2>/dev/null || true)
    [ -n "$victim" ] || sleep 0.02
  done
  sleep 0.3  # let the renderer get going: the chunk is mid-render
  t0=$(now_ms)
  if [ "$1" = kill ]; then kill -KILL "${pid[$victim]}"; else kill -STOP "${pid[$victim]}"; fi
  deadline=$((t0 + 60000))
  started=""
  while [ -z "$started" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "job $id chunk 0 did not move off $victim in 60 s"
    out=$(ff show --json "$id" 2>/dev/null || true)
    started=$(jq -r --arg v "$victim" '.chunks[0] | select(.state == "running" and
      .render_server != $v) | .started_at_ms' <<< "$out" 2>/dev/null || true)
    [ -n "$started" ] || sleep 0.02
  done
  seen=$(now_ms)
  out_ms=$((started - t0))
  out_seen_ms=$((seen - t0))
  out_victim=$victim
  ff cancel "$id" > /dev/null
  stop_daemon "$victim"
  start_rs "$victim"
  wait_site_idle
}

# ------------------------------------------------- schedule server lost
# One kill -9 and restart (after DELAY_S) of the schedule server. Sets out_ms
# (kill -> first dispatch), out_restart_ms (restart -> first dispatch),
# out_noticed (kill -> a render server saw its stream end), out_resumed
# (restart -> database resumed), out_start (kill -> listening), out_listen
# (restart -> listening), out_reconnect (listening -> first render
# server registered), out_dispatch (-> first dispatch), out_all (kill -> both
# registered), all in ms.
schedule_server_lost() {  # RUN DELAY_S
  local id t_kill t_spawn t_listen t_resumed t_noticed first deadline out frames
  local -a t_reg
  # Enough frames that dispatch runs throughout the measurement.
  frames=${COPY_FRAMES:-1000}
  id=$(ff submit "$(job_toml "lost-ss-$1-$2" copy "1-$frames")")
  deadline=$(($(now_ms) + 30000))
  until [ "$(ff jobs --json 2>/dev/null | jq --argjson id "$id" \
    '[.jobs[] | select((.job_id | tonumber) == $id) | .frames_done] | first // 0')" -ge 20 ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "job $id is not rendering"
    sleep 0.05
  done
  t_kill=$(now_ms)
  stop_daemon ss
  [ "$2" = 0 ] || sleep "$2"
  t_spawn=$(now_ms)
  start_ss
  deadline=$((t_kill + 60000))
  first=""
  while [ -z "$first" ]; do
    [ "$(now_ms)" -lt "$deadline" ] || die "no dispatch within 60 s of the restart; logs in $work"
    sleep 0.05
    out=$(ff show --json "$id" 2>/dev/null || true)
    first=$(jq -r --argjson t "$t_spawn" '[.chunks[] | (.started_at_ms | tonumber)
      | select(. > $t)] | min // empty' <<< "$out" 2>/dev/null || true)
  done
  local ss_log=$work/ss.$ss_life.log
  t_listen=$(log_times "$ss_log" "listening on" "$t_spawn" | head -1)
  t_resumed=$(log_times "$ss_log" "resumed [0-9]+ unfinished" "$t_spawn" | head -1)
  t_noticed=$(cat "$work"/rs?.log | log_times /dev/stdin "lost the schedule server stream" \
    "$t_kill" | sort -n | head -1)
  mapfile -t t_reg < <(log_times "$ss_log" "render server '[^']+' on host .* registered" \
    "$t_spawn")
  if [ -z "$t_listen" ] || [ "${#t_reg[@]}" = 0 ]; then
    die "cannot find start-up lines in $ss_log"
  fi
  out_ms=$((first - t_kill))
  out_restart_ms=$((first - t_spawn))
  out_start=$((t_listen - t_kill))
  out_listen=$((t_listen - t_spawn))
  out_resumed=$((${t_resumed:-$t_listen} - t_spawn))
  out_noticed=$((${t_noticed:-$t_kill} - t_kill))
  out_reconnect=$((t_reg[0] - t_listen))
  out_dispatch=$((first - t_reg[0]))
  out_all=$((t_reg[-1] - t_kill))
  ff cancel "$id" > /dev/null
  wait_site_idle
}

out_ms=0 out_restart_ms=0 out_listen=0 out_resumed=0 out_noticed=0 out_seen_ms=0 out_victim="" out_start=0 out_reconnect=0 out_dispatch=0 out_all=0
declare -a kill_ms hang_ms down_ms ss_ms ss_start ss_reconn ss_disp ss_all
# ONLY="kill hang ss down" picks measurements (default: all).
want() { [ -z "${ONLY:-}" ] || [[ " $ONLY " == *" $1 "* ]]; }
want kill && for r in $(seq "$runs"); do
  render_server_lost kill "$r"
  kill_ms+=("$out_ms")
  log "run $r: render server kill -9 ($out_victim): chunk running elsewhere after" \
    "$(secs "$out_ms") s (seen by polling after $(secs "$out_seen_ms") s)"
done
want hang && for r in $(seq "$runs"); do
  render_server_lost stop "$r"
  hang_ms+=("$out_ms")
  log "run $r: render server kill -STOP ($out_victim): chunk running elsewhere after" \
    "$(secs "$out_ms") s (seen by polling after $(secs "$out_seen_ms") s)"
done
want ss && for r in $(seq "$runs"); do
  schedule_server_lost "$r" 0
  ss_ms+=("$out_ms")
  ss_start+=("$out_start")
  ss_reconn+=("$out_reconnect")
  ss_disp+=("$out_dispatch")
  ss_all+=("$out_all")
  log "run $r: schedule server kill -9: dispatch resumed after $(secs "$out_ms") s" \
    "(render servers saw the stream end at $(secs "$out_noticed") s; the new process resumed" \
    "its database $(secs "$out_resumed") s after it was started and was listening at" \
    "$(secs "$out_start") s, +$(secs "$out_reconnect") s first render server" \
    "registered, +$(secs "$out_dispatch") s first dispatch; both registered at" \
    "$(secs "$out_all") s)"
done
want down && for r in $(seq "$runs"); do
  schedule_server_lost "$r" "$down_s"
  down_ms+=("$out_restart_ms")
  log "run $r: schedule server kill -9, restarted after $down_s s: first dispatch" \
    "$(secs "$out_restart_ms") s after the restart (listening after $(secs "$out_listen") s," \
    "+$(secs "$out_reconnect") s first render server registered," \
    "+$(secs "$out_dispatch") s first dispatch)"
done

# ------------------------------------------------------------------ report
summary() {  # values in ms -> "median min max" in seconds ("- - -" for none)
  [ $# -gt 0 ] || { echo "- - -"; return; }
  printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
    m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
    printf "%.3f %.3f %.3f", m / 1000, a[1] / 1000, a[NR] / 1000 }'
}
row() {  # LABEL GOAL VALUES...
  local label=$1 goal=$2 m lo hi
  shift 2
  read -r m lo hi < <(summary "$@")
  echo "| $label | $m | $lo – $hi | $goal |"
}
median_of() { summary "$@" | cut -d' ' -f1; }
effective() {  # KEY DEFAULT: the site setting in effect
  local v
  v=$(sed -n "s/^$1 = \"\(.*\)\"$/\1/p" "$work/site.toml")
  echo "${v:-$2}"
}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
table=$(
  cat <<MD
### Recovery time

Command: \`bench/recovery.sh$([ "$quick" = 1 ] && echo " --quick") $bin_arg\` (RUNS=$runs)
Machine: $(nproc) cores, ${cpu:-unknown CPU}, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end
Site: 1 schedule server + 2 render servers (1 slot each) on loopback;
heartbeat_interval $(effective heartbeat_interval 1s), heartbeat_timeout $(effective heartbeat_timeout 5s),
reconnect_grace $(effective reconnect_grace 2s). Times from the kill, in seconds; dispatch times are
the schedule server's recorded started_at of the chunk.

| measurement | median (s) | min – max (s) | goal |
|---|---|---|---|
$(row "render server kill -9 → its chunk running on the other render server" "≤ 5 s" "${kill_ms[@]}")
$(row "render server hang (kill -STOP) → its chunk running elsewhere" "≤ 5 s" "${hang_ms[@]}")
$(row "schedule server kill -9 + restart → first new dispatch" "≤ 2 s" "${ss_ms[@]}")
$(row "… of which: kill → restarted process listening" "" "${ss_start[@]}")
$(row "… of which: listening → first render server registered" "" "${ss_reconn[@]}")
$(row "… of which: registered → first dispatch" "" "${ss_disp[@]}")
$(row "schedule server kill -9 → both render servers registered" "" "${ss_all[@]}")
$(row "schedule server down ${down_s} s: restart → first new dispatch" "≤ 2 s" "${down_ms[@]}")

Anchors: Slurm, OpenCue and Kubernetes declare a node dead after 300 s.
MD
)
echo "$table"
[ -n "${BENCH_MD:-}" ] && echo "$table" > "$BENCH_MD"
echo "RESULT recovery runs=$runs render_server_kill_s=$(median_of "${kill_ms[@]}")" \
  "render_server_hang_s=$(median_of "${hang_ms[@]}")" \
  "schedule_server_kill_s=$(median_of "${ss_ms[@]}")" \
  "startup_s=$(median_of "${ss_start[@]}") reconnect_s=$(median_of "${ss_reconn[@]}")" \
  "first_dispatch_s=$(median_of "${ss_disp[@]}")" \
  "down_s=$down_s restart_to_dispatch_s=$(median_of "${down_ms[@]}")"
