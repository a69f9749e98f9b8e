#!/usr/bin/env bash
# Builds the Go toolchain image that builds run in: a stand-in for the
# official golang:<version>-bookworm images, made without any registry.
#
#   root filesystem  Debian (bookworm by default) made with debootstrap from
#                    Debian's packages: gcc, libc6-dev, make, pkg-config, git,
#                    ca-certificates, as in the golang: images. Made once and
#                    kept as a tarball in $XDG_CACHE_HOME/sibling-run/rootfs
#                    (about 50 s and 400 MB); debootstrap is installed with
#                    apt-get when missing.
#   Go               the local Go root, whole: the tools and their sources
#                    (go tool nm, go tool covdata), the race runtime, cgo
#   CA bundle        this host's /etc/ssl/certs/ca-certificates.crt, so the
#                    build trusts what the host trusts (an internal CA too)
#   environment      as in golang: GOPATH=/go (writable by every uid) with
#                    /go/bin on PATH, GOTOOLCHAIN=local; GOPROXY, GOFLAGS and
#                    CGO_ENABLED are not set, so Go's defaults apply unless the
#                    build passes its own (sibling-run -e GOPROXY=...). Unlike
#                    golang:, GOCACHE=/tmp/go-cache holds the standard library
#                    compiled (PREBUILD), writable by every uid.
#
# Usage: scripts/go-image.sh [TAG]   (default sibling-run/go:local)
# Prints progress lines on stderr (also while a long step runs), the tag on
# stdout.
# Environment: GO (the go command whose Go root is taken; default: go on
# PATH, else /usr/local/go/bin/go); GO_IMAGE_DEBIAN (the Debian release,
# default bookworm); DEBIAN_MIRROR (default: the mirror apt uses here);
# GO_IMAGE_CA_BUNDLE (default /etc/ssl/certs/ca-certificates.crt; empty for
# Debian's own); GO_IMAGE_PREBUILD (packages to compile into the build cache;
# default std, empty for none); IMAGE_LABEL (a KEY=VALUE label for the image).
set -euo pipefail
tag=${1:-sibling-run/go:local}
here=$(cd "$(dirname "$0")/.." && pwd)
release=${GO_IMAGE_DEBIAN:-bookworm}
ca_bundle=${GO_IMAGE_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
packages=ca-certificates,gcc,libc6-dev,make,pkg-config,git
# How often a long step says that it still runs.
progress_seconds=20

say() { printf 'go-image.sh: %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

context="" progress_pid=""
cleanup() {
  [ -z "$progress_pid" ] || kill "$progress_pid" 2>/dev/null || true
  [ -z "$context" ] || rm -rf "$context"
}
trap cleanup EXIT

# shellcheck source-path=SCRIPTDIR source=progress.sh
. "$here/scripts/progress.sh"

go=${GO:-$(command -v go || echo /usr/local/go/bin/go)}
[ -x "$go" ] || die "no go command found; install an official Go release or set GO=/path/to/go"
goroot=$("$go" env GOROOT)
if [ ! -x "$goroot/bin/go" ] || [ ! -d "$goroot/src/cmd" ]; then
  die "$goroot is not a complete Go root (bin/go, src/cmd); install an official Go release"
fi
goarch=$("$go" env GOARCH)
case $goarch in
  amd64 | arm64 | 386 | ppc64le | s390x | riscv64) debarch=$goarch ;;
  arm) debarch=armhf ;;
  *) die "no Debian architecture known for GOARCH=$goarch" ;;
esac
context=$(mktemp -d "${TMPDIR:-/tmp}/go-image.XXXXXX")

# The root filesystem, made once: a tarball whose name says what it holds.
cache=${XDG_CACHE_HOME:-$HOME/.cache}/sibling-run/rootfs
rootfs_tar=$cache/debian-$release-$debarch-${packages//,/-}.tar
if [ -s "$rootfs_tar" ]; then
  say "Debian $release root filesystem: kept ($rootfs_tar)"
else
  [ "$(id -u)" = 0 ] || die "making the Debian root filesystem needs root (debootstrap); run once as root, or with sudo"
  if ! command -v debootstrap >/dev/null; then
    say "installing Debian's debootstrap (it makes the image's root filesystem)"
    { apt-get update -qq && apt-get install -y -qq debootstrap >/dev/null; } ||
      die "could not install debootstrap; install it with: apt-get install debootstrap"
  fi
  mirror=${DEBIAN_MIRROR:-}
  if [ -z "$mirror" ] && command -v apt-get >/dev/null; then
    # The mirror apt already uses here for the release's main component
    # ($(...) are apt's format fields, not the shell's).
    # shellcheck disable=SC2016
    mirror=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE)' 'Created-By: Packages' 2>/dev/null |
      awk '$2 !~ /-(security|updates|backports)$/ { print $1; exit }')
  fi
  [ -n "$mirror" ] || die "no Debian mirror known; set DEBIAN_MIRROR to the one apt uses"
  root=$context/rootfs
  run_with_progress "debootstrap of Debian $release ($packages)" \
    debootstrap --variant=minbase --arch="$debarch" --include="$packages" "$release" "$root" "$mirror"
  # What a build never needs: downloaded packages, documentation (not the
  # licences), translations; and the names of this host.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale/*
  find "$root/usr/share/doc" -type f ! -name copyright -delete
  : >"$root/etc/hostname"
  mkdir -p "$cache"
  # Device nodes stay out: the engine gives every container its own /dev.
  tar --numeric-owner -C "$root" --exclude=./dev/* --exclude=./proc/* --exclude=./sys/* -cf "$rootfs_tar.partial" .
  mv "$rootfs_tar.partial" "$rootfs_tar"
  rm -rf "$root"
  say "Debian $release root filesystem: $(du -m "$rootfs_tar" | cut -f1) MB, kept as $rootfs_tar"
fi

cp "$here/images/go/Dockerfile" "$context/"
ln "$rootfs_tar" "$context/rootfs.tar" 2>/dev/null || cp "$rootfs_tar" "$context/rootfs.tar"
mkdir "$context/ca"
if [ -n "$ca_bundle" ]; then
  [ -s "$ca_bundle" ] || die "no CA bundle at $ca_bundle; set GO_IMAGE_CA_BUNDLE to the host's, or empty for Debian's own"
  cp "$ca_bundle" "$context/ca/ca-certificates.crt"
fi
say "copying the Go root $goroot ($("$go" env GOVERSION))"
cp -a "$goroot" "$context/go"
label=()
[ -z "${IMAGE_LABEL:-}" ] || label=(--label "$IMAGE_LABEL")
run_with_progress "building $tag (compiling ${GO_IMAGE_PREBUILD-std} into its build cache)" \
  docker build "${label[@]}" --build-arg "PREBUILD=${GO_IMAGE_PREBUILD-std}" -t "$tag" "$context"
say "$tag: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%d MB", $1 / 1000000 }')"
echo "$tag"
