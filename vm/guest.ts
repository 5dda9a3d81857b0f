/**
 * The recipe of the in-browser VM (vm/README.md): which Debian packages go into the guest,
 * which of their programs, and how the VM is booted. Changing anything here changes the
 * build's hash (vm/lib/inputs.ts), so the next `npm run build` makes new states.
 */

/**
 * Debian i386 packages whose files the guest takes (their dependencies are not followed:
 * only the libraries the programs below really load go in, found from the ELF files).
 * `linux-image-686` is Debian's meta-package: the build takes the kernel it depends on.
 */
export const PACKAGES = [
  'linux-image-686',
  'busybox-static',
  'bash',
  'coreutils',
  'procps',
  'psmisc',
  'util-linux',
  'util-linux-extra',
  'iproute2',
  'less',
  'ncurses-base',
  'base-files',
  // Libraries: every package a program's DT_NEEDED closure reaches must be listed; the
  // build stops and names a missing one.
  'libc6',
  'libtinfo6',
  'libncursesw6',
  'libproc2-0',
  'libsystemd0',
  'libcap2',
  'libgcrypt20',
  'libgpg-error0',
  'liblz4-1',
  'liblzma5',
  'libzstd1',
  'libmount1',
  'libblkid1',
  'libsmartcols1',
  'libselinux1',
  'libpcre2-8-0',
  'libcap-ng0',
  'libbpf1',
  'libbsd0',
  'libmd0',
  'libelf1',
  'zlib1g',
  'libmnl0',
  'libudev1',
  'libtirpc3',
  'libgssapi-krb5-2',
  'libkrb5-3',
  'libk5crypto3',
  'libcom-err2',
  'libkrb5support0',
  'libkeyutils1',
  'libssl3',
] as const;

/** The BIOS files, from Debian's `seabios` (architecture all). */
export const BIOS_PACKAGE = 'seabios';
export const BIOS_FILES = {
  bios: '/usr/share/seabios/bios.bin',
  vgaBios: '/usr/share/seabios/vgabios-stdvga.bin',
};

/** Programs copied from the packages (same path in the guest), with the libraries they load. */
export const PROGRAMS = [
  '/bin/bash',
  '/bin/busybox',
  // coreutils' tail keeps a stream without newlines whole (busybox's does not), as mem-hog
  // (labs/cgroups) needs; its `head -c` is busybox's, so mem-hog gives a byte count.
  '/usr/bin/tail',
  // procps: the `ps -ef` of the lessons, and its friends.
  '/bin/ps',
  '/usr/bin/pgrep',
  '/usr/bin/pkill',
  '/usr/bin/top',
  '/usr/bin/free',
  '/usr/bin/uptime',
  '/usr/bin/pstree',
  '/usr/bin/killall',
  // util-linux: the namespace tools.
  '/usr/bin/unshare',
  '/usr/bin/nsenter',
  '/usr/bin/lsns',
  '/usr/bin/setpriv',
  '/usr/bin/setsid',
  '/bin/findmnt',
  '/usr/bin/ipcs',
  '/usr/bin/ipcmk',
  '/usr/bin/ipcrm',
  // iproute2: interfaces, namespaces, bridges, sockets.
  '/bin/ip',
  '/sbin/ip',
  '/sbin/bridge',
  '/bin/ss',
  '/usr/bin/less',
] as const;

/** Other files taken as they are: [path in the package tree, path in the guest]. */
export const FILES: readonly (readonly [string, string])[] = [
  ['/usr/share/base-files/profile', '/etc/profile'],
  ['/lib/terminfo/x/xterm-256color', '/lib/terminfo/x/xterm-256color'],
  ['/lib/terminfo/x/xterm', '/lib/terminfo/x/xterm'],
  ['/lib/terminfo/l/linux', '/lib/terminfo/l/linux'],
  ['/lib/terminfo/v/vt100', '/lib/terminfo/v/vt100'],
  ['/lib/terminfo/d/dumb', '/lib/terminfo/d/dumb'],
];

/**
 * Kernel modules loaded at boot (with what they depend on): the virtio console the control
 * channel uses (hvc1), veth pairs and bridges.
 */
export const MODULES = ['virtio_pci', 'virtio_console', 'veth', 'bridge'] as const;

/**
 * Guest memory. WARNING: v86 puts the initrd at 64 MiB, so 64 MiB of memory crashes the
 * boot; and a state restores only into a VM of the memory size it was saved with.
 */
export const MEMORY_BYTES = 96 * 1024 * 1024;
/** VGA memory is part of every state; the guest uses only the serial ports. */
export const VGA_MEMORY_BYTES = 256 * 1024;

/**
 * Kernel command line: the kernel's console on the VGA text screen, which no reader sees
 * (so kernel messages never land in a terminal; the build reads the screen when a boot
 * fails), quiet, no mitigations (there is nothing to protect inside one reader's VM from
 * that reader, and they cost instructions), no KASLR (the same layout every boot).
 */
export const CMDLINE = 'console=tty0 tsc=reliable mitigations=off nokaslr quiet loglevel=3 rdinit=/init';

/**
 * The memory a lab's cgroup may use in the VM: lab.yaml's `limits.memory` where it fits,
 * else this (the VM has 96 MiB in all; the kernel and the initramfs use about 35).
 */
export const MAX_LAB_MEMORY_BYTES = 40 * 1024 * 1024;
