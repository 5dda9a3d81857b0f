/**
 * Debian packages for the guest, through apt with a private state of its own under
 * `.cache/vm/apt/` (its own lists, i386 as its only architecture): the machine's dpkg is
 * never changed and no root is needed, only `apt-get` and the machine's Debian mirror
 * (the same sources apt already uses, as `deb` and `deb-src`).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface AptSource {
  uri: string;
  suite: string;
  components: string[];
  signedBy?: string;
}

/** Debian's own sources among apt's configuration (one-line and deb822 formats), for `codename`. */
export function parseSources(files: { name: string; text: string }[], codename: string): AptSource[] {
  const out: AptSource[] = [];
  const keep = (s: string) => s === codename || s.startsWith(`${codename}-`);
  for (const { name, text } of files) {
    if (name.endsWith('.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
        if (!m || !keep(m[3]!)) continue;
        const signed = /signed-by=(\S+)/.exec(m[1] ?? '')?.[1];
        out.push({
          uri: m[2]!,
          suite: m[3]!,
          components: m[4]!.split(/\s+/).filter(Boolean),
          signedBy: signed,
        });
      }
    } else if (name.endsWith('.sources')) {
      for (const stanza of text.split(/\n\s*\n/)) {
        const f = new Map<string, string>();
        for (const l of stanza.split('\n')) {
          if (l.startsWith('#')) continue;
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(l);
          if (m) f.set(m[1]!.toLowerCase(), m[2]!.trim());
        }
        if (!(f.get('types') ?? '').split(/\s+/).includes('deb') || f.get('enabled') === 'no') continue;
        for (const uri of (f.get('uris') ?? '').split(/\s+/).filter(Boolean))
          for (const suite of (f.get('suites') ?? '').split(/\s+/).filter(keep))
            out.push({
              uri,
              suite,
              components: (f.get('components') ?? 'main').split(/\s+/),
              signedBy: f.get('signed-by'),
            });
      }
    }
  }
  return out;
}

/** One resolved binary package. */
export interface ResolvedPackage {
  name: string;
  version: string;
  /** Source package and its version (they differ from the binary's for binNMUs). */
  source: string;
  sourceVersion: string;
  filename: string;
  sha256: string;
}

/** Parses the stanza `apt-cache show --no-all-versions` prints for one package. */
export function parseShow(text: string): ResolvedPackage & { depends: string } {
  const f = new Map<string, string>();
  let last = '';
  for (const line of text.split('\n')) {
    if (/^\s/.test(line) && last) {
      f.set(last, `${f.get(last)}\n${line.trim()}`);
      continue;
    }
    const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
    if (m) {
      last = m[1]!.toLowerCase();
      if (!f.has(last)) f.set(last, m[2]!);
    }
  }
  const name = f.get('package');
  const version = f.get('version');
  if (!name || !version) throw new Error(`apt-cache show: no Package/Version in:\n${text.slice(0, 300)}`);
  const src = /^(\S+)(?:\s+\(([^)]+)\))?/.exec(f.get('source') ?? '');
  return {
    name,
    version,
    source: src?.[1] ?? name,
    sourceVersion: src?.[2] ?? version,
    filename: f.get('filename') ?? '',
    sha256: f.get('sha256') ?? '',
    depends: f.get('depends') ?? '',
  };
}

export class Apt {
  readonly dir: string;
  readonly #env: NodeJS.ProcessEnv;
  readonly #log: (s: string) => void;

  constructor(dir: string, log: (s: string) => void) {
    this.dir = dir;
    this.#log = log;
    this.#env = {
      ...process.env,
      APT_CONFIG: path.join(dir, 'apt.conf'),
      LC_ALL: 'C',
      DEBIAN_FRONTEND: 'noninteractive',
    };
  }

  /** Writes the private apt configuration from the machine's Debian sources. */
  configure(etc = '/etc/apt'): AptSource[] {
    const files: { name: string; text: string }[] = [];
    if (existsSync(path.join(etc, 'sources.list')))
      files.push({ name: 'sources.list', text: readFileSync(path.join(etc, 'sources.list'), 'utf8') });
    const parts = path.join(etc, 'sources.list.d');
    if (existsSync(parts))
      for (const n of readdirSync(parts).sort())
        files.push({ name: n, text: readFileSync(path.join(parts, n), 'utf8') });
    const codename = osCodename();
    const sources = parseSources(files, codename);
    if (sources.length === 0)
      throw new Error(
        `apt has no Debian "${codename}" sources in ${etc}: the in-browser VM is built from Debian's packages`,
      );
    const d = this.dir;
    for (const sub of ['state/lists/partial', 'cache/archives/partial', 'parts'])
      mkdirSync(path.join(d, sub), { recursive: true });
    if (!existsSync(path.join(d, 'state', 'status'))) writeFileSync(path.join(d, 'state', 'status'), '');
    const lines = sources.flatMap((s) => {
      const opts = `[signed-by=${s.signedBy ?? '/usr/share/keyrings/debian-archive-keyring.gpg'}]`;
      const rest = `${opts} ${s.uri} ${s.suite} ${s.components.join(' ')}`;
      return [`deb ${rest}`, `deb-src ${rest}`];
    });
    writeFileSync(path.join(d, 'sources.list'), `${lines.join('\n')}\n`);
    const conf = [
      `Dir::State "${d}/state";`,
      `Dir::State::status "${d}/state/status";`,
      `Dir::Cache "${d}/cache";`,
      `Dir::Etc::SourceList "${d}/sources.list";`,
      `Dir::Etc::SourceParts "${d}/parts";`,
      `Dir::Etc::Preferences "${d}/preferences";`,
      `Dir::Etc::PreferencesParts "${d}/parts";`,
      'APT::Architecture "i386";',
      'APT::Architectures { "i386"; };',
      // Downloads go into our own folders, which apt's sandbox user may not be able to read.
      'APT::Sandbox::User "root";',
      'Acquire::Languages "none";',
    ];
    writeFileSync(path.join(d, 'apt.conf'), `${conf.join('\n')}\n`);
    return sources;
  }

  update(): void {
    this.#log('apt-get update (the VM build’s own lists: i386 packages and sources)');
    this.#run('apt-get', ['update', '-qq']);
  }

  show(name: string): ReturnType<typeof parseShow> {
    return this.showAll([name])[0]!;
  }

  /** The candidate version of each package, in one apt-cache call. */
  showAll(names: readonly string[]): ReturnType<typeof parseShow>[] {
    const text = this.#run('apt-cache', ['show', '--no-all-versions', ...names]);
    const stanzas = text.split(/\n\s*\n/).filter((s) => s.trim());
    const parsed = stanzas.map(parseShow);
    return names.map((n) => {
      const p = parsed.find((x) => x.name === n);
      if (!p) throw new Error(`apt-cache show: no package ${n}`);
      return p;
    });
  }

  /** Downloads `name=version` into `dir` unless it is there; returns the file. */
  download(p: ResolvedPackage, dir: string): string {
    mkdirSync(dir, { recursive: true });
    const file = debFile(dir, p);
    if (existsSync(file)) return file;
    this.#run('apt-get', ['download', '-qq', `${p.name}=${p.version}`], dir);
    if (!existsSync(file)) throw new Error(`apt-get download ${p.name}=${p.version} did not write ${file}`);
    return file;
  }

  /** Downloads one source package (.dsc and its tarballs) into `dir` unless its .dsc is there. */
  downloadSource(source: string, version: string, dir: string): string[] {
    mkdirSync(dir, { recursive: true });
    const epochless = version.replace(/^\d+:/, '');
    const dsc = path.join(dir, `${source}_${epochless}.dsc`);
    // The files of the .dsc not on disk (the .dsc itself if it is not): a download that
    // failed half way leaves a .dsc without all its files, so fetch again then.
    const absent = () =>
      existsSync(dsc)
        ? dscFiles(readFileSync(dsc, 'utf8')).filter((f) => !existsSync(path.join(dir, f)))
        : [path.basename(dsc)];
    if (absent().length > 0)
      this.#run('apt-get', ['source', '--download-only', '-qq', `${source}=${version}`], dir);
    const still = absent();
    if (still.length > 0)
      throw new Error(`apt-get source ${source}=${version} did not write ${still.join(', ')}`);
    return dscFiles(readFileSync(dsc, 'utf8')).concat(path.basename(dsc));
  }

  #run(cmd: string, args: string[], cwd?: string): string {
    try {
      return execFileSync(cmd, args, {
        env: this.#env,
        cwd,
        encoding: 'utf8',
        maxBuffer: 64 << 20,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${cmd} ${args.join(' ')} failed: ${(e.stderr || e.message).trim().slice(0, 800)}`);
    }
  }
}

/** Where `apt-get download` puts a package: its version's epoch colon written as %3a. */
export function debFile(dir: string, p: ResolvedPackage): string {
  const arch = /_([a-z0-9]+)\.deb$/.exec(p.filename)?.[1] ?? 'i386';
  return path.join(dir, `${p.name}_${p.version.replace(':', '%3a')}_${arch}.deb`);
}

/** The files a .dsc names (its Files: section), the .dsc itself excluded. */
export function dscFiles(dsc: string): string[] {
  const m = /^Files:\s*\n((?:[ \t]+.*\n?)+)/m.exec(dsc);
  if (!m) return [];
  return m[1]!
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[2])
    .filter((f): f is string => Boolean(f));
}

export function osCodename(file = '/etc/os-release'): string {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const m = /^VERSION_CODENAME=("?)([a-z]+)\1$/m.exec(text);
  if (!m) throw new Error(`${file}: no VERSION_CODENAME (the VM build needs a Debian machine's apt)`);
  return m[2]!;
}

/** Whether this machine can build the VM at all. */
export function hasApt(): boolean {
  try {
    execFileSync('apt-get', ['--version'], { stdio: 'ignore' });
    execFileSync('dpkg-deb', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
