import assert from 'node:assert/strict';
import { test } from 'node:test';
import { debFile, dscFiles, parseShow, parseSources } from './apt.ts';

test("apt's Debian sources, one-line and deb822, for one codename", () => {
  const got = parseSources(
    [
      {
        name: 'sources.list',
        text: 'deb [signed-by=/k.gpg] http://m.example/debian bookworm main contrib\n# deb http://x bookworm main\ndeb http://o.example/ubuntu jammy main\n',
      },
      {
        name: 'debian.sources',
        text: 'Types: deb\nURIs: http://deb.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb-src\nURIs: http://src.example\nSuites: bookworm\nComponents: main\n\nTypes: deb\nURIs: http://off.example\nSuites: bookworm\nEnabled: no\n',
      },
      { name: 'other.list.disabled', text: 'deb http://x bookworm main\n' },
    ],
    'bookworm',
  );
  assert.deepEqual(got, [
    {
      uri: 'http://m.example/debian',
      suite: 'bookworm',
      components: ['main', 'contrib'],
      signedBy: '/k.gpg',
    },
    {
      uri: 'http://deb.example/debian',
      suite: 'bookworm',
      components: ['main'],
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    },
    {
      uri: 'http://deb.example/debian',
      suite: 'bookworm-updates',
      components: ['main'],
      signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg',
    },
  ]);
});

test('apt-cache show: version, source (binNMU and epoch), file', () => {
  const p = parseShow(
    'Package: bash\nVersion: 5.2.15-2+b13\nArchitecture: i386\nSource: bash (5.2.15-2)\nDepends: base-files (>= 2.1.12),\n debianutils (>= 5.6-0.1)\nFilename: pool/main/b/bash/bash_5.2.15-2+b13_i386.deb\nSHA256: abc\n',
  );
  assert.equal(p.name, 'bash');
  assert.equal(p.version, '5.2.15-2+b13');
  assert.equal(p.source, 'bash');
  assert.equal(p.sourceVersion, '5.2.15-2');
  assert.match(p.depends, /debianutils/);
  const q = parseShow(
    'Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\nFilename: pool/main/z/zlib/zlib1g_1.2.13.dfsg-1_i386.deb\n',
  );
  assert.equal(q.source, 'zlib1g');
  assert.equal(debFile('/d', { ...q, sha256: '' }), '/d/zlib1g_1%3a1.2.13.dfsg-1_i386.deb');
  assert.throws(() => parseShow('nothing here'), /no Package\/Version/);
});

test('the files a .dsc names', () => {
  const dsc =
    'Format: 3.0 (quilt)\nSource: bash\nFiles:\n 0123 5000 bash_5.2.15.orig.tar.xz\n 4567 90 bash_5.2.15-2.debian.tar.xz\nChecksums-Sha256:\n aa 5000 bash_5.2.15.orig.tar.xz\n';
  assert.deepEqual(dscFiles(dsc), ['bash_5.2.15.orig.tar.xz', 'bash_5.2.15-2.debian.tar.xz']);
});
