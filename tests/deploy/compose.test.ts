/**
 * The packaged server (Dockerfile + compose.yaml) against the real engine: build the image
 * from this machine's files (reused when its inputs are unchanged), `up` the compose stack
 * on a free loopback port, wait for Docker to call it healthy, run a lab through it
 * (POST, the host terminal's WebSocket, `ps -ef`), list it with the admin CLI inside the
 * container, then the final shutdown (admin CLI) and `down`: the lab hosts are removed.
 * The server reaches the engine only through the engine filter's socket: it has no engine
 * socket of its own, and the filter refused nothing it asked for.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { describe, test } from 'node:test';
import { freePort, labContainers, TermClient } from '../support/server.ts';
import { composeCommand, run, testNetwork, until, useComposeProject } from './support.ts';

describe('compose stack (real engine)', () => {
  // (Down with its volumes, whatever happened.)
  const stack = useComposeProject(`cldeploy${process.pid}`, ['-v']);
  const project = stack.name;
  const instance = `deploy-compose-${process.pid}`;

  test('image build, up → healthy, a lab session through it, admin list, down', async (t) => {
    stack.compose = composeCommand();
    let t0 = performance.now();
    const built = run([process.execPath, 'deploy/build-image.ts', '--quiet'], { timeoutMs: 600_000 });
    assert.equal(built.code, 0, `npm run image failed:\n${built.out}`);
    const tag = built.out.trim().split('\n').pop()!;
    assert.match(tag, /^containerlabs\/server:[0-9a-f]{12}$/);
    t.diagnostic(
      `image ${tag}: ${/up to date/.test(built.out) ? 'reused' : 'built'} in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    );
    const size = run(['docker', 'image', 'inspect', '-f', '{{.Size}}', tag]);
    t.diagnostic(`image size ${(Number(size.out.trim()) / 1e6).toFixed(0)} MB`);

    const port = await freePort();
    stack.env = {
      CL_IMAGE: tag,
      CL_PUBLISH: `127.0.0.1:${port}`,
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      CL_DRAIN_GRACE: '1s',
      DOCKER_GID: String(statSync('/var/run/docker.sock').gid),
      // Not the fixed default subnet: another stack may hold it meanwhile.
      ...testNetwork(),
    };
    t0 = performance.now();
    stack.up = true;
    const started = stack.run(['up', '-d', '--no-build']);
    assert.equal(started.code, 0, `compose up failed:\n${started.out}`);
    const server = stack.run(['ps', '-q', 'server']).out.trim();
    assert.match(server, /^[0-9a-f]{12,64}$/, 'the server container exists');
    const filter = stack.run(['ps', '-q', 'engine-filter']).out.trim();
    assert.match(filter, /^[0-9a-f]{12,64}$/, 'the engine filter container exists');
    const mounts = JSON.parse(run(['docker', 'inspect', '-f', '{{json .Mounts}}', server]).out) as {
      Source: string;
      Destination: string;
    }[];
    assert.ok(
      !mounts.some((m) => m.Source === '/var/run/docker.sock' || m.Destination === '/var/run/docker.sock'),
      `the server has no engine socket: ${JSON.stringify(mounts)}`,
    );
    let health = '';
    await until(
      'the server container to be healthy',
      () => {
        health = run(['docker', 'inspect', '-f', '{{.State.Health.Status}}', server]).out.trim();
        assert.notEqual(health, 'unhealthy', run(['docker', 'logs', server]).out);
        return health === 'healthy';
      },
      90_000,
    );
    t.diagnostic(`compose up → healthy in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    const images = stack.run(['logs', '--no-color', 'images']).out;
    assert.match(images, /containerlabs\/lab-processes:[0-9a-f]{12}: (up to date|built)/, images);

    const base = `http://127.0.0.1:${port}`;
    const h = await (await fetch(`${base}/api/v1/health`)).json();
    assert.equal(h.labs.available, true);
    assert.match(await (await fetch(`${base}/`)).text(), /<html/i, 'the site is served from the image');

    const r = await fetch(`${base}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"lab":"processes"}',
    });
    assert.equal(r.status, 201, await r.clone().text());
    const s = await r.json();
    assert.equal((await labContainers(instance)).length, 1, 'one lab host on the host engine');
    const host = await TermClient.open(base, s, 'host');
    await host.ready();
    const ps = await host.exec('ps -ef');
    assert.match(ps, /lab-init|unshare/, `ps -ef on the lab host:\n${ps}`);
    // The lab host's uid is its own (a number from CL_LAB_UIDS); lab-init names it reader.
    assert.match(ps, /^reader /m);
    await host.close();

    const list = stack.run(['exec', '-T', 'server', 'node', 'scripts/admin.ts', 'list']);
    assert.equal(list.code, 0, list.out);
    assert.match(list.out, new RegExp(`${s.id}\\s+processes`));
    assert.match(list.out, /\d+\.\d\/128\.0/, 'memory use and limit of the lab host');
    assert.ok(!list.out.includes(s.token), 'the session token is never shown');

    t0 = performance.now();
    const filterLog = run(['docker', 'logs', filter]).out;
    assert.match(filterLog, /engine filter listening/);
    assert.doesNotMatch(filterLog, /"msg":"refused"/, 'the filter refused nothing the server asked for');

    // The end of a course, as compose.yaml says: the final shutdown, then `down` (a plain
    // `down` is a restart, CL_ON_SIGTERM=restart, which leaves the sessions' lab hosts).
    const shutdown = stack.run(['exec', '-T', 'server', 'node', 'scripts/admin.ts', 'shutdown']);
    assert.equal(shutdown.code, 0, shutdown.out);
    assert.match(shutdown.out, /final shutdown: the server ends its 1 session/);
    const down = stack.run(['down', '-v', '-t', '30']);
    assert.equal(down.code, 0, down.out);
    stack.up = false;
    t.diagnostic(`compose down in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    assert.deepEqual(await labContainers(instance), [], 'the lab host was removed on the way out');
    assert.equal(
      run(['docker', 'ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]).out.trim(),
      '',
    );
    assert.equal(
      run([
        'docker',
        'volume',
        'ls',
        '-q',
        '--filter',
        `label=com.docker.compose.project=${project}`,
      ]).out.trim(),
      '',
      "the filter's socket volume is gone too",
    );
  });

  test('a wrong socket group stops the image at once, with the command that fixes it', () => {
    const image = stack.env.CL_IMAGE ?? 'containerlabs/server:local';
    const gid = statSync('/var/run/docker.sock').gid;
    const sock = '/var/run/docker.sock:/var/run/docker.sock';
    const r = run(['docker', 'run', '--rm', '--group-add', '54321', '-v', sock, image]);
    assert.equal(r.code, 78, r.out);
    assert.match(r.out, new RegExp(`may not use /var/run/docker.sock, which belongs to group ${gid}`));
    assert.match(r.out, new RegExp(`DOCKER_GID=${gid} docker compose up -d`));
  });
});
