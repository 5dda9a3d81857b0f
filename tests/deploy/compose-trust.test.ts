/**
 * Who may say who the client is, in the compose stack as shipped (no CL_TRUST_PROXY or
 * CL_SUBNET given: their defaults are what is tested). The server trusts X-Forwarded-For
 * only from its network's gateway, where every connection through the published port
 * comes from; any other peer that reaches the server (another container of the network,
 * a process in the server's container) sends its own X-Forwarded-For in vain and gets the
 * per-client limits of its real address.
 *
 * Traffic goes to the published loopback port only. The untrusted peer is a process inside
 * the server's own container (`compose exec`), talking to that container's loopback: a
 * source address that is not the gateway, without sending anything to a container's
 * address. Who the server took each client for is read from its admin API.
 */
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { describe, test } from 'node:test';
import { freePort, labContainers } from '../support/server.ts';
import { composeCommand, composeUpHealthy, run, useComposeProject } from './support.ts';

const LAB = '{"lab":"processes"}';

describe('compose stack: forwarded addresses only from its own proxy path (real engine)', () => {
  const stack = useComposeProject(`cltrust${process.pid}`);
  const project = stack.name;
  const instance = `deploy-trust-${process.pid}`;

  test('published port: the gateway is the proxy; a peer forging X-Forwarded-For is its own client', async (t) => {
    stack.compose = composeCommand();
    const built = run([process.execPath, 'deploy/build-image.ts', '--quiet'], { timeoutMs: 600_000 });
    assert.equal(built.code, 0, `npm run image failed:\n${built.out}`);
    const port = await freePort();
    stack.env = {
      CL_IMAGE: built.out.trim().split('\n').pop()!,
      CL_PUBLISH: `127.0.0.1:${port}`,
      CL_INSTANCE: instance,
      CL_POOL_SIZE: '0',
      CL_DRAIN_GRACE: '1s',
      CL_MAX_SESSIONS_PER_CLIENT: '1',
      DOCKER_GID: String(statSync('/var/run/docker.sock').gid),
    };
    const server = await composeUpHealthy(stack);

    const subnet = run([
      'docker',
      'network',
      'inspect',
      '-f',
      '{{(index .IPAM.Config 0).Subnet}}',
      `${project}_default`,
    ]);
    // The gateway Docker gave the network, as the server's container sees it.
    const gateway = run([
      'docker',
      'inspect',
      '-f',
      `{{(index .NetworkSettings.Networks "${project}_default").Gateway}}`,
      server,
    ]).out.trim();
    assert.match(gateway, /^\d+\.\d+\.\d+\.\d+$/);
    const trusted = run(['docker', 'inspect', '-f', '{{range .Config.Env}}{{println .}}{{end}}', server])
      .out.split('\n')
      .find((l) => l.startsWith('CL_TRUST_PROXY='));
    const relay = run(['ps', '-eo', 'args'])
      .out.split('\n')
      .find((l) => l.includes(`-host-port ${port}`));
    t.diagnostic(`network ${subnet.out.trim()}, gateway ${gateway}; server env ${trusted}`);
    t.diagnostic(`published port relayed by: ${relay?.trim() ?? 'no docker-proxy (iptables NAT)'}`);

    const clients = async (): Promise<Record<string, string>> => {
      const r = stack.run(['exec', '-T', 'server', 'node', 'scripts/admin.ts', 'list', '--json']);
      assert.equal(r.code, 0, r.out);
      const body = JSON.parse(r.out) as { sessions: { id: string; client: string }[] };
      return Object.fromEntries(body.sessions.map((s) => [s.id, s.client]));
    };
    const published = (headers: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${port}/api/v1/sessions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: LAB,
      });
    /** POST from inside the server's container, to its own loopback: a peer that is not the gateway. */
    const fromPeer = (
      xff: string,
    ): { status: number; body: { id?: string; error?: { message: string } } } => {
      const code = `const r = await fetch('http://127.0.0.1:4321/api/v1/sessions', { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': '${xff}' }, body: '${LAB}' }); console.log(r.status, await r.text());`;
      const r = stack.run(['exec', '-T', 'server', 'node', '--input-type=module', '-e', code]);
      assert.equal(r.code, 0, r.out);
      const m = /^(\d{3}) (.*)$/m.exec(r.out);
      assert.ok(m, r.out);
      return { status: Number(m[1]), body: JSON.parse(m[2]!) };
    };

    // Through the published port without a header: the address the server sees for every
    // connection that comes that way.
    const direct = await published();
    assert.equal(direct.status, 201, await direct.clone().text());
    const seen = (await clients())[(await direct.json()).id];
    t.diagnostic(`a request through 127.0.0.1:${port} arrives from ${seen}`);
    assert.equal(seen, gateway, 'connections through the published port come from the network gateway');

    // The operator's proxy, on this machine, comes the same way: its header is believed.
    const viaProxy = await published({ 'x-forwarded-for': '198.51.100.7' });
    assert.equal(viaProxy.status, 201, await viaProxy.clone().text());
    assert.equal((await clients())[(await viaProxy.json()).id], '198.51.100.7', "the proxy's client address");

    // Another peer of the server picks an address of its choice: not believed.
    const forged = fromPeer('203.0.113.9');
    assert.equal(forged.status, 201, JSON.stringify(forged.body));
    const forgedAs = (await clients())[forged.body.id!];
    t.diagnostic(`a peer sending X-Forwarded-For: 203.0.113.9 was taken for ${forgedAs}`);
    assert.equal(forgedAs, '127.0.0.1', 'a peer that is not the proxy is known by its own address');
    // …so the per-client cap (1 here) holds for that peer whatever address it claims next.
    const again = fromPeer('203.0.113.10');
    assert.equal(again.status, 429, JSON.stringify(again.body));
    assert.match(again.body.error?.message ?? '', /already have 1 live lab session/);
    assert.equal((await labContainers(instance)).length, 3);

    // The end, as compose.yaml says: the final shutdown, then `down` (a plain `down` is a
    // restart, CL_ON_SIGTERM=restart, which leaves the sessions' lab hosts for a next server).
    const shutdown = stack.run(['exec', '-T', 'server', 'node', 'scripts/admin.ts', 'shutdown']);
    assert.equal(shutdown.code, 0, shutdown.out);
    const down = stack.run(['down', '-t', '30']);
    assert.equal(down.code, 0, down.out);
    stack.up = false;
    assert.deepEqual(await labContainers(instance), [], 'the lab hosts were removed on the way out');
  });
});
