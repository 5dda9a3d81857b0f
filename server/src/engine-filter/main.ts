/**
 * The engine filter (`npm run engine-filter`): a narrow path to the Docker engine for the
 * lab server. It listens on a unix socket (or a loopback port) and forwards to the real
 * engine only the calls the Docker adapter makes, with bodies shaped like ours (rules.ts,
 * runtime/docker/lab-host-policy.ts); everything else gets 403 and a log line. Run it as a
 * user that may use the engine socket; run the server with
 * `DOCKER_HOST=unix://<CL_FILTER_LISTEN>` and without access to the engine socket.
 *
 * Settings (config.ts): CL_FILTER_LISTEN, CL_FILTER_SOCKET_MODE, CL_FILTER_SOCKET_GROUP,
 * DOCKER_HOST (the real engine), CL_APPARMOR_PROFILE, LOG_LEVEL.
 */
import { chmod, chown, lstat, readFile, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { type FilterConfig, FilterConfigError, loadFilterConfig } from './config.ts';
import { knownCommands } from './known-commands.ts';
import { createLogger } from './log.ts';
import { EngineFilter } from './proxy.ts';

/** A socket file left by a filter that died is removed; a live one or any other file is not. */
async function clearStaleSocket(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket()) throw new Error(`${path} exists and is not a socket: not removing it`);
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
  if (live) throw new Error(`${path}: another process is listening there`);
  await unlink(path);
}

async function groupId(group: string): Promise<number> {
  if (/^\d+$/.test(group)) return Number(group);
  const line = (await readFile('/etc/group', 'utf8')).split('\n').find((l) => l.split(':')[0] === group);
  const gid = line?.split(':')[2];
  if (!gid || !/^\d+$/.test(gid)) throw new Error(`CL_FILTER_SOCKET_GROUP: no group ${group} in /etc/group`);
  return Number(gid);
}

async function listen(filter: EngineFilter, config: FilterConfig): Promise<string> {
  const where = config.listen;
  if (where.kind === 'tcp') {
    await new Promise<void>((resolve, reject) => {
      filter.server.once('error', reject);
      filter.server.listen(where.port, where.host, () => resolve());
    });
    const addr = filter.server.address();
    return `${where.host}:${typeof addr === 'object' && addr ? addr.port : where.port}`;
  }
  await clearStaleSocket(where.path);
  const gid = config.socketGroup === undefined ? undefined : await groupId(config.socketGroup);
  // Created owner-only, then opened up to the chosen mode and group: nobody else can
  // connect in between.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      filter.server.once('error', reject);
      filter.server.listen(where.path, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  if (gid !== undefined) await chown(where.path, -1, gid);
  await chmod(where.path, config.socketMode);
  return where.path;
}

async function main(): Promise<void> {
  let config: FilterConfig;
  try {
    config = loadFilterConfig(process.env);
  } catch (err) {
    if (err instanceof FilterConfigError) {
      console.error(err.message);
      process.exit(2);
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  const filter = new EngineFilter({
    upstream: config.upstream,
    policy: { commands: await knownCommands(), apparmorProfiles: config.apparmorProfiles },
    log,
  });
  let address: string;
  try {
    address = await listen(filter, config);
  } catch (err) {
    console.error(
      `engine filter: cannot listen on ${JSON.stringify(config.listen)}: ${(err as Error).message}`,
    );
    process.exit(1);
  }
  log.info(
    {
      listen: address,
      upstream: config.upstreamText,
      mode: `0${config.socketMode.toString(8)}`,
      group: config.socketGroup,
    },
    'engine filter listening',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'engine filter stopping');
    await filter.close();
    if (config.listen.kind === 'unix') await unlink(config.listen.path).catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
