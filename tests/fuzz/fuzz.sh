#!/bin/sh
# `make fuzz`: every fuzz target for SECONDS each (FUZZ_SECONDS, default
# 600), one after the other, one worker each, at nice 10. Each target keeps
# its corpus in BUILD/fuzz-work/long/<name>/corpus from run to run (the
# repository's seeds are only read); crashes go to .../artifacts/.
#   fuzz.sh BUILD SECONDS [TARGET...]   (default: every target of BUILD)
set -u
build=$1 seconds=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
list="$build/fuzz-targets.txt"
[ "$#" -gt 0 ] || set -- $(cut -d' ' -f1 "$list")
summary=""
failed=0
for name in "$@"; do
  args=$(sed -n "s/^$name //p" "$list")
  line=$(FUZZ_KEEP_CORPUS=1 nice -n 10 "$here/run.sh" "$build/tests/fuzz/${name}_fuzz" \
    "$here/corpus/$name" "$build/fuzz-work/long/$name" "$seconds" $args) || failed=1
  echo "$line"
  summary="$summary$(echo "$line" | tail -n 1)
"
done
echo
echo "fuzz summary ($seconds s per target):"
printf '%s' "$summary"
exit "$failed"
