#!/bin/sh
# `make fresh`: the README's quick start on a freshly installed minimal
# Debian 12. Builds a root with `debootstrap --variant=minbase` plus git,
# clones the committed repository (HEAD, not the work tree) into it and runs
# the two commands of the README's quick start there, in a chroot, as root.
# Every mount it makes is undone on the way out, whatever happened; the root
# is removed unless FRESH_KEEP=1.
#
#   tests/machine/fresh.sh [REPO]      (as root; downloads a whole root)
#
# Environment: FRESH_MIRROR (default http://deb.debian.org/debian),
# FRESH_DIR (where the root is made; default a new directory under /var/tmp),
# FRESH_KEEP=1 keeps the root for a look afterwards.
#
# A freshly installed machine's / is a mount point; the root is bound onto
# itself so the chroot's / is one too. (The I/O wrapper inside a chroot whose
# / is a plain directory is a separate case, covered by the escape suite.)
set -eu
repo=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
mirror=${FRESH_MIRROR:-http://deb.debian.org/debian}
[ "$(id -u)" = 0 ] || { echo "fresh: must run as root (debootstrap, chroot, mounts)" >&2; exit 1; }

if ! command -v debootstrap >/dev/null 2>&1; then
  echo "fresh: installing debootstrap on this machine"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
fi

root=${FRESH_DIR:-$(mktemp -d /var/tmp/frameflow-fresh.XXXXXX)}
mkdir -p "$root"
chmod 0755 "$root" # mktemp made it 0700: a machine's / lets every uid through
root=$(cd "$root" && pwd)
mounted=""

cleanup() {
  status=$?
  # First whatever still runs inside the root (an interrupted run).
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/root" 2>/dev/null)" in
      "$root" | "$root"/*) kill -9 "${p#/proc/}" 2>/dev/null || true ;;
    esac
  done
  # Undo every mount under the root, deepest first (the reverse of mountinfo).
  for m in $(awk -v r="$root" '$5 == r || index($5, r "/") == 1 {print $5}' /proc/self/mountinfo |
    sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" || true
  done
  if awk -v r="$root" '$5 == r || index($5, r "/") == 1 {found=1} END {exit !found}' \
    /proc/self/mountinfo; then
    echo "fresh: mounts are still left under $root; not removing it" >&2
  elif [ "${FRESH_KEEP:-0}" = 1 ]; then
    echo "fresh: kept the root at $root"
  else
    rm -rf "$root"
  fi
  exit $status
}
trap cleanup EXIT INT TERM

start=$(date +%s)
commit=$(git -C "$repo" rev-parse HEAD)
echo "fresh: debootstrap --variant=minbase --include=git bookworm into $root ($mirror)"
debootstrap --variant=minbase --include=git bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 || {
  tail -20 "$root.debootstrap.log" >&2
  exit 1
}
rm -f "$root.debootstrap.log"
echo "fresh: root made in $(($(date +%s) - start)) s; cloning $commit"
git clone -q "$repo" "$root/root/frameflow"
git -C "$root/root/frameflow" checkout -q "$commit"

mount --bind "$root" "$root"
mount --make-private "$root"
mount -t proc proc "$root/proc"
mount --rbind /sys "$root/sys"
mount --make-rslave "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$root/run"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true

# The README's quick start: the command lines of its first code block.
commands=$(awk '/^## Quick start/{on=1} on && /^```/{n++; next} on && n == 1' "$repo/README.md" |
  sed 's/[[:space:]]*#.*$//' | grep -v '^[[:space:]]*$')
echo "fresh: the README's quick start:"
echo "$commands" | sed 's/^/  /'
[ "$(echo "$commands" | wc -l)" = 2 ] || { echo "fresh: expected two commands in the README" >&2; exit 1; }

echo "$commands" | while read -r cmd; do
  t0=$(date +%s)
  echo "fresh: running '$cmd' in the fresh root"
  chroot "$root" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    /bin/sh -c "cd /root/frameflow && $cmd" </dev/null
  echo "fresh: '$cmd' passed in $(($(date +%s) - t0)) s"
done
echo "fresh: both quick-start commands passed on a fresh minimal Debian 12 in $(($(date +%s) - start)) s (commit $commit)"
