#!/bin/sh
# Build step of every lab image (runs as root inside `docker build --network none`),
# after the common files (rootfs/) and the lab's own files (labs/<id>/image/) were copied.
set -eu

# The reader: the only user a lab host ever runs as (uid/gid 1000; the server's exec
# and container specs use the numbers, not the name).
groupadd --gid 1000 reader
useradd --uid 1000 --gid 1000 --home-dir /home/reader --shell /bin/bash --no-create-home \
  --comment 'Container Labs reader' reader
# At run time /home/reader and /run/lab are tmpfs mounts owned by 1000 (the image's
# root filesystem is read-only); the directories only have to exist.
install -d -o 1000 -g 1000 -m 0755 /home/reader
install -d -o 1000 -g 1000 -m 0755 /run/lab

# Scripts must be executable whatever the checkout did to their modes.
find /usr/local/bin /usr/local/sbin /usr/local/lib/containerlabs -type f -exec chmod 0755 {} +
[ -d /opt/lab ] && find /opt/lab -type f -name '*.sh' -exec chmod 0755 {} +

# No setuid/setgid bits (programs: mount, su, passwd, ...; directories: /var/mail, ...).
# The lab host also runs with no-new-privileges, so they could not gain anything; strip
# them anyway so that `find / -perm /6000` shows the reader an honest picture.
find / -xdev -perm /6000 -exec chmod ug-s {} +
if [ -n "$(find / -xdev -perm /6000)" ]; then
  echo 'setup.sh: setuid/setgid files left' >&2
  exit 1
fi
