import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { testLab } from '../../../tests/unit-support/test-lab.ts';
import { execSpec, labHostSpec } from '../runtime/docker/lab-host-spec.ts';
import { checkContainer, isRefusal, type Matched, matchRequest, parseTarget, planRequest } from './rules.ts';

const ID = 'a'.repeat(64);
const EXEC = 'b'.repeat(64);
const MANAGED = encodeURIComponent(JSON.stringify({ label: ['containerlabs.managed=true'] }));
const policy = {
  commands: [
    ['/usr/local/bin/lab-shell', 'host'],
    ['sh', '-c', 'echo ok'],
  ],
};

function matched(method: string, url: string, upgrade = false): Matched {
  const m = matchRequest(method, url, upgrade);
  assert.ok(!isRefusal(m), `${method} ${url} refused: ${isRefusal(m) ? m.reason : ''}`);
  return m;
}

function refused(method: string, url: string, upgrade = false): string {
  const m = matchRequest(method, url, upgrade);
  assert.ok(isRefusal(m), `${method} ${url} was allowed`);
  assert.equal(m.status, 403);
  return m.reason;
}

describe('parseTarget', () => {
  it('splits the path, strips the API version, keeps the query', () => {
    const t = parseTarget('/v1.41/containers/json?all=true&x=1');
    assert.ok(!isRefusal(t));
    assert.equal(t.version, 'v1.41');
    assert.deepEqual(t.segments, ['containers', 'json']);
    assert.equal(t.query.get('all'), 'true');
  });

  it('refuses what a router could read differently', () => {
    for (const url of [
      '/containers/%2e%2e/json',
      '/containers%2fjson',
      '/containers/json%00',
      '//containers/json',
      '/v1.41//containers/json',
      '/containers/json/',
      '/containers/../images/json',
      '/containers/./json',
      '/containers\\json',
      'http://docker/containers/json',
      '*',
      '/containers/j\u00e9son',
      '/containers/json\t',
      '/v1.24/containers/create',
      '/v1.12/containers/json',
      '/v2/containers/json',
      '/v1.41',
    ]) {
      const t = parseTarget(url);
      assert.ok(isRefusal(t), `${JSON.stringify(url)} was parsed`);
    }
  });

  it('notes repeated parameters, so the calls that read them refuse', () => {
    const t = parseTarget(`/containers/json?filters=${MANAGED}&filters=${encodeURIComponent('{}')}`);
    assert.ok(!isRefusal(t));
    assert.ok(t.repeated.has('filters'));
    assert.match(refused('GET', `/containers/json?filters=${MANAGED}&filters=%7B%7D`), /repeated/);
  });
});

describe('matchRequest', () => {
  it('allows the calls the adapter makes, with or without the version prefix', () => {
    for (const prefix of ['', '/v1.41', '/v1.40', '/v1.45']) {
      assert.equal(matched('GET', `${prefix}/_ping`).route, 'ping');
      assert.equal(matched('HEAD', `${prefix}/_ping`).route, 'ping');
      assert.equal(matched('GET', `${prefix}/version`).route, 'version');
      assert.equal(matched('GET', `${prefix}/info`).route, 'info');
      assert.equal(matched('POST', `${prefix}/containers/create`).route, 'container.create');
      assert.equal(matched('POST', `${prefix}/containers/${ID}/start`).route, 'container.start');
      assert.equal(matched('DELETE', `${prefix}/containers/${ID}?force=true`).route, 'container.remove');
      assert.equal(matched('GET', `${prefix}/containers/${ID}/json`).route, 'container.inspect');
      assert.equal(
        matched('GET', `${prefix}/containers/json?all=true&filters=${MANAGED}`).route,
        'container.list',
      );
      assert.equal(matched('POST', `${prefix}/containers/${ID}/exec`).route, 'exec.create');
      assert.equal(matched('POST', `${prefix}/exec/${EXEC}/start`, true).route, 'exec.start');
      assert.equal(matched('POST', `${prefix}/exec/${EXEC}/resize?h=50&w=160`).route, 'exec.resize');
      assert.equal(matched('GET', `${prefix}/exec/${EXEC}/json`).route, 'exec.inspect');
    }
  });

  it("allows the events of lab hosts only: containers' die and destroy, with the managed label", () => {
    const q = (f: unknown) => `/events?filters=${encodeURIComponent(JSON.stringify(f))}`;
    const ours = { type: ['container'], event: ['die', 'destroy'], label: ['containerlabs.managed=true'] };
    for (const prefix of ['', '/v1.41']) assert.equal(matched('GET', `${prefix}${q(ours)}`).route, 'events');
    assert.equal(matched('GET', q(ours)).path, `/events?filters=${encodeURIComponent(JSON.stringify(ours))}`);
    for (const f of [
      { ...ours, label: [] },
      { ...ours, label: ['containerlabs.managed=false'] },
      { type: ['container'], event: ['die'] },
      { ...ours, type: ['image'] },
      { ...ours, type: ['container', 'network'] },
      { ...ours, event: ['die', 'exec_create'] },
      { ...ours, container: ['x'] },
      'x',
    ])
      assert.ok(isRefusal(matchRequest('GET', q(f), false)), `allowed: ${JSON.stringify(f)}`);
    assert.ok(isRefusal(matchRequest('GET', `${q(ours)}&since=0`, false)), 'no other parameter');
    assert.ok(isRefusal(matchRequest('POST', q(ours), false)), 'GET only');
  });

  it('rebuilds the path sent upstream from the parsed parts', () => {
    assert.equal(
      matched('DELETE', `/v1.41/containers/${ID}?force=true`).path,
      `/v1.41/containers/${ID}?force=true`,
    );
    // dockerode repeats the create body in the query; only `name` is read by the engine.
    const create = matched(
      'POST',
      '/containers/create?Image=x&HostConfig=%7B%22Privileged%22%3Atrue%7D&Env=a&Env=b',
    );
    assert.equal(create.path, '/containers/create');
    assert.equal(matched('POST', '/containers/create?name=lab-1').path, '/containers/create?name=lab-1');
    const list = matched('GET', `/containers/json?all=1&filters=${MANAGED}`);
    assert.equal(list.path, `/containers/json?all=1&filters=${MANAGED}`);
  });

  it('refuses everything else: images, volumes, networks, attach, archive, system, ...', () => {
    for (const [method, url] of [
      ['GET', '/images/json'],
      ['POST', '/images/create?fromImage=busybox'],
      ['POST', '/build'],
      ['DELETE', '/images/containerlabs/lab-processes:0123456789ab'],
      ['GET', '/images/containerlabs/lab-processes:0123456789ab/json'],
      ['POST', '/volumes/create'],
      ['GET', '/volumes'],
      ['POST', '/networks/create'],
      ['POST', `/containers/${ID}/attach?stream=1&stdin=1`],
      ['GET', `/containers/${ID}/archive?path=/`],
      ['PUT', `/containers/${ID}/archive?path=/`],
      ['POST', `/commit?container=${ID}`],
      ['GET', `/containers/${ID}/stats`],
      ['GET', `/containers/${ID}/logs`],
      ['POST', `/containers/${ID}/kill`],
      ['POST', `/containers/${ID}/update`],
      ['GET', `/containers/${ID}/export`],
      ['GET', '/events'],
      ['GET', '/system/df'],
      ['POST', '/swarm/init'],
      ['GET', '/plugins'],
      ['POST', '/session'],
      ['GET', '/containers/create'],
      ['PUT', '/containers/create'],
      ['POST', '/_ping'],
      ['GET', `/containers/${ID}`],
      ['DELETE', `/exec/${EXEC}`],
    ] as const) {
      refused(method, url);
    }
  });

  it('takes container and exec ids only in full (no names, no prefixes)', () => {
    assert.match(refused('POST', '/containers/abc123/start'), /64-digit/);
    assert.match(refused('POST', '/containers/my-lab/exec'), /64-digit/);
    assert.match(refused('GET', `/exec/${EXEC.slice(0, 12)}/json`), /64-digit/);
    refused('POST', `/containers/${ID.toUpperCase()}/start`);
  });

  it('exec start must be an upgrade; nothing else may upgrade', () => {
    assert.match(refused('POST', `/exec/${EXEC}/start`), /must be an upgrade/);
    assert.match(refused('POST', `/containers/${ID}/start`, true), /upgrade is not allowed/);
    refused('POST', `/containers/${ID}/attach?stream=1`, true);
  });

  it('containers/json: only with the managed label filter', () => {
    assert.match(refused('GET', '/containers/json?all=true'), /label filter/);
    assert.match(refused('GET', '/containers/json'), /label filter/);
    const other = encodeURIComponent(JSON.stringify({ label: ['containerlabs.session=x'] }));
    assert.match(refused('GET', `/containers/json?filters=${other}`), /label filter/);
    const status = encodeURIComponent(
      JSON.stringify({ label: ['containerlabs.managed=true'], status: ['running'] }),
    );
    refused('GET', `/containers/json?filters=${status}`);
    // The engine's older spelling of the same filter.
    const map = encodeURIComponent(JSON.stringify({ label: { 'containerlabs.managed=true': true } }));
    assert.equal(
      matched('GET', `/containers/json?filters=${map}`).path,
      `/containers/json?filters=${encodeURIComponent(JSON.stringify({ label: ['containerlabs.managed=true'] }))}`,
    );
    refused('GET', `/containers/json?filters=${MANAGED}&size=true`);
  });

  it('query values are checked where the engine reads them', () => {
    refused('DELETE', `/containers/${ID}?force=yes`);
    refused('DELETE', `/containers/${ID}?link=true`);
    refused('POST', `/exec/${EXEC}/resize?h=50&w=160&x=1`);
    refused('POST', `/exec/${EXEC}/resize?h=-1`);
    refused('POST', '/containers/create?name=../x');
    refused('POST', '/containers/create?platform=linux/arm64');
    refused('POST', '/containers/create?name=a&name=b');
  });
});

describe('planRequest', () => {
  const spec = () =>
    labHostSpec({
      lab: testLab(),
      image: 'containerlabs/lab-processes:0123456789ab',
      sessionId: 's-1',
      expiresAt: new Date('2030-01-01T00:00:00Z'),
      instance: 'test',
      pooled: false,
      deadline: new Date('2030-01-01T00:01:00Z'),
      hardDeadlineSeconds: 60,
      uid: 1000,
    });

  it('forwards a create body of ours, re-serialised', () => {
    const plan = planRequest(
      matched('POST', '/containers/create'),
      Buffer.from(JSON.stringify(spec())),
      policy,
    );
    assert.ok(!isRefusal(plan), isRefusal(plan) ? plan.reason : '');
    assert.deepEqual(JSON.parse(plan.body!), JSON.parse(JSON.stringify(spec())));
  });

  it('duplicate keys cannot smuggle a field past the check: the parsed value is what goes on', () => {
    // Go's decoder would merge the two HostConfig objects; JSON.parse keeps the last one.
    const good = JSON.stringify(spec());
    const sneaky = `{"HostConfig":{"Binds":["/:/host"]},${good.slice(1)}`;
    const plan = planRequest(matched('POST', '/containers/create'), Buffer.from(sneaky), policy);
    assert.ok(!isRefusal(plan));
    assert.ok(!plan.body!.includes('Binds'), 'the forwarded body has no Binds');
  });

  it('refuses a dangerous create, malformed JSON (400) and a body where none belongs (400)', () => {
    const bad = { ...spec(), HostConfig: { ...spec().HostConfig, Privileged: true } };
    const p = planRequest(matched('POST', '/containers/create'), Buffer.from(JSON.stringify(bad)), policy);
    assert.ok(isRefusal(p) && p.status === 403 && /Privileged/.test(p.reason));
    const m = planRequest(matched('POST', '/containers/create'), Buffer.from('{"Image": '), policy);
    assert.ok(isRefusal(m) && m.status === 400 && /malformed JSON/.test(m.reason));
    const e = planRequest(matched('POST', '/containers/create'), Buffer.alloc(0), policy);
    assert.ok(isRefusal(e) && e.status === 403);
    const s = planRequest(
      matched('POST', `/containers/${ID}/start`),
      Buffer.from('{"HostConfig":{}}'),
      policy,
    );
    assert.ok(isRefusal(s) && s.status === 400);
  });

  it('exec create: a known command as a lab uid, on a managed container of that uid', () => {
    const body = JSON.stringify(execSpec({ name: 'host', title: 't', target: 'host' }, 1000));
    const plan = planRequest(matched('POST', `/containers/${ID}/exec`), Buffer.from(body), policy);
    assert.ok(!isRefusal(plan), isRefusal(plan) ? plan.reason : '');
    assert.deepEqual(plan.require, { kind: 'container', id: ID, user: '1000:1000' });
    const root = JSON.stringify({ ...JSON.parse(body), User: '0:0' });
    assert.ok(isRefusal(planRequest(matched('POST', `/containers/${ID}/exec`), Buffer.from(root), policy)));
    const cmd = JSON.stringify({ ...JSON.parse(body), Cmd: ['/bin/sh'] });
    assert.ok(isRefusal(planRequest(matched('POST', `/containers/${ID}/exec`), Buffer.from(cmd), policy)));
  });

  it('exec start, resize and inspect need a known exec; container calls a managed container', () => {
    const start = planRequest(
      matched('POST', `/exec/${EXEC}/start`, true),
      Buffer.from('{"Tty":true}'),
      policy,
    );
    assert.ok(!isRefusal(start));
    assert.deepEqual(start.require, { kind: 'exec', id: EXEC });
    const detached = planRequest(
      matched('POST', `/exec/${EXEC}/start`, true),
      Buffer.from('{"Detach":true}'),
      policy,
    );
    assert.ok(isRefusal(detached));
    const resize = planRequest(
      matched('POST', `/exec/${EXEC}/resize?h=1&w=2`),
      Buffer.from('{"h":1,"w":2}'),
      policy,
    );
    assert.ok(!isRefusal(resize));
    assert.equal(resize.body, undefined, 'the resize body is not forwarded');
    const remove = planRequest(matched('DELETE', `/containers/${ID}?force=true`), Buffer.alloc(0), policy);
    assert.ok(!isRefusal(remove));
    assert.deepEqual(remove.require, { kind: 'container', id: ID });
  });
});

describe('checkContainer', () => {
  it('needs the managed label, and for an exec the lab host’s own user', () => {
    assert.equal(checkContainer({ kind: 'container', id: ID }, { managed: true, user: '1000:1000' }), null);
    assert.ok(checkContainer({ kind: 'container', id: ID }, { managed: false, user: '1000:1000' }));
    const exec = { kind: 'container' as const, id: ID, user: '100345:100345' };
    assert.equal(checkContainer(exec, { managed: true, user: '100345:100345' }), null);
    assert.ok(checkContainer(exec, { managed: true, user: '100346:100346' }), 'another sandbox’s uid');
    assert.ok(checkContainer(exec, { managed: true, user: '' }), 'a container without a user');
  });
});
