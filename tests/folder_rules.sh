#!/bin/sh
# Checks the folder rules of docs/architecture.md ("Folders and what they
# may include"): every #include "<folder>/..." in src/<folder>/ must name the
# folder itself or one the table allows. Test files (*_test.cc) may also
# include util/ (the shared test fixtures). Prints each violation as
# file:line and exits 1 when there is one.
#
#   tests/folder_rules.sh [SOURCE_DIR]
set -eu
top=${1:-$(cd "$(dirname "$0")/.." && pwd)}
doc="$top/docs/architecture.md"
[ -f "$doc" ] || { echo "folder_rules: $doc not found" >&2; exit 2; }

# The table rows between the markers: | `folder` | `a`, `b` or — |
rules=$(awk '/<!-- folder-rules:begin -->/{on=1; next} /<!-- folder-rules:end -->/{on=0}
  on && /^\| `/ {
    split($0, cell, "|"); f = cell[2]; a = cell[3];
    gsub(/[` ]/, "", f); gsub(/[` ]/, "", a); gsub(/—/, "", a);
    print f ":" a }' "$doc")
[ -n "$rules" ] || { echo "folder_rules: no rule table in $doc" >&2; exit 2; }

for dir in "$top"/src/*/; do
  folder=$(basename "$dir")
  allowed=$(printf '%s\n' "$rules" | awk -F: -v f="$folder" '$1 == f {print $2}')
  if ! printf '%s\n' "$rules" | grep -q "^$folder:"; then
    echo "src/$folder/: folder missing from the rule table in docs/architecture.md"
    continue
  fi
  for file in "$dir"*.h "$dir"*.cc; do
    [ -f "$file" ] || continue
    extra=""
    case "$file" in *_test.cc) extra="util" ;; esac
    grep -n '^#include "[a-z_]*/' "$file" | while IFS= read -r line; do
      n=${line%%:*}
      inc=$(printf '%s' "$line" | sed -E 's/^[0-9]+:#include "([a-z_]+)\/.*/\1/')
      case "$inc" in gtest | gmock | google | grpcpp | nlohmann | toml++ | spdlog) continue ;; esac
      [ "$inc" = "$folder" ] && continue
      ok=0
      for a in $(printf '%s' "$allowed,$extra" | tr ',' ' '); do
        [ "$a" = "$inc" ] && ok=1
      done
      case ",$allowed," in *",*,"*) ok=1 ;; esac
      if [ $ok = 0 ]; then
        echo "${file#$top/}:$n: src/$folder may not include $inc/ (docs/architecture.md, folder rules)"
      fi
    done
  done
done >"${TMPDIR:-/tmp}/ff-folder-rules.$$"
out="${TMPDIR:-/tmp}/ff-folder-rules.$$"
if [ -s "$out" ]; then
  cat "$out"
  echo "folder rules: $(wc -l <"$out") violation(s)"
  rm -f "$out"
  exit 1
fi
rm -f "$out"
echo "folder rules: every include of src/ is allowed"
