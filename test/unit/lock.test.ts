import { execFile } from 'node:child_process';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { withAuthJsonLock, withAuthLock } from '../../src/effects/lock.js';
import { canLockNow, holdWithFlock, type HeldLock } from '../helpers/flock.js';
import { tempHome } from '../helpers/server-process.js';

const held: HeldLock[] = [];
afterEach(async () => {
  await Promise.all(held.splice(0).map((h) => h.release()));
});
async function hold(path: string, then?: string): Promise<HeldLock> {
  const lock = await holdWithFlock(path, then);
  held.push(lock);
  return lock;
}

describe('withAuthLock (auth.lock, SPEC §8.1)', () => {
  it('creates auth.lock with mode 0644 and auth.json.lock with mode 0600, as Codex does', async () => {
    const home = tempHome();
    await withAuthLock(home, () => withAuthJsonLock(home, async () => {}));
    expect(statSync(join(home, 'auth.lock')).mode & 0o777).toBe(0o644);
    expect(statSync(join(home, 'auth.json.lock')).mode & 0o777).toBe(0o600);
  });

  it('holds a BSD flock that flock(1) sees, and releases it afterwards', async () => {
    const home = tempHome();
    const path = join(home, 'auth.lock');
    const seenInside = await withAuthLock(home, () => canLockNow(path));
    expect(seenInside).toBe(false);
    expect(await canLockNow(path)).toBe(true);
  });

  it('waits while flock(1) holds auth.lock, then proceeds and sees what the holder wrote', async () => {
    const home = tempHome();
    writeFileSync(join(home, 'auth.json'), 'before');
    const codex = await hold(join(home, 'auth.lock'), `printf after > '${join(home, 'auth.json')}'`);
    let entered = false;
    const result = withAuthLock(home, async () => {
      entered = true;
      return readFileSync(join(home, 'auth.json'), 'utf8');
    });
    await sleep(150);
    expect(entered).toBe(false);
    await codex.release();
    expect(await result).toBe('after');
  });

  it('gives up with storageFailed when the lock stays held past the deadline', async () => {
    const home = tempHome();
    await hold(join(home, 'auth.lock'));
    const started = Date.now();
    await expect(withAuthLock(home, async () => 'never', { timeoutMs: 120 })).rejects.toMatchObject({
      kind: 'storageFailed',
      message: expect.stringContaining('auth.lock'),
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('stops waiting when its signal aborts, without running the update', async () => {
    const home = tempHome();
    await hold(join(home, 'auth.lock'));
    const abort = new AbortController();
    let entered = false;
    const result = withAuthLock(home, async () => (entered = true), { signal: abort.signal });
    setTimeout(() => abort.abort(new Error('request cancelled')), 50);
    await expect(result).rejects.toThrow('request cancelled');
    expect(entered).toBe(false);
  });

  it('releases the lock when the update throws', async () => {
    const home = tempHome();
    await expect(withAuthLock(home, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await canLockNow(join(home, 'auth.lock'))).toBe(true);
  });

  it('runs concurrent updates in this process one at a time, in call order', async () => {
    const home = tempHome();
    const order: number[] = [];
    let inside = 0;
    let most = 0;
    await Promise.all(
      [0, 1, 2, 3, 4].map((n) =>
        withAuthLock(home, async () => {
          most = Math.max(most, ++inside);
          order.push(n);
          await sleep(5);
          inside--;
        }),
      ),
    );
    expect(most).toBe(1);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('lets a later caller through when an earlier waiter gives up', async () => {
    const home = tempHome();
    const codex = await hold(join(home, 'auth.lock'));
    const abort = new AbortController();
    const first = withAuthLock(home, async () => 'first', { signal: abort.signal });
    const second = withAuthLock(home, async () => 'second');
    abort.abort(new Error('gave up'));
    await expect(first).rejects.toThrow('gave up');
    await codex.release();
    expect(await second).toBe('second');
  });

  it('loses no update when two processes increment a counter under it', async () => {
    const home = tempHome();
    writeFileSync(join(home, 'counter'), '0');
    const script = fileURLToPath(new URL('../helpers/lock-contender.ts', import.meta.url));
    const run = () => promisify(execFile)(process.execPath, ['--import', 'tsx', script, home, '25']);
    await Promise.all([run(), run()]);
    expect(readFileSync(join(home, 'counter'), 'utf8')).toBe('50');
  });
});

describe('withAuthJsonLock (auth.json.lock, SPEC §8.1)', () => {
  it('holds a BSD flock on auth.json.lock that flock(1) sees', async () => {
    const home = tempHome();
    const path = join(home, 'auth.json.lock');
    expect(await withAuthJsonLock(home, () => canLockNow(path))).toBe(false);
    expect(await canLockNow(path)).toBe(true);
  });

  it('retries briefly and proceeds when the holder lets go within the window', async () => {
    const home = tempHome();
    const other = await hold(join(home, 'auth.json.lock'));
    setTimeout(() => void other.release(), 60);
    expect(await withAuthJsonLock(home, async () => 'renamed', { timeoutMs: 1_000 })).toBe('renamed');
  });

  it('fails with storageFailed when auth.json.lock stays held past its brief retry', async () => {
    const home = tempHome();
    await hold(join(home, 'auth.json.lock'));
    await expect(withAuthJsonLock(home, async () => 'renamed', { timeoutMs: 100 })).rejects.toMatchObject({
      kind: 'storageFailed',
      message: expect.stringContaining('auth.json.lock'),
    });
  });
});

describe('re-entry', () => {
  it('lets an update that already holds auth.lock take it again, as a store write inside a refresh does', async () => {
    const home = tempHome();
    const result = await withAuthLock(home, () => withAuthLock(home, () => withAuthJsonLock(home, async () => 'saved'), { timeoutMs: 100 }));
    expect(result).toBe('saved');
  });

  it('still makes an unrelated concurrent caller wait for the holder', async () => {
    const home = tempHome();
    const events: string[] = [];
    await Promise.all([
      withAuthLock(home, async () => {
        events.push('outer in');
        await sleep(30);
        await withAuthLock(home, async () => events.push('inner'));
        events.push('outer out');
      }),
      sleep(5).then(() => withAuthLock(home, async () => events.push('other'))),
    ]);
    expect(events).toEqual(['outer in', 'inner', 'outer out', 'other']);
  });
});
