import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import Docker from 'dockerode';
import { BuildError, followStream } from './build-images.ts';

// No engine is asked: followProgress only reads the stream it is given.
const docker = new Docker({ socketPath: '/nonexistent/docker.sock' });

test('followStream: every event, also when a line is split across chunks; resolves at the end', async () => {
  const stream = new PassThrough();
  const events: Record<string, unknown>[] = [];
  const done = followStream(docker, stream, (ev) => events.push(ev));
  stream.write('{"stream":"Step 1/2 : FROM x\\n"}\n{"stre');
  stream.write('am":"Step 2/2 : RUN y\\n"}\r\n\n');
  stream.end('{"aux":{"ID":"sha256:abc"}}\n');
  await done;
  assert.deepEqual(events, [
    { stream: 'Step 1/2 : FROM x\n' },
    { stream: 'Step 2/2 : RUN y\n' },
    { aux: { ID: 'sha256:abc' } },
  ]);
});

test('followStream: the first error event rejects, once the stream ends', async () => {
  const stream = new PassThrough();
  let seen = 0;
  const done = followStream(docker, stream, () => seen++);
  stream.write('{"stream":"Step 1/1 : RUN false\\n"}\n');
  stream.write('{"errorDetail":{"code":1,"message":"exit 1"},"error":"The command returned 1"}\n');
  stream.end('{"error":"a second one"}\n');
  await assert.rejects(
    done,
    (err: unknown) => err instanceof BuildError && err.message === 'The command returned 1',
  );
  assert.equal(seen, 3, 'events after the error are still passed on');
});

test('followStream: a stream error rejects', async () => {
  const stream = new PassThrough();
  const done = followStream(docker, stream);
  stream.destroy(new Error('socket hang up'));
  await assert.rejects(done, /socket hang up/);
});
