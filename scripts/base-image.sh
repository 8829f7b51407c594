#!/usr/bin/env bash
# Provide the lab's Debian trixie OS image under one name, online or offline.
#   BASE_SOURCE=auto (default): reuse the image if present; else tag a local
#     debian:trixie-slim if one exists; else build it offline with debootstrap
#     when that is installed; else pull debian:trixie-slim.
#   BASE_SOURCE=pull: docker pull debian:trixie-slim (needs a registry).
#   BASE_SOURCE=debootstrap: always build offline from the apt mirror.
set -euo pipefail
NAME=${OS_IMAGE:-safeq-lab/os:trixie}
SOURCE=${BASE_SOURCE:-auto}
log() { printf 'base-image: %s\n' "$*" >&2; }

mirror() {
  local m
  m=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$m" ] || m=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  echo "${m:-http://deb.debian.org/debian}"
}

from_debootstrap() {
  command -v debootstrap >/dev/null || { log "debootstrap is missing: apt-get install debootstrap (or BASE_SOURCE=pull)"; exit 1; }
  local url
  url=${DEBIAN_MIRROR:-$(mirror)}
  ROOTFS=$(mktemp -d /tmp/safeq-rootfs.XXXXXX)
  trap 'rm -rf "$ROOTFS"' EXIT
  local dir=$ROOTFS
  log "debootstrap --variant=minbase trixie from $url (under a minute)"
  debootstrap --variant=minbase trixie "$dir" "$url" >"$dir.log" 2>&1 || { log "debootstrap failed, see $dir.log"; exit 1; }
  rm -f "$dir.log"
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*
  tar -C "$dir" -c . | docker import -c 'CMD ["/bin/bash"]' - "$NAME" >/dev/null
  log "imported $NAME"
}

from_registry() {
  log "pulling debian:trixie-slim (offline machines: BASE_SOURCE=debootstrap, as root with debootstrap installed)"
  docker pull -q debian:trixie-slim >/dev/null || { log "cannot pull debian:trixie-slim: install debootstrap for the offline path"; exit 1; }
  docker tag debian:trixie-slim "$NAME"
  log "tagged debian:trixie-slim as $NAME"
}

case "$SOURCE" in
  auto)
    if docker image inspect "$NAME" >/dev/null 2>&1; then log "$NAME is present"; exit 0; fi
    if docker image inspect debian:trixie-slim >/dev/null 2>&1; then
      docker tag debian:trixie-slim "$NAME"; log "tagged debian:trixie-slim as $NAME"; exit 0
    fi
    # debootstrap needs root; anyone else takes the online path.
    if command -v debootstrap >/dev/null && [ "$(id -u)" = 0 ]; then from_debootstrap; else from_registry; fi ;;
  pull) from_registry ;;
  debootstrap) from_debootstrap ;;
  *) log "BASE_SOURCE must be auto, pull or debootstrap (got '$SOURCE')"; exit 2 ;;
esac
