#!/usr/bin/env bash
# Site-to-site transfer (issue 4): how fast the courier moves a job package
# from one site's hotfolders/out into a peer's hotfolders/in, against a
# plain `cp` of the same bytes on the same disk, and what content addressing
# saves when a resubmission reuses the same files.
#
# Two schedule servers ("studio" and "render-co", peers of each other, no
# render servers) on loopback. Each run submits a job with placement =
# "remote" whose only big file is SIZE_MB of random bytes (a new file each
# run), and times from the moment `submit` returns (the file is already on
# the studio) until the studio's courier reports the package delivered: the
# package is written (hard links), offered, streamed over gRPC in 1 MiB
# pieces, appended and fsynced at the peer, verified by SHA-256 there and
# materialised in its hotfolders/in. The baseline copies the same file with
# `cp` and `sync`s it. Then a second job with the same file is sent: the
# bytes that crossed the link are counted.
#
# Usage: bench/transfer.sh [--quick] build/frameflow
#   RUNS=3 (--quick: 1)   SIZE_MB=512 (--quick: 64)
# Ends with: RESULT transfer ...  and  RESULT transfer_dedup ...
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
bench_init "$@"
runs=${RUNS:-3}
size_mb=${SIZE_MB:-512}
if [ "$BENCH_QUICK" = 1 ]; then
  runs=${RUNS:-1}
  size_mb=${SIZE_MB:-64}
fi
secret=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
w=$BENCH_WORK

site_config() { # NAME PEER
  mkdir -p "$w/$1"
  cat > "$w/$1.toml" << EOF
[site]
name = "$1"
root = "$w/$1"
[schedule_server]
listen = "127.0.0.1:0"
[[peers]]
name = "$2"
address_file = "$w/$2/schedule-server.addr"
secret = "$secret"
EOF
}
site_config studio render-co
site_config render-co studio
for s in studio render-co; do
  "$BENCH_BIN" schedule-server --config "$w/$s.toml" > "$w/$s.log" 2>&1 &
  BENCH_PIDS+=($!)
done
for s in studio render-co; do
  for _ in $(seq 300); do [ -s "$w/$s/schedule-server.addr" ] && break; sleep 0.05; done
  [ -s "$w/$s/schedule-server.addr" ] || bench_die "$s did not start; see $w/$s.log"
done

counter() { # KEY: a counter of the studio's courier for render-co
  "$BENCH_BIN" peers --site "$w/studio" --json |
    python3 -c "import json,sys; d=json.load(sys.stdin); p=d.get('peers',[{}])[0]; print(int(p.get('counters',{}).get('$1',0)))"
}
wait_sent() { # N: until packages_sent reaches N
  for _ in $(seq 6000); do
    [ "$(counter packages_sent)" -ge "$1" ] && return 0
    sleep 0.02
  done
  bench_die "package $1 was not delivered; see $w/*.log"
}
job() { # NAME FILE
  mkdir -p "$w/jobs/$1"
  ln -f "$2" "$w/jobs/$1/texture.bin"
  head -c 100 /dev/urandom > "$w/jobs/$1/scene.txt"
  cat > "$w/jobs/$1/job.toml" << EOF
name = "$1"
placement = "remote"
frames = "1"
files = ["texture.bin"]
[package]
name = "copy"
[render]
scene = "scene.txt"
EOF
  echo "$w/jobs/$1/job.toml"
}

courier_s=()
cp_s=()
sent=0
for r in $(seq "$runs"); do
  data=$w/data-$r.bin
  head -c $((size_mb << 20)) /dev/urandom > "$data"
  sync
  # Baseline: cp + sync of the same bytes on the same disk.
  t0=$(bench_now)
  cp "$data" "$w/cp-$r.bin"
  sync "$w/cp-$r.bin"
  cp_s+=("$(bench_elapsed "$t0" "$(bench_now)")")
  rm -f "$w/cp-$r.bin"
  desc=$(job "run$r" "$data")
  "$BENCH_BIN" submit "$desc" --site "$w/studio" > /dev/null
  t0=$(bench_now)
  sent=$((sent + 1))
  wait_sent "$sent"
  courier_s+=("$(bench_elapsed "$t0" "$(bench_now)")")
  echo "run $r: courier ${courier_s[-1]} s, cp ${cp_s[-1]} s for $size_mb MiB"
done
read -r c_med c_min c_max <<< "$(printf '%s\n' "${courier_s[@]}" | bench_stats)"
read -r p_med p_min p_max <<< "$(printf '%s\n' "${cp_s[@]}" | bench_stats)"
c_mibs=$(awk -v s="$size_mb" -v t="$c_med" 'BEGIN { printf "%.0f", s / t }')
p_mibs=$(awk -v s="$size_mb" -v t="$p_med" 'BEGIN { printf "%.0f", s / t }')
ratio=$(bench_ratio "$c_mibs" "$p_mibs")

# Dedup: the same texture again, in a new job.
before=$(counter bytes_sent)
skipped_before=$(counter bytes_skipped)
desc=$(job "again" "$w/data-$runs.bin")
"$BENCH_BIN" submit "$desc" --site "$w/studio" > /dev/null
t0=$(bench_now)
sent=$((sent + 1))
wait_sent "$sent"
again_s=$(bench_elapsed "$t0" "$(bench_now)")
again_bytes=$(($(counter bytes_sent) - before))
skipped=$(($(counter bytes_skipped) - skipped_before))
saving=$(awk -v a="$again_bytes" -v s="$skipped" 'BEGIN { printf "%.4f", 1 - a / (a + s) }')

echo "RESULT transfer size_mib=$size_mb runs=$runs courier_s=$c_med courier_mib_s=$c_mibs cp_s=$p_med cp_mib_s=$p_mibs courier_vs_cp=$ratio"
echo "RESULT transfer_dedup size_mib=$size_mb bytes_sent=$again_bytes bytes_skipped=$skipped saving=$saving seconds=$again_s"

bench_md << EOF
## Site-to-site transfer

\`\`\`
bench/transfer.sh build/frameflow        # RUNS=$runs SIZE_MB=$size_mb
\`\`\`

$(bench_machine). Two schedule servers on loopback; a job package with one
file of $size_mb MiB of random bytes, from \`submit\` returning to the
package delivered into the peer's hot folder (written, offered, streamed in
1 MiB pieces, fsynced, SHA-256 verified, materialised), against \`cp\` +
\`sync\` of the same file. Medians of $runs, min–max in brackets.

| | seconds | MiB/s | ÷ cp |
|---|---|---|---|
| courier | $c_med ($c_min–$c_max) | $c_mibs | **$ratio** |
| \`cp\` + \`sync\` | $p_med ($p_min–$p_max) | $p_mibs | 1 |

Resubmission with the same $size_mb MiB file: **$again_bytes bytes** crossed
the link (the job description and scene), $skipped bytes were not sent
because the peer already held them (saving $saving), delivered in $again_s s.

\`RESULT transfer size_mib=$size_mb runs=$runs courier_s=$c_med courier_mib_s=$c_mibs cp_s=$p_med cp_mib_s=$p_mibs courier_vs_cp=$ratio\`

\`RESULT transfer_dedup size_mib=$size_mb bytes_sent=$again_bytes bytes_skipped=$skipped saving=$saving seconds=$again_s\`
EOF
