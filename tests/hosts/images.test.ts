/**
 * `npm run images` against the test host's engine: a lab image is built there FROM the
 * base (which hosts/run.ts loaded with the labs), through the Engine API with
 * --network none. On the rootless host that is the laptop case: no step needs root.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { describe, test } from 'node:test';
import Docker from 'dockerode';
import { labImageTag } from '../../labs/images.ts';
import { ROOT } from '../support/server.ts';
import { scaled } from '../support/slowness.ts';
import { hostKind } from './support.ts';

const kind = hostKind();

function run(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, args, {
      cwd: ROOT,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`build-images did not finish:\n${out}`));
    }, scaled(60_000));
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

describe(`lab images on the ${kind} host`, () => {
  test('npm run images builds a missing lab image through this engine', async () => {
    const tag = labImageTag('processes');
    const docker = new Docker();
    // Gone first, with its own layers (the base stays): the build below cannot be a cache hit.
    await docker.getImage(tag).remove();
    await assert.rejects(docker.getImage(tag).inspect(), /no such image/i);
    const r = await run(['labs/build-images.ts', '--lab', 'processes']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`${tag.replace(/[/.]/g, '\\$&')}: built`), r.out);
    assert.doesNotMatch(r.out, /debootstrap/, 'the base was there: nothing needed root');
    const after = await docker.getImage(tag).inspect();
    assert.equal(after.Config.Labels['containerlabs.image'], 'lab');
    assert.equal(after.Config.Labels['containerlabs.lab'], 'processes');
  });
});
