#!/bin/sh
# Shrinks a freshly built base root filesystem. Usage: trim.sh <root dir>
# Runs on the build machine against the debootstrap tree, or inside the registry build
# with "/" as the argument. Keeps the copyright files (licences travel with the binaries).
set -eu
root=${1:?usage: trim.sh <root dir>}
cd "$root"
rm -rf var/cache/apt/archives/*.deb var/cache/apt/*.bin var/lib/apt/lists/*
rm -rf usr/share/man/* usr/share/info/* usr/share/locale/* usr/share/lintian
find usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete 2>/dev/null || true
find usr/share/doc -mindepth 1 -type d -empty -delete 2>/dev/null || true
rm -rf var/log/* tmp/* var/tmp/*
rm -f etc/machine-id var/lib/dbus/machine-id
# Docker provides these at run time; do not ship the build machine's. (Inside a
# `docker build` step they are bind mounts of the build container: leave them.)
if [ "$root" != / ]; then
  : > etc/resolv.conf
  : > etc/hostname
fi
