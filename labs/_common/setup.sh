#!/bin/sh
# Build step of every lab image (runs as root inside `docker build --network none`),
# after the common files (rootfs/) and the lab's own files (labs/<id>/image/) were copied.
set -eu

# The reader: the only user a lab host ever runs as. Each lab host runs under a uid of its
# own, picked by the server (server/src/runtime/docker/uid-allocator.ts), so the uid here is
# only a template: lab-init writes the real /etc/passwd and /etc/group at start.
groupadd --gid 1000 reader
useradd --uid 1000 --gid 1000 --home-dir /home/reader --shell /bin/bash --no-create-home \
  --comment 'Container Labs reader' reader
# At run time /home/reader and /run/lab are tmpfs mounts owned by the lab host's uid (the
# image's root filesystem is read-only); the directories only have to exist.
install -d -m 0755 /home/reader /run/lab

# /etc/passwd and /etc/group point into /run/lab, where lab-init (PID 1, the lab host's
# uid) writes them from these originals with `reader` = its own uid, so `whoami`, `id`, the
# prompt and `ps` say reader whatever the number. It costs lab-init about 6 ms at start
# and the image 4 KB. The other way, one passwd naming every uid the server may pick, was
# measured too: 7.6 MB per image for 100 000 uids (more for every range an operator sets),
# getpwuid() reads the file line by line (19 ms for a uid near its end, against 2 ms), and
# getpwnam("reader") would find the first of 100 000 readers, not ours.
# WARNING: the engine cannot see /run/lab from outside (it is a tmpfs in the container),
# so Docker finds no passwd for `User`: the specs set HOME themselves and use numeric ids.
install -d -m 0755 /usr/local/share/containerlabs
mv /etc/passwd /etc/group /usr/local/share/containerlabs/
ln -s /run/lab/passwd /etc/passwd
ln -s /run/lab/group /etc/group
rm -f /etc/passwd- /etc/group-

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
