/**
 * A throw-away copy of this Astro project, for tests that must run the real `astro` CLI on something
 * else than the checkout (a bad lesson, another `base`), without touching the checkout's dist/,
 * .astro/ or content/.
 *
 * The copy lives under `test-results/tmp/` (git-ignored) *inside* the repository so that Node finds
 * the project's own node_modules by walking up (Astro refuses a symlinked node_modules outside the
 * project root). The project's files are copied as git sees them (tracked, or untracked and not
 * ignored), without build output, caches and tooling; `content/` too unless the caller asks for
 * an empty one.
 */
import { execFileSync, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ROOT } from './site.ts';

const SKIP = new Set([
  'node_modules',
  '.git',
  'dist',
  '.astro',
  '.tools',
  'test-results',
  '.cache',
  'coverage',
]);

/**
 * The project's files as git sees them — tracked, plus untracked but not ignored (new lessons) —
 * so that ignored bulk (build output, caches, local benchmark data) is not copied. Read-only git.
 * Undefined when git is not available.
 */
function projectFiles(): string[] | undefined {
  try {
    const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const files = out.split('\0').filter(Boolean);
    return files.length ? files : undefined;
  } catch {
    return undefined;
  }
}

export interface TempProject {
  dir: string;
  /** Run the project's `astro` CLI in the copy. */
  astro(args: string[], timeoutMs?: number): Promise<RunResult>;
  writeLesson(relPath: string, text: string): Promise<string>;
  cleanup(): Promise<void>;
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout + stderr, without ANSI colours. */
  output: string;
  ms: number;
}

export async function makeTempProject(
  name: string,
  opts: { content?: 'copy' | 'empty' } = {},
): Promise<TempProject> {
  const parent = path.join(ROOT, 'test-results', 'tmp');
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(path.join(parent, `${name}-`));
  const files = projectFiles();
  if (files) {
    for (const rel of files) {
      const top = rel.split('/')[0] ?? '';
      if (SKIP.has(top) || (top === 'content' && opts.content === 'empty')) continue;
      if (/(\.swp|~|\.tmp)$/.test(rel)) continue; // lessons may be mid-edit by someone else
      const dest = path.join(dir, rel);
      await mkdir(path.dirname(dest), { recursive: true });
      await cp(path.join(ROOT, rel), dest).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err; // deleted since git listed it
      });
    }
  } else {
    for (const entry of await readdir(ROOT, { withFileTypes: true })) {
      if (SKIP.has(entry.name) || entry.name.startsWith('.')) continue;
      if (entry.name === 'content' && opts.content === 'empty') continue;
      await cp(path.join(ROOT, entry.name), path.join(dir, entry.name), {
        recursive: true,
        filter: (src) => !/(\.swp|~|\.tmp)$/.test(src) && !src.split(path.sep).includes('node_modules'),
      });
    }
  }
  await mkdir(path.join(dir, 'content'), { recursive: true });

  const astroBin = path.join(ROOT, 'node_modules', 'astro', 'bin', 'astro.mjs');
  return {
    dir,
    astro(args, timeoutMs = 120_000) {
      const started = Date.now();
      return new Promise<RunResult>((resolve, reject) => {
        const child = spawn(process.execPath, [astroBin, ...args], {
          cwd: dir,
          env: { ...process.env, ASTRO_TELEMETRY_DISABLED: '1', NO_COLOR: '1', FORCE_COLOR: '0', CI: 'true' },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => {
          stdout += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        child.on('error', reject);
        child.on('close', (code) => {
          clearTimeout(timer);
          // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping ANSI escapes
          const strip = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '');
          resolve({ code, stdout, stderr, output: strip(stdout + stderr), ms: Date.now() - started });
        });
      });
    },
    async writeLesson(relPath, text) {
      const file = path.join(dir, 'content', relPath);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, text);
      return file;
    },
    async cleanup() {
      if (!process.env.KEEP_TEMP_PROJECT) await rm(dir, { recursive: true, force: true });
    },
  };
}
