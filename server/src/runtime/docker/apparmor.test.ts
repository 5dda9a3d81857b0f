/**
 * AppArmor for lab hosts (issue 11): the profile the adapter asks for, the start-up check
 * that the engine's host has it loaded, and what the server does with the answer in each
 * access mode. A fake dockerode here; the real engine with AppArmor is the rootful test
 * host (tests/hosts/apparmor.test.ts).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type Docker from 'dockerode';
import { testLab } from '../../../../tests/unit-support/test-lab.ts';
import { ConfigError, loadConfig } from '../../config.ts';
import type { LabHostRequest } from '../runtime.ts';
import { type ApparmorCheck, decideApparmor, LAB_HOST_PROFILE, LOAD_PROFILE_COMMAND } from './apparmor.ts';
import { DockerRuntime } from './docker-runtime.ts';
import type { ContainerCreateBody } from './lab-host-spec.ts';

/** An engine that applies AppArmor (or not) and knows which profiles its host has loaded. */
class FakeEngine {
  readonly creates: ContainerCreateBody[] = [];
  removed = 0;
  apparmor = true;
  loaded = new Set<string>([LAB_HOST_PROFILE]);
  mode = 'enforce';
  missingImage = false;

  async version() {
    return { Version: '26.1.5', ApiVersion: '1.45' };
  }
  async info() {
    const opts = ['name=seccomp,profile=builtin', 'name=cgroupns'];
    return { SecurityOptions: this.apparmor ? ['name=apparmor', ...opts] : opts, CgroupVersion: '2' };
  }
  async listContainers() {
    return [];
  }
  async createContainer(spec: ContainerCreateBody) {
    if (this.missingImage) {
      throw Object.assign(new Error(`No such image: ${spec.Image}`), { statusCode: 404 });
    }
    this.creates.push(spec);
    const profile = /^apparmor=(.*)$/.exec(
      (spec.HostConfig.SecurityOpt as string[]).find((o) => o.startsWith('apparmor=')) ?? '',
    )?.[1];
    const applied = this.apparmor ? (profile ?? 'docker-default') : 'unconfined';
    return {
      id: `c${this.creates.length}`,
      start: async () => {
        // What runc answers when the named profile is not loaded (Docker 26, seen on the test host).
        if (this.apparmor && profile && profile !== 'unconfined' && !this.loaded.has(profile)) {
          throw Object.assign(
            new Error(
              '(HTTP code 500) server error - failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: unable to apply apparmor profile: apparmor failed to apply profile: write /proc/self/attr/apparmor/exec: no such file or directory: unknown',
            ),
            { statusCode: 500 },
          );
        }
      },
      wait: async () => ({ StatusCode: 0 }),
      logs: async () => Buffer.from(`${applied}${applied === 'unconfined' ? '' : ` (${this.mode})`}\n`),
      remove: async () => {
        this.removed++;
      },
    };
  }
}

function runtime(engine: FakeEngine, apparmorProfile?: string) {
  return new DockerRuntime({
    docker: engine as unknown as Docker,
    imageFor: async (id) => `containerlabs/lab-${id}:test`,
    ...(apparmorProfile ? { apparmorProfile } : {}),
  });
}

const lab = testLab();
const request = (sessionId: string): LabHostRequest => ({
  lab,
  sessionId,
  instance: 'test',
  expiresAt: new Date(Date.now() + 60_000),
  deadline: new Date(Date.now() + 120_000),
  pooled: false,
});
const apparmorOpt = (spec: ContainerCreateBody | undefined) =>
  (spec?.HostConfig.SecurityOpt as string[] | undefined)?.filter((o) => o.startsWith('apparmor=')) ?? [];

describe('the AppArmor profile of lab hosts', () => {
  it('auto: our profile where the engine applies AppArmor, never unconfined', async () => {
    const engine = new FakeEngine();
    await runtime(engine).createLabHost(request('s1'));
    assert.deepEqual(apparmorOpt(engine.creates[0]), [`apparmor=${LAB_HOST_PROFILE}`]);
  });

  it('auto: no AppArmor option where the engine applies none', async () => {
    const engine = new FakeEngine();
    engine.apparmor = false;
    await runtime(engine).createLabHost(request('s1'));
    assert.deepEqual(apparmorOpt(engine.creates[0]), []);
  });

  it('a named profile is used as given', async () => {
    const engine = new FakeEngine();
    engine.loaded.add('school-labs');
    await runtime(engine, 'school-labs').createLabHost(request('s1'));
    assert.deepEqual(apparmorOpt(engine.creates[0]), ['apparmor=school-labs']);
  });

  it('the start-up check: a throwaway lab host with the profile, removed afterwards', async () => {
    const engine = new FakeEngine();
    const check = await runtime(engine).checkApparmor(lab, 'x');
    assert.deepEqual(
      { ...check, detail: undefined },
      {
        engineApparmor: true,
        profile: LAB_HOST_PROFILE,
        loaded: true,
        confinement: `${LAB_HOST_PROFILE} (enforce)`,
        detail: undefined,
      },
    );
    assert.equal(engine.creates.length, 1);
    const spec = engine.creates[0]!;
    assert.deepEqual(apparmorOpt(spec), [`apparmor=${LAB_HOST_PROFILE}`]);
    // It is a lab host (same image, user, seccomp, no capabilities), labelled to be reaped.
    assert.equal(spec.Image, `containerlabs/lab-${lab.id}:test`);
    assert.deepEqual(spec.HostConfig.CapDrop, ['ALL']);
    assert.ok((spec.HostConfig.SecurityOpt as string[]).some((o) => o.startsWith('seccomp=')));
    assert.equal(spec.Labels['containerlabs.managed'], 'true');
    assert.equal(spec.Labels['containerlabs.instance'], 'x');
    assert.ok(spec.Labels['containerlabs.deadline']);
    assert.equal(engine.removed, 1);
  });

  it('the start-up check sees a profile that is not loaded', async () => {
    const engine = new FakeEngine();
    engine.loaded.clear();
    const check = await runtime(engine).checkApparmor(lab, 'x');
    assert.equal(check.loaded, false);
    assert.match(check.detail ?? '', /apparmor failed to apply profile/);
    assert.equal(engine.removed, 1);
  });

  it('the start-up check asks nothing of an engine without AppArmor', async () => {
    const engine = new FakeEngine();
    engine.apparmor = false;
    assert.deepEqual(await runtime(engine).checkApparmor(lab, 'x'), { engineApparmor: false });
    assert.equal(engine.creates.length, 0);
  });

  it('the start-up check cannot tell without the lab image', async () => {
    const engine = new FakeEngine();
    engine.missingImage = true;
    const check = await runtime(engine).checkApparmor(lab, 'x');
    assert.equal(check.loaded, undefined);
    assert.match(check.detail ?? '', /No such image/);
  });
});

describe('what the server does with the check', () => {
  const loaded: ApparmorCheck = {
    engineApparmor: true,
    profile: LAB_HOST_PROFILE,
    loaded: true,
    confinement: `${LAB_HOST_PROFILE} (enforce)`,
  };
  const missing: ApparmorCheck = {
    engineApparmor: true,
    profile: LAB_HOST_PROFILE,
    loaded: false,
    detail: 'apparmor failed to apply profile',
  };

  for (const mode of ['open', 'code'] as const) {
    it(`${mode}: refuses to start when the profile is not loaded, and says how to load it`, () => {
      const d = decideApparmor(mode, missing);
      assert.equal(d.action, 'refuse');
      assert.match(d.message, new RegExp(LAB_HOST_PROFILE));
      assert.ok(d.message.includes(LOAD_PROFILE_COMMAND), d.message);
      assert.equal(LOAD_PROFILE_COMMAND, 'sudo apparmor_parser -r labs/apparmor/containerlabs-labhost');
    });

    it(`${mode}: refuses a profile in complain mode (it confines nothing)`, () => {
      const d = decideApparmor(mode, { ...loaded, confinement: `${LAB_HOST_PROFILE} (complain)` });
      assert.equal(d.action, 'refuse');
      assert.match(d.message, /complain/);
    });

    it(`${mode}: runs under the profile when it is loaded`, () => {
      assert.deepEqual(decideApparmor(mode, loaded), {
        action: 'run',
        profile: LAB_HOST_PROFILE,
        warn: false,
        note: `lab hosts run under the AppArmor profile ${LAB_HOST_PROFILE} (enforce)`,
      });
    });

    it(`${mode}: refuses unconfined even if it got that far`, () => {
      const d = decideApparmor(mode, { engineApparmor: true, profile: 'unconfined', loaded: true });
      assert.equal(d.action, 'refuse');
    });
  }

  it('local: the profile missing means unconfined, and the note says so and how to fix it', () => {
    const d = decideApparmor('local', missing);
    assert.equal(d.action, 'run');
    assert.equal(d.profile, 'unconfined');
    assert.equal(d.warn, true);
    assert.match(d.note, /unconfined/);
    assert.ok(d.note.includes(LOAD_PROFILE_COMMAND));
  });

  it('an engine without AppArmor: no profile, in every mode', () => {
    for (const mode of ['open', 'code', 'local'] as const) {
      const d = decideApparmor(mode, { engineApparmor: false });
      assert.equal(d.action, 'run');
      assert.equal(d.profile, undefined);
      assert.match(d.note, /no AppArmor/);
    }
  });

  it('a check that could not run: the profile is used, with a warning', () => {
    const d = decideApparmor('open', {
      engineApparmor: true,
      profile: LAB_HOST_PROFILE,
      detail: 'No such image',
    });
    assert.equal(d.action, 'run');
    assert.equal(d.profile, LAB_HOST_PROFILE);
    assert.equal(d.warn, true);
    assert.match(d.note, /No such image/);
  });
});

describe('CL_APPARMOR_PROFILE', () => {
  it('defaults to auto', () => {
    assert.equal(loadConfig({}).apparmorProfile, 'auto');
  });
  for (const mode of ['open', 'code'] as const) {
    it(`unconfined is refused in ${mode} mode`, () => {
      assert.throws(
        () =>
          loadConfig({ CL_MODE: mode, CL_ACCESS_CODE: 'spring-2026_x', CL_APPARMOR_PROFILE: 'unconfined' }),
        (err: unknown) => err instanceof ConfigError && /CL_APPARMOR_PROFILE/.test(err.message),
      );
    });
  }
  it('unconfined is allowed in local mode (the user’s own machine)', () => {
    assert.equal(
      loadConfig({ CL_MODE: 'local', CL_APPARMOR_PROFILE: 'unconfined' }).apparmorProfile,
      'unconfined',
    );
  });
});
