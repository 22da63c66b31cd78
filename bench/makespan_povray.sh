#!/usr/bin/env bash
# shellcheck disable=SC2016  # backquotes in markdown
# Farm makespan on real POV-Ray frames, against baselines on the same machine,
# run interleaved (single, farm, parallel, parallel-wide; RUNS times):
#   farm      a local site: one schedule server and 2 render servers (LAYOUT),
#             submit to done (`frameflow submit --wait`)
#   single    one povray process rendering every frame, +WT<nproc>
#   parallel  GNU parallel -j<nproc>, one povray process per frame, +WT1
#   wide      (reference, not a baseline of the goal) GNU parallel -j<farm slots>,
#             +WT1: the same process concurrency as the farm; only when the farm
#             has more slots than the machine has cores
# Every contender renders with the same options (the farm's POV-Ray adapter
# builds the same command line; only +SF/+EF/+WT differ):
#   povray +I<scene>.pov <args> +KFI1 +KFF<N> +KI0 +KF1 -D -P +W320 +H240 +SFa +EFb +FN +O…
# (<args> = +A0.3 +R3 for the povray-examples scenes, as in their .ini files;
# clock 0..1 over frames 1..N, not cyclic). The farm's and parallel's frames
# must decode to the same pixels as the single process's, frame by frame.
#
# Scenes: clockd (light, povray-examples), fractalzoom (heavy, povray-examples;
# its first half costs ~10x its second), clock (examples/clock, with an
# include file and a texture as associated files).
#
# Usage: bench/makespan_povray.sh [--quick] FRAMEFLOW_BINARY
#   --quick: clockd only, 12 frames, 1 run, no wide reference (~20 s).
# Environment:
#   RUNS=3                runs per contender
#   SCENES="clockd fractalzoom clock", FRAMES=24
#   LAYOUT=2x4x1          farm: render servers x slots per server x cores per slot
#   CHUNK=2               farm: chunk_size (an integer or "auto")
#   WIDE=0                skip the wide reference
#   ONLY_FARM=1           skip every baseline (for exploring layouts and chunks)
#   REF_CACHE=DIR         keep the single process's frames in DIR and reuse them
#                         as the reference (with ONLY_FARM: saves a render per call)
#   BENCH_MD=FILE         append the markdown section to FILE
set -euo pipefail
source "$(dirname "$0")/_lib.sh"
bench_init "$@"
examples=/usr/share/doc/povray/examples/animations
bench_need_packages povray:povray parallel:parallel python3:python3 \
  "$examples/clockd:povray-examples"

cores=$(nproc)
if [ "$BENCH_QUICK" = 1 ]; then
  runs=${RUNS:-1} scenes=${SCENES:-clockd} frames=${FRAMES:-12} wide=${WIDE:-0}
else
  runs=${RUNS:-3} scenes=${SCENES:-clockd fractalzoom clock} frames=${FRAMES:-24} wide=${WIDE:-1}
fi
layout=${LAYOUT:-2x4x1}
chunk=${CHUNK:-2}
only_farm=${ONLY_FARM:-0}
IFS=x read -r servers slots slot_cores <<< "$layout"
[[ "$servers" =~ ^[1-9][0-9]*$ && "$slots" =~ ^[1-9][0-9]*$ && "$slot_cores" =~ ^[1-9][0-9]*$ ]] ||
  bench_die "LAYOUT=$layout: expected SERVERSxSLOTSxCORES, e.g. 2x4x1"
[[ "$runs" =~ ^[1-9][0-9]*$ && "$frames" =~ ^[1-9][0-9]*$ ]] ||
  bench_die "RUNS, FRAMES: expected positive integers"
[[ "$chunk" =~ ^([1-9][0-9]*|auto)$ ]] || bench_die "CHUNK=$chunk: expected an integer or auto"
farm_slots=$((servers * slots))
[ "$only_farm" = 1 ] || [ "$farm_slots" = "$cores" ] && wide=0

# scene NAME: sets src, scene_file, files (associated files), args.
scene() {
  case $1 in
    clockd | fractalzoom) src=$examples/$1 scene_file=$1.pov files=() args=(+A0.3 +R3) ;;
    clock)
      src=$BENCH_ROOT/examples/clock scene_file=clock.pov
      files=(clock_parts.inc textures/dial.png) args=()
      ;;
    *) bench_die "SCENES: unknown scene '$1' (clockd, fractalzoom, clock)" ;;
  esac
}

# povray_cmd OUT_DIR FIRST LAST THREADS: sets cmd to the command line every
# contender runs.
povray_cmd() {
  cmd=(povray "+I$scene_file" "${args[@]}" +KFI1 "+KFF$frames" +KI0 +KF1 -D -P +W320 +H240
    "+SF$2" "+EF$3" +FN "+O$1/f.png" "+WT$4")
}

# same_frames DIR REF_DIR: every frame 1..N is in both (names ending in the
# frame number) and decodes to the same pixels; DIR holds nothing else.
same_frames() {
  python3 - "$1" "$2" "$frames" << 'PY'
import os, re, struct, sys, zlib
def pixels(path):
    d = open(path, 'rb').read()
    if d[:8] != b'\x89PNG\r\n\x1a\n': sys.exit(f'{path}: not a PNG')
    i, idat, hdr, last = 8, b'', None, None
    while i + 8 <= len(d):
        n, t = struct.unpack('>I4s', d[i:i + 8])
        if t == b'IHDR': hdr = d[i + 8:i + 8 + n]
        if t == b'IDAT': idat += d[i + 8:i + 8 + n]
        last, i = t, i + 12 + n
    if last != b'IEND': sys.exit(f'{path}: truncated PNG')
    return hdr, zlib.decompress(idat)
def frames(root):
    out = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            m = re.search(r'(\d+)\.png$', n)
            if m: out[int(m.group(1))] = os.path.join(dirpath, n)
    return out
got, want, n = frames(sys.argv[1]), frames(sys.argv[2]), int(sys.argv[3])
for f in range(1, n + 1):
    if f not in got: sys.exit(f'{sys.argv[1]}: frame {f} missing')
    if f not in want: sys.exit(f'{sys.argv[2]}: frame {f} missing')
    if pixels(got[f]) != pixels(want[f]): sys.exit(f'{got[f]}: pixels differ from {want[f]}')
if len(got) != n: sys.exit(f'{sys.argv[1]}: {len(got)} frames, expected {n}')
PY
}

# Each run_* RUN appends its seconds to an array of the same name.
run_farm() {
  local t0 t1 out
  t0=$(bench_now)
  out=$("$BENCH_BIN" submit --wait --site "$BENCH_SITE" "$base/job/job.toml" 2> "$base/submit.err") ||
    bench_die "$name: farm run $1 failed: $out $(cat "$base/submit.err")"
  t1=$(bench_now)
  farm+=("$(bench_elapsed "$t0" "$t1")")
  "$BENCH_BIN" fetch --site "$BENCH_SITE" "$(head -n 1 <<< "$out")" "$base/farm$1" > /dev/null
  same_frames "$base/farm$1" "$ref" || bench_die "$name: farm run $1: wrong frames"
  rm -rf "$base/farm$1"
}

run_single() {
  local d=$base/single$1 t0 t1
  mkdir -p "$d/out"
  cp -r "$base/job/." "$d/"
  povray_cmd "$d/out" 1 "$frames" "$cores"
  t0=$(bench_now)
  (cd "$d" && "${cmd[@]}" > "$d/log" 2>&1) || bench_die "$name: single povray failed; see $d/log"
  t1=$(bench_now)
  single+=("$(bench_elapsed "$t0" "$t1")")
  if [ ! -d "$ref" ]; then
    mkdir -p "$(dirname "$ref")"
    cp -r "$d/out" "$ref"
  else
    same_frames "$d/out" "$ref" || bench_die "$name: single run $1: wrong frames"
  fi
  rm -rf "$d"
}

# run_parallel RUN JOBS ARRAY
run_parallel() {
  local d=$base/parallel$1 t0 t1
  mkdir -p "$d/out"
  cp -r "$base/job/." "$d/"
  povray_cmd "$d/out" '{}' '{}' 1
  t0=$(bench_now)
  (cd "$d" && seq 1 "$frames" | parallel --will-cite -j "$2" "${cmd[@]}" > "$d/log" 2>&1) ||
    bench_die "$name: parallel -j$2 failed; see $d/log"
  t1=$(bench_now)
  local -n times=$3
  times+=("$(bench_elapsed "$t0" "$t1")")
  same_frames "$d/out" "$ref" || bench_die "$name: parallel -j$2 run $1: wrong frames"
  rm -rf "$d"
}

# write_job: the farm's job description in $base/job.
write_job() {
  mkdir -p "$base/job"
  cp "$src/$scene_file" "$base/job/"
  local f files_toml="" args_toml="" chunk_toml=$chunk
  for f in "${files[@]}"; do
    mkdir -p "$base/job/$(dirname "$f")"
    cp "$src/$f" "$base/job/$f"
    files_toml+="${files_toml:+, }\"$f\""
  done
  for f in "${args[@]}"; do args_toml+="${args_toml:+, }\"$f\""; done
  [ "$chunk" = auto ] && chunk_toml='"auto"'
  cat > "$base/job/job.toml" << TOML
name = "bench-$name"
frames = "1-$frames"
chunk_size = $chunk_toml
files = [$files_toml]

[package]
name = "povray"

[render]
scene = "$scene_file"
width = 320
height = 240
output = "frames/${name}_####.png"
args = [$args_toml]

[requirements]
cores = 1
TOML
}

povray_version=$(povray --version 2>&1 | awk '/^POV-Ray/ { print $2; exit }')
header="| scene | frames | farm (s) | single +WT$cores (s) | parallel -j$cores (s) | farm / best |"
rule="|---|---|---|---|---|---|"
if [ "$wide" = 1 ]; then
  header+=" parallel -j$farm_slots (s) | farm / parallel -j$farm_slots |"
  rule+="---|---|"
fi
if [ -n "${BENCH_MD:-}" ]; then
  cat >> "$BENCH_MD" << MD
## Farm makespan on real frames (POV-Ray)

\`\`\`
$([ "$BENCH_QUICK" = 1 ] && echo "bench/makespan_povray.sh --quick build/frameflow" ||
    echo "RUNS=$runs bench/makespan_povray.sh build/frameflow")
\`\`\`

Machine: $(bench_machine); POV-Ray $povray_version. $frames frames per scene at 320x240,
$runs run(s) per contender, interleaved; seconds: median (min–max).

- **farm**: a local site, 1 schedule server + $servers render servers with $slots slot(s) of
  $slot_cores core(s) each ($farm_slots POV-Ray processes at most, \`+WT$slot_cores\`),
  \`chunk_size = $chunk\`; \`frameflow submit --wait\`, submit to done.
- **single**: one \`povray … +SF1 +EFN +WT$cores\` renders every frame.
- **parallel**: \`parallel -j$cores povray … +SFn +EFn +WT1 ::: 1..N\`, one process per frame.
$([ "$wide" = 1 ] && echo "- **parallel -j$farm_slots** (a reference, not one of the goal's baselines): the same,
  with as many processes at once as the farm has slots.")

The same POV-Ray command line for all, apart from \`+SF/+EF/+WT\`: \`povray +I<scene>.pov <args>
+KFI1 +KFFN +KI0 +KF1 -D -P +W320 +H240 +SFa +EFb +FN +O…\`, with <args> \`+A0.3 +R3\` (the
povray-examples .ini settings) for clockd and fractalzoom, none for clock. Every contender's
frames are checked pixel for pixel against the single process's.

$header
$rule
MD
fi

echo "machine: $(bench_machine); POV-Ray $povray_version"
echo "farm: layout $layout ($farm_slots slots), chunk_size $chunk; runs $runs"
rows=()
results=()
for name in $scenes; do
  scene "$name"
  base=$BENCH_WORK/$name
  ref=${REF_CACHE:-$BENCH_WORK/ref}/$name-$frames
  write_job
  bench_site_start "$servers" "$slots" "$slot_cores" povray
  farm=() single=() par=() par_wide=()
  # The reference frames come from the single process (cached with REF_CACHE).
  [ "$only_farm" = 1 ] && [ ! -d "$ref" ] && run_single 0
  for r in $(seq "$runs"); do
    if [ "$only_farm" = 1 ]; then
      run_farm "$r"
      echo "$name run $r: farm ${farm[-1]} s"
      continue
    fi
    run_single "$r"
    run_farm "$r"
    run_parallel "$r" "$cores" par
    line="$name run $r: farm ${farm[-1]} s, single ${single[-1]} s, parallel -j$cores ${par[-1]} s"
    if [ "$wide" = 1 ]; then
      run_parallel "$r" "$farm_slots" par_wide
      line+=", parallel -j$farm_slots ${par_wide[-1]} s"
    fi
    echo "$line"
  done
  bench_site_stop

  read -r fm fmin fmax < <(printf '%s\n' "${farm[@]}" | bench_stats)
  result="RESULT makespan_$name frames=$frames runs=$runs layout=$layout chunk=$chunk farm_s=$fm"
  row="| $name | $frames | **$fm** ($fmin–$fmax) |"
  if [ "$only_farm" = 1 ]; then
    row+=" – | – | – |"
  else
    read -r sm smin smax < <(printf '%s\n' "${single[@]}" | bench_stats)
    read -r pm pmin pmax < <(printf '%s\n' "${par[@]}" | bench_stats)
    best=$(printf '%s\n%s\n' "$sm" "$pm" | sort -g | head -n 1)
    ratio=$(bench_ratio "$fm" "$best")
    row+=" $sm ($smin–$smax) | $pm ($pmin–$pmax) | **$ratio** |"
    result+=" single_s=$sm parallel_s=$pm farm_vs_best=$ratio"
    if [ "$wide" = 1 ]; then
      read -r wm wmin wmax < <(printf '%s\n' "${par_wide[@]}" | bench_stats)
      row+=" $wm ($wmin–$wmax) | $(bench_ratio "$fm" "$wm") |"
      result+=" parallel_wide_s=$wm farm_vs_parallel_wide=$(bench_ratio "$fm" "$wm")"
    fi
  fi
  rows+=("$row")
  results+=("$result")
  if [ -n "${BENCH_MD:-}" ]; then echo "$row" >> "$BENCH_MD"; fi
done

if [ -n "${BENCH_MD:-}" ]; then
  echo >> "$BENCH_MD"
  printf '`%s`\n\n' "${results[@]}" >> "$BENCH_MD"
fi
echo
echo "$header"
echo "$rule"
printf '%s\n' "${rows[@]}"
echo
printf '%s\n' "${results[@]}"
