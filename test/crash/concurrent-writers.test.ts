import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { RawServer } from '../helpers/raw-server.js';
import { tempHome } from '../helpers/server-process.js';
import { apiKeyFile, LOCK_FILES, seededRandom } from './crash-helpers.js';

/**
 * Issue 10 item 4: several server processes on one CODEX_HOME writing at
 * once never lose an update silently. Each process runs logins (fresh keys)
 * and logouts back to back; afterwards `auth.json` must be the effect of an
 * acknowledged write that no other acknowledged write followed in real time
 * (a write that began after another was answered must win over it).
 */
const SEED = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
const ROUNDS = 4;
const WRITES_PER_PROCESS = 12;

interface Write {
  process: number;
  /** auth.json after this write (`null`: none). */
  after: string | null;
  sent: number;
  answered: number;
  ok: boolean;
}

/** Final states each acknowledged write allows: its own, unless a write sent after its answer exists. */
function explains(final: string | null, writes: Write[]): Write | undefined {
  const acknowledged = writes.filter((w) => w.ok);
  return acknowledged.find((w) => w.after === final && acknowledged.every((x) => x === w || x.sent <= w.answered));
}

async function round(processes: number, random: () => number): Promise<{ writes: Write[]; final: string | null; home: string }> {
  const home = tempHome();
  const servers = Array.from({ length: processes }, () => RawServer.start(home));
  const writes: Write[] = [];
  try {
    await Promise.all(servers.map((s) => s.request('init', 'initialize', { clientInfo: { name: 'writer', version: '1' } })));
    await Promise.all(
      servers.map(async (server, p) => {
        for (let i = 0; i < WRITES_PER_PROCESS; i++) {
          const login = random() < 0.75;
          const key = `sk-race-${randomBytes(12).toString('hex')}`;
          const sent = performance.now();
          const response = login
            ? await server.request(`w${i}`, 'account/login/start', { type: 'apiKey', apiKey: key })
            : await server.request(`w${i}`, 'account/logout', {});
          writes.push({ process: p, after: login ? apiKeyFile(key) : null, sent, answered: performance.now(), ok: 'result' in response });
        }
      }),
    );
    for (const s of servers) s.child.stdin.end();
    await Promise.all(servers.map((s) => s.closed));
  } finally {
    for (const s of servers) s.kill();
  }
  let final: string | null = null;
  try {
    final = readFileSync(join(home, 'auth.json'), 'utf8');
  } catch {
    /* absent */
  }
  return { writes, final, home };
}

describe('several processes on one CODEX_HOME', () => {
  it.each([2, 4])('never lose an acknowledged update when %i processes write at once', { timeout: 120_000 }, async (processes) => {
    const random = seededRandom(SEED + processes);
    for (let r = 0; r < ROUNDS; r++) {
      const { writes, final, home } = await round(processes, random);
      const context = `seed ${SEED} (CRASH_SEED to repeat), ${processes} processes, round ${r}`;
      expect(writes.filter((w) => !w.ok), `${context}: refused writes`).toEqual([]);
      const winner = explains(final, writes);
      expect(
        winner,
        `${context}: auth.json ${final === null ? 'absent' : JSON.stringify(final.slice(0, 80))} is no acknowledged write that nothing later superseded`,
      ).toBeDefined();
      if (final !== null) {
        expect(() => JSON.parse(final), context).not.toThrow();
        expect(statSync(join(home, 'auth.json')).mode & 0o777, context).toBe(0o600);
      }
      // Every write finished: no temp file may be left.
      expect(readdirSync(home).filter((f) => f !== 'auth.json' && !LOCK_FILES.includes(f)), context).toEqual([]);
    }
    console.log(`concurrent writers: seed ${SEED}, ${processes} processes × ${WRITES_PER_PROCESS} writes × ${ROUNDS} rounds, none lost`);
  });
});
