/**
 * Unit tests of the replay ring: it keeps exactly the most recent `capacity` bytes.
 *   node --test server/src/terminal/ring-buffer.test.ts
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RingBuffer } from './ring-buffer.ts';

const text = (r: RingBuffer) => Buffer.concat(r.chunks()).toString();

test('keeps everything while under capacity, in order', () => {
  const r = new RingBuffer(10);
  r.push(Buffer.from('abc'));
  r.push(Buffer.alloc(0));
  r.push(Buffer.from('def'));
  assert.equal(r.size, 6);
  assert.equal(text(r), 'abcdef');
});

test('drops the oldest bytes, cutting a chunk in the middle if needed', () => {
  const r = new RingBuffer(5);
  r.push(Buffer.from('abc'));
  r.push(Buffer.from('def'));
  assert.equal(text(r), 'bcdef');
  r.push(Buffer.from('gh'));
  assert.equal(text(r), 'defgh');
  assert.equal(r.size, 5);
});

test('a chunk larger than the capacity keeps its tail only', () => {
  const r = new RingBuffer(4);
  r.push(Buffer.from('xy'));
  r.push(Buffer.from('0123456789'));
  assert.equal(text(r), '6789');
  assert.equal(r.size, 4);
});

test('many small chunks: size and content stay exact', () => {
  const r = new RingBuffer(1000);
  let all = '';
  for (let i = 0; i < 5000; i++) {
    const s = String(i % 97);
    r.push(Buffer.from(s));
    all += s;
  }
  assert.equal(r.size, 1000);
  assert.equal(text(r), all.slice(-1000));
});
