#!/usr/bin/env bash
# Make sure a Docker engine with Compose v2 and buildx answers on this machine.
# On Debian 12 it installs docker.io, plus docker-compose and docker-buildx from
# trixie (pinned low so nothing else is upgraded), then starts dockerd.
# Elsewhere it only checks and says what to install.
set -euo pipefail

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

have_compose_v2() { docker compose version >/dev/null 2>&1; }
engine_up() { docker info >/dev/null 2>&1; }

if command -v docker >/dev/null 2>&1 && engine_up && have_compose_v2; then
  log "engine $(docker version -f '{{.Server.Version}}') and $(docker compose version --short) are ready"
  exit 0
fi

# The install path is for Debian (12 or 13) only; elsewhere say what to install.
distro=$(. /etc/os-release 2>/dev/null && echo "${ID:-}")
if [ "$(id -u)" != 0 ] || [ "$distro" != debian ]; then
  command -v docker >/dev/null 2>&1 || die "no docker command: install Docker Engine with the Compose v2 plugin (https://docs.docker.com/engine/install/) and re-run"
  engine_up || die "the Docker daemon is not running or not reachable: start it (e.g. 'sudo systemctl start docker') and check 'docker info'"
  have_compose_v2 || die "Compose v2 is missing ('docker compose version' fails; docker-compose v1 is not enough): install the docker-compose-plugin"
fi

need_install=()
command -v dockerd >/dev/null 2>&1 || need_install+=(docker.io)
if [ ${#need_install[@]} -gt 0 ] || ! have_compose_v2 || ! docker buildx version >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  if [ "$codename" != trixie ] && [ ! -f /etc/apt/sources.list.d/trixie.sources ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || die "cannot find the Debian mirror in the apt sources"
    log "adding trixie ($mirror) to apt sources at pin priority 100"
    cat > /etc/apt/sources.list.d/trixie.sources <<SRC
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    cat > /etc/apt/preferences.d/trixie-low <<PIN
Package: *
Pin: release n=trixie
Pin-Priority: 100
PIN
  fi
  log "installing docker.io, docker-compose (v2) and docker-buildx"
  apt-get update -qq
  apt-get install -y -qq docker.io iptables debootstrap >/dev/null
  if [ "$codename" = trixie ]; then
    apt-get install -y -qq docker-compose docker-buildx >/dev/null
  else
    apt-get install -y -qq -t trixie docker-compose docker-buildx >/dev/null
  fi
fi

if ! engine_up; then
  log "starting dockerd"
  mkdir -p /var/log
  nohup dockerd >/var/log/dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    engine_up && break
    sleep 1
  done
  engine_up || die "dockerd did not come up; see /var/log/dockerd.log"
fi
have_compose_v2 || die "Compose v2 is still missing after install"
log "engine $(docker version -f '{{.Server.Version}}') and compose $(docker compose version --short) are ready"
