/**
 * A lab author's mistakes in lab.yaml get a message that names the file and the field, and
 * says what is wanted (labs/schema.ts, labs/load.ts): the server refuses to start with it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LabDefinitionError, parseLab } from './load.ts';

const FILE = 'labs/demo/lab.yaml';

/** A valid lab.yaml; each case below breaks one thing in it. */
const VALID = `id: demo
title: A demo lab
app:
  command: exec busybox httpd -f -p 8080 -h /srv/www
terminals:
  - name: host
    title: On the host
    target: host
`;

/** The message parseLab throws for `text`; fails if it does not throw a LabDefinitionError. */
function problem(text: string, folderId?: string): string {
  try {
    parseLab(FILE, text, folderId);
  } catch (err) {
    assert.ok(err instanceof LabDefinitionError, `not a LabDefinitionError: ${err}`);
    assert.equal(err.file, FILE);
    return err.message;
  }
  assert.fail(`no error for:\n${text}`);
}

describe('lab.yaml errors name the file and the field', () => {
  it('a valid definition parses, with the defaults filled in', () => {
    const lab = parseLab(FILE, VALID, 'demo');
    assert.equal(lab.app.hostname, 'box');
    assert.deepEqual(lab.limits, { memory: '128m', cpus: 0.5, pids: 100, tmp: '16m' });
    assert.deepEqual(lab.checks, []);
  });

  const cases: [what: string, text: string, field: RegExp, says: RegExp][] = [
    ['a missing title', VALID.replace('title: A demo lab\n', ''), /at title\b/, /expected string/],
    [
      'a memory size without a unit letter',
      `${VALID}limits:\n  memory: 128 MB\n`,
      /at limits\.memory/,
      /"128m"/,
    ],
    ['more CPUs than allowed', `${VALID}limits:\n  cpus: 8\n`, /at limits\.cpus/, /<=\s?4/],
    [
      'an unknown terminal target',
      VALID.replace('target: host', 'target: vm'),
      /at terminals\[0\]\.target/,
      /"host"\|"container"/,
    ],
    [
      'a terminal name used twice',
      `${VALID}  - name: host\n    title: Again\n    target: container\n`,
      /at terminals\b/,
      /terminal name "host" is used twice/,
    ],
    ['an unknown key (a typo)', `${VALID}colour: blue\n`, /"colour"/, /Unrecognized key/],
    [
      'a check command that is not a regular expression',
      `${VALID}checks:\n  - id: sleep\n    kind: process\n    title: t\n    hint: h\n    command: "(["\n    where: container\n`,
      /at checks\[0\]\.command/,
      /a valid regular expression/,
    ],
    [
      'an unknown check kind',
      `${VALID}checks:\n  - id: sleep\n    kind: magic\n    title: t\n    hint: h\n`,
      /at checks\[0\]\.kind/,
      /'process'.*'cgroup-limit'/,
    ],
  ];
  for (const [what, text, field, says] of cases) {
    it(what, () => {
      const message = problem(text);
      assert.ok(message.startsWith(`${FILE}: `), `the file comes first: ${message}`);
      assert.match(message, field, 'names the field');
      assert.match(message, says, 'says what is wanted');
    });
  }

  it('every problem is listed, not only the first', () => {
    const message = problem(VALID.replace('title: A demo lab\n', '').replace('target: host', 'target: vm'));
    assert.match(message, /at title\b/);
    assert.match(message, /at terminals\[0\]\.target/);
  });

  it('an id other than the folder name', () => {
    assert.equal(problem(VALID, 'other'), `${FILE}: id "demo" must equal the folder name "other"`);
  });

  it('text that is not YAML says where', () => {
    const message = problem('id: demo\ntitle: [unclosed\n');
    assert.match(message, new RegExp(`^${FILE}: not valid YAML: .*line \\d+, column \\d+`, 's'));
  });
});
