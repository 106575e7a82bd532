#!/usr/bin/env bash
# Measures the runtime stage of the Dockerfile without a Docker engine: builds
# the same filesystem with debootstrap and chroot, checks that it runs
# ibsync, and prints its size.
#
# What the Dockerfile's runtime stage does, and what this script does for it:
#   FROM debian:12-slim        debootstrap --variant=minbase bookworm, then the
#                              "slim" rules of Debian's official images
#                              (debuerreotype-slimify: no man pages, docs or
#                              locales, installed or future) and the same apt
#                              sources (bookworm, -updates, -security)
#   install-deps.sh --runtime  the same script, run inside the chroot
#   rm -rf /var/lib/apt/lists/*, useradd --uid 10001 ...  the same commands
#   COPY ibsync                a binary built with the build stage's cmake
#                              commands (Release, stripped), or --binary
# Then: every shared library of /usr/local/bin/ibsync resolves inside the
# root filesystem (ldd in the chroot), `ibsync --version`, and, as user
# 10001 like the image, `ibsync validate` and `ibsync plan --local` on the
# bundled example.
#
# Usage: sudo scripts/measure-image.sh [--binary PATH | --build-dir DIR] [--keep DIR] [--mirror URL]
#   --binary PATH  use this ibsync binary instead of building one
#   --build-dir DIR  where to build it (default: build-image)
#   --keep DIR     build the root filesystem in DIR and leave it there
#                  (default: a temporary directory, removed at the end)
#   --mirror URL   Debian mirror (default: the first deb.debian.org-style URI
#                  of this machine's /etc/apt/sources.list*, else
#                  http://deb.debian.org/debian)
# Needs root (debootstrap, chroot), the debootstrap package and the network
# access apt has. Takes a few minutes, mostly downloading packages.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD

binary=
build=build-image
keep=
mirror=
while [ $# -gt 0 ]; do
    case $1 in
    --binary) binary=$(realpath "$2"); shift 2 ;;
    --build-dir) build=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "measure-image: unknown argument $1" >&2; exit 2 ;;
    esac
done

die() { echo "measure-image: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap and chroot); run it with sudo"
command -v debootstrap >/dev/null || die "debootstrap is not installed: apt-get install debootstrap"

if [ -z "$mirror" ]; then
    # The mirror this machine's apt uses (one-line or deb822 sources).
    mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
        2>/dev/null | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security | head -1 | tr -d ' ' || true)
    mirror=${mirror:-http://deb.debian.org/debian}
fi
mirror=${mirror%/}
security=${mirror%/debian}/debian-security

if [ -z "$binary" ]; then
    echo "== building ibsync as the Dockerfile's build stage does ($build/)"
    cmake -S . -B "$build" -G Ninja -DIBS_WERROR=ON -DIBS_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j 2
    strip -o "$build/ibsync.stripped" "$build/cmd/ibsync"
    binary=$(realpath "$build/ibsync.stripped")
fi
[ -x "$binary" ] || die "$binary is not an executable"

if [ -n "$keep" ]; then
    root=$(realpath -m "$keep")
    [ ! -e "$root" ] || [ -z "$(ls -A "$root")" ] || die "$root exists and is not empty"
    mkdir -p "$root"
    cleanup() { umount_all; }
else
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/ibsync-image.XXXXXX")
    root=$tmp/rootfs
    cleanup() { umount_all; rm -rf "$tmp"; }
fi
mounted=()
umount_all() {
    local i
    for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
        umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
    done
    mounted=()
}
trap cleanup EXIT

# File sizes, as `docker images` adds them up (layer contents), not disk blocks.
size() { du -sx --apparent-size --block-size=1 "$root" | cut -f1; }
human() { numfmt --to=iec-i --suffix=B --format=%.1f "$1"; }

echo "== debootstrap --variant=minbase bookworm ($mirror)"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.debootstrap.log" 2>&1 ||
    { tail -20 "$root.debootstrap.log" >&2; die "debootstrap failed (is $mirror reachable?)"; }
rm -f "$root.debootstrap.log"

# debian:12-slim: the official image's dpkg exclusions, applied to what is
# installed and to every later install.
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/{man,groff,info,lintian,linda}/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb $security bookworm-security main
EOF
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old
base=$(size)
base_pkgs=$(chroot "$root" dpkg-query -W -f '${Package}\n' | sort)

# The chroot needs /proc and /dev for dpkg's maintainer scripts; nothing
# stays mounted once the script ends.
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
mount --bind /dev "$root/dev" && mounted+=("$root/dev")
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts" && mounted+=("$root/dev/pts")
cp /etc/resolv.conf "$root/etc/resolv.conf"

echo "== install-deps.sh --runtime in the chroot"
install -D -m 0755 scripts/install-deps.sh "$root/usr/local/share/ibsync/install-deps.sh"
chroot "$root" /usr/local/share/ibsync/install-deps.sh --runtime
chroot "$root" sh -c 'rm -rf /var/lib/apt/lists/* && useradd --uid 10001 --user-group --no-log-init --home-dir /var/lib/ibsync --create-home --shell /usr/sbin/nologin ibsync'
install -m 0755 "$binary" "$root/usr/local/bin/ibsync"
# Leave no build-host files behind in the measured tree.
rm -f "$root/etc/resolv.conf"
chroot "$root" apt-get clean
rm -rf "$root"/var/cache/apt/*.bin "$root"/var/log/apt/* "$root"/var/log/dpkg.log \
    "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old

echo "== checks"
ldd_out=$(chroot "$root" ldd /usr/local/bin/ibsync)
if grep -q 'not found' <<<"$ldd_out"; then
    echo "$ldd_out" >&2
    die "ibsync has unresolved shared libraries in the runtime image"
fi
echo "ldd: $(grep -c '=>' <<<"$ldd_out") shared libraries, all resolved inside the image"
echo "version: $(chroot "$root" ibsync --version)"
mkdir -p "$root/tmp/measure"
cp -r examples/linux-golden-ami "$root/tmp/measure/example"
chown -R 10001:10001 "$root/tmp/measure"
as_user() { chroot --userspec=10001:10001 "$root" env HOME=/var/lib/ibsync "$@"; }
as_user ibsync validate /tmp/measure/example
as_user ibsync plan --local=/tmp/measure/account --state-dir /tmp/measure/state \
    --detailed-exitcode /tmp/measure/example >/dev/null && rc=0 || rc=$?
[ "$rc" -eq 2 ] || die "ibsync plan --local in the image exited $rc, expected 2 (changes)"
echo "plan --local: the example plans against an emulated account (exit 2: changes)"
rm -rf "$root/tmp/measure"
umount_all

total=$(size)
bin=$(stat -c %s "$root/usr/local/bin/ibsync")
echo "== packages added to debian:12-slim, largest first (dpkg Installed-Size)"
chroot "$root" dpkg-query -W -f '${Installed-Size}\t${Package}\n' | sort -k2 |
    join -1 2 -2 1 -t $'\t' -v 1 -o 1.1,1.2 - <(echo "$base_pkgs") | sort -rn |
    awk -F '\t' '{ printf "%8.1f MiB  %s\n", $1 / 1024, $2 }'
echo "== size of the runtime image's filesystem (file sizes, as docker images reports them)"
printf '%-44s %10s\n' "debian:12-slim equivalent (minbase, slim)" "$(human "$base")"
printf '%-44s %10s\n' "+ runtime packages, user, ibsync" "$(human $((total - base)))"
printf '%-44s %10s\n' "  of which /usr/local/bin/ibsync (stripped)" "$(human "$bin")"
printf '%-44s %10s\n' "total" "$(human "$total")"
echo "du -sh (disk blocks): $(du -sxh "$root" | cut -f1)"
[ -z "$keep" ] || echo "root filesystem left in $root"
