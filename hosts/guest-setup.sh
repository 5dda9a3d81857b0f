#!/bin/sh
# Runs inside the guest's root filesystem (chroot) while hosts/build.ts assembles the disk,
# after hosts/guest/ has been copied over it. Offline: it only configures what mmdebstrap
# installed.
set -eu

# The ordinary user of the rootless host (uid 1000, as on a laptop), with the subordinate
# uid and gid range a rootless engine maps its containers into (65536 wide: Docker's
# rootless guide; lab hosts pick from 20000-59999 there).
useradd --uid 1000 --user-group --shell /bin/bash --no-create-home learner
echo 'learner:100000:65536' >/etc/subuid
echo 'learner:100000:65536' >/etc/subgid
mkdir -p /home/learner/.config/systemd/user/default.target.wants
ln -sf ../docker.service /home/learner/.config/systemd/user/default.target.wants/docker.service
chown -R learner:learner /home/learner
chmod 0750 /home/learner
# Lingering: learner's user manager (and so its engine) starts at boot, no login needed.
mkdir -p /var/lib/systemd/linger
: >/var/lib/systemd/linger/learner

systemctl enable systemd-networkd.service cl-api-rootful.socket cl-api-rootless.socket >/dev/null 2>&1
# Nothing on this machine waits for a network it can never reach, logs in on a console,
# or runs maintenance timers in the middle of a test run.
systemctl mask systemd-networkd-wait-online.service getty@tty1.service serial-getty@ttyS0.service \
  apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
  >/dev/null 2>&1

# No password anywhere: the host drives the guest through the QEMU guest agent.
passwd -l root >/dev/null
: >/etc/machine-id
