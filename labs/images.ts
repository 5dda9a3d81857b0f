/**
 * Image names of the labs, computed from the files that go into them.
 *
 * A tag is a hash of every input, so "is the image up to date?" is just "does an image
 * with this tag exist?". The server calls `labImageTag(lab.id)` and, when the engine has
 * no such image, tells the operator to run `npm run images` (labs/build-images.ts).
 *
 *   containerlabs/base:<hash>        Debian bookworm minbase + labs/_base/packages.txt
 *   containerlabs/lab-<id>:<hash>    FROM the base + labs/_common/ + labs/<id>/image/
 *
 * lab.yaml is not an input: the app command, hostname and limits reach the lab host at
 * run time (environment and HostConfig), so editing them needs no rebuild.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

/** Bump to force every image to be rebuilt when the way they are built changes. */
const BASE_RECIPE_VERSION = 'containerlabs-base-v1';
const LAB_RECIPE_VERSION = 'containerlabs-lab-v1';

/** The Debian release of the base image (debootstrap suite / debian:<suite>-slim). */
export const DEBIAN_SUITE = 'bookworm';

export const IMAGE_NAMESPACE = 'containerlabs';
const HASH_LENGTH = 12;

/** Default labs folder: the one this file lives in. */
export const LABS_DIR: string = import.meta.dirname;

/** A file or directory that goes into an image, as hashed. */
export interface ImageInput {
  /** Path relative to the hashed root, with `/` separators. */
  path: string;
  kind: 'file' | 'dir' | 'symlink';
  /** 'x' when any execute bit is set (the only mode bit Docker and git both keep). */
  mode: '' | 'x';
  /** sha256 of the content (file), of the link target (symlink), '' (dir). */
  sha256: string;
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file, directory and symlink under `root` (sorted, deterministic). Missing root: []. */
export function listTree(root: string): ImageInput[] {
  const out: ImageInput[] = [];
  if (!existsSync(root)) return out;
  const walk = (dir: string): void => {
    const names = readdirSync(dir).sort();
    for (const name of names) {
      const abs = join(dir, name);
      const path = relative(root, abs).split(sep).join('/');
      const st = lstatSync(abs);
      if (st.isSymbolicLink()) {
        out.push({ path, kind: 'symlink', mode: '', sha256: sha256(readlinkSync(abs)) });
      } else if (st.isDirectory()) {
        out.push({ path, kind: 'dir', mode: '', sha256: '' });
        walk(abs);
      } else if (st.isFile()) {
        out.push({ path, kind: 'file', mode: st.mode & 0o111 ? 'x' : '', sha256: sha256(readFileSync(abs)) });
      } else {
        throw new Error(`${abs}: only files, directories and symlinks can go into an image`);
      }
    }
  };
  walk(root);
  return out;
}

function hashParts(parts: string[]): string {
  return sha256(parts.join('\n')).slice(0, HASH_LENGTH);
}

function describe(prefix: string, items: ImageInput[]): string[] {
  return items.map((i) => `${prefix}/${i.path}\t${i.kind}\t${i.mode}\t${i.sha256}`);
}

/** The files that define the base image (labs/_base/). */
export function baseImageFiles(labsDir: string = LABS_DIR): string[] {
  return ['Dockerfile', 'packages.txt', 'trim.sh'].map((f) => join(labsDir, '_base', f));
}

/** Debian packages installed on top of minbase / bookworm-slim (labs/_base/packages.txt). */
export function basePackages(labsDir: string = LABS_DIR): string[] {
  return readFileSync(join(labsDir, '_base', 'packages.txt'), 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l.length > 0);
}

/** `containerlabs/base:<hash of its recipe>`. */
export function baseImageTag(labsDir: string = LABS_DIR): string {
  const parts = [BASE_RECIPE_VERSION, `suite=${DEBIAN_SUITE}`, 'variant=minbase'];
  for (const f of baseImageFiles(labsDir)) parts.push(`${relative(labsDir, f)}\t${sha256(readFileSync(f))}`);
  return `${IMAGE_NAMESPACE}/base:${hashParts(parts)}`;
}

/** Image repository of one lab, without tag: `containerlabs/lab-<id>`. */
export function labImageRepo(labId: string): string {
  if (!/^[a-z][a-z0-9-]{1,40}$/.test(labId)) throw new Error(`bad lab id ${JSON.stringify(labId)}`);
  return `${IMAGE_NAMESPACE}/lab-${labId}`;
}

/** Everything that goes into a lab image, and the resulting tag. */
export interface LabImagePlan {
  labId: string;
  baseTag: string;
  /** 12 hex digits. */
  hash: string;
  /** `containerlabs/lab-<id>:<hash>`. */
  tag: string;
  /** Folders and files assembled into the build context (see labs/_common/Dockerfile). */
  commonDir: string;
  labImageDir: string;
  dockerfile: string;
  setupScript: string;
}

export function labImagePlan(labId: string, labsDir: string = LABS_DIR): LabImagePlan {
  const repo = labImageRepo(labId);
  const baseTag = baseImageTag(labsDir);
  const commonDir = join(labsDir, '_common', 'rootfs');
  const labImageDir = join(labsDir, labId, 'image');
  const dockerfile = join(labsDir, '_common', 'Dockerfile');
  const setupScript = join(labsDir, '_common', 'setup.sh');
  const parts = [
    LAB_RECIPE_VERSION,
    `lab=${labId}`,
    `base=${baseTag}`,
    `Dockerfile\t${sha256(readFileSync(dockerfile))}`,
    `setup.sh\t${sha256(readFileSync(setupScript))}`,
    ...describe('common', listTree(commonDir)),
    ...describe('lab', listTree(labImageDir)),
  ];
  const hash = hashParts(parts);
  return { labId, baseTag, hash, tag: `${repo}:${hash}`, commonDir, labImageDir, dockerfile, setupScript };
}

/**
 * The image tag the lab host of `labId` must run: `containerlabs/lab-<id>:<hash>`.
 * Synchronous and cheap (reads a few dozen small files); call it once per lab at start.
 */
export function labImageTag(labId: string, labsDir: string = LABS_DIR): string {
  return labImagePlan(labId, labsDir).tag;
}

/** What to tell the operator when the engine lacks a lab image. */
export function missingImageHint(labId: string, tag: string = labImageTag(labId)): string {
  return `image ${tag} for lab "${labId}" is not built: run \`npm run images\` (node labs/build-images.ts)`;
}
