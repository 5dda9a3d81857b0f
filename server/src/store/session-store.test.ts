import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, test } from 'node:test';
import { MemorySessionStore, type SessionStore, type StoredSession } from './session-store.ts';
import { DB_FILE, SqliteSessionStore } from './sqlite-store.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'cl-store-'));
  dirs.push(d);
  return d;
}

function row(over: Partial<StoredSession> = {}): StoredSession {
  return {
    id: 'AAAAAAAAAAAAAAAAAAAAAA',
    instance: 'test',
    tokenSha256: 'a'.repeat(64),
    lab: 'processes',
    clientKey: '127.0.0.1',
    createdAt: 1_800_000_000_000,
    expiresAt: 1_800_001_800_000,
    hostId: 'f'.repeat(64),
    terminals: ['host'],
    ...over,
  };
}

/** What every store must do, whatever keeps the rows. */
function contract(name: string, make: () => SessionStore) {
  describe(`${name}: the store contract`, () => {
    test('save, load by instance, replace, remove', async () => {
      const store = make();
      const a = row();
      const b = row({ id: 'BBBBBBBBBBBBBBBBBBBBBB', instance: 'other' });
      await store.save(a);
      await store.save(b);
      assert.deepEqual((await store.load('test')).sessions, [a]);
      assert.deepEqual((await store.load('other')).sessions, [b]);
      await store.save({ ...a, expiresAt: a.expiresAt + 60_000, terminals: ['host', 'container'] });
      const [again] = (await store.load('test')).sessions;
      assert.equal(again?.expiresAt, a.expiresAt + 60_000);
      assert.deepEqual(again?.terminals, ['host', 'container']);
      await store.remove(a.id);
      assert.deepEqual((await store.load('test')).sessions, []);
      await store.remove('no-such-id'); // not an error
      await store.close();
    });

    test('a loaded row is a copy: changing it changes nothing stored', async () => {
      const store = make();
      await store.save(row());
      const [s] = (await store.load('test')).sessions;
      s!.terminals.push('container');
      assert.deepEqual((await store.load('test')).sessions[0]?.terminals, ['host']);
      await store.close();
    });
  });
}

contract('MemorySessionStore', () => new MemorySessionStore());
contract('SqliteSessionStore', () => new SqliteSessionStore(tempDir()));

describe('SqliteSessionStore', () => {
  test('what is saved is there for the next process (a fresh open of the same file)', async () => {
    const dir = tempDir();
    const first = new SqliteSessionStore(dir);
    await first.save(row());
    // No close: a SIGKILLed server never closes its database.
    const second = new SqliteSessionStore(dir);
    assert.deepEqual((await second.load('test')).sessions, [row()]);
    await second.close();
    await first.close();
  });

  test('the directory and the file are the owner’s only', async () => {
    const dir = join(tempDir(), 'nested', 'data');
    const store = new SqliteSessionStore(dir);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dir, DB_FILE)).mode & 0o777, 0o600);
    await store.close();
  });

  test('a row that fails the schema is skipped and counted, the others load', async () => {
    const dir = tempDir();
    const store = new SqliteSessionStore(dir);
    await store.save(row());
    const raw = new DatabaseSync(join(dir, DB_FILE));
    raw
      .prepare(
        `INSERT INTO sessions (id, instance, token_sha256, lab, client_key, created_at, expires_at, host_id, terminals)
         VALUES ('CCCCCCCCCCCCCCCCCCCCCC', 'test', 'not-a-hash', 'processes', 'x', 1, 2, NULL, 'not json')`,
      )
      .run();
    raw.close();
    const loaded = await store.load('test');
    assert.deepEqual(loaded.sessions, [row()]);
    assert.equal(loaded.skipped, 1);
    await store.close();
  });

  test('a database of a newer schema is refused with the reason, not overwritten', async () => {
    const dir = tempDir();
    const raw = new DatabaseSync(join(dir, DB_FILE));
    raw.exec('PRAGMA user_version = 99');
    raw.close();
    assert.throws(() => new SqliteSessionStore(dir), /newer server \(schema 99/);
  });

  test('the token itself is nowhere in the file', async () => {
    const dir = tempDir();
    const store = new SqliteSessionStore(dir);
    await store.save(row({ tokenSha256: 'b'.repeat(64) }));
    const raw = new DatabaseSync(join(dir, DB_FILE));
    const cols = raw.prepare('SELECT name FROM pragma_table_info(?)').all('sessions') as { name: string }[];
    raw.close();
    assert.deepEqual(
      cols.map((c) => c.name),
      [
        'id',
        'instance',
        'token_sha256',
        'lab',
        'client_key',
        'created_at',
        'expires_at',
        'host_id',
        'terminals',
      ],
    );
    await store.close();
  });
});
