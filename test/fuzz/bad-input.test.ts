import fc from 'fast-check';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { idKey, parseOutputLine, RawServer, type OutputMessage } from '../helpers/raw-server.js';
import { seededRandom } from '../helpers/seeded-random.js';
import { ServerProcess, tempHome } from '../helpers/server-process.js';
import { lineArb, secretArb, type Line } from './lines.js';

/**
 * Issue 10 item 3: thousands of generated hostile lines against ONE real
 * server process. Reproduce a run with `FUZZ_SEED=<seed> npx vitest run test/fuzz`;
 * `FUZZ_LINES` changes the number of generated lines (default 10,000).
 */
const SEED = process.env.FUZZ_SEED ? Number(process.env.FUZZ_SEED) : (Date.now() ^ (Math.random() * 2 ** 31)) >>> 0;
const LINES = process.env.FUZZ_LINES ? Number(process.env.FUZZ_LINES) : 10_000;
/** Lines sent before `initialize` (wrong order). */
const BEFORE_INITIALIZE = Math.max(100, Math.round(LINES * 0.05));
/** Any 12 characters of a secret on stderr count as a leak (the JSON parser quoted ~20). */
const LEAK_WINDOW = 12;
/** No new stdout line for this long: the missing answers are not coming. */
const STALL_MS = 5_000;

/** Stores an API key the way the server itself does (a real login), and returns it. */
async function storeKeyWithARealLogin(home: string): Promise<string> {
  const key = fc.sample(secretArb, { seed: SEED, numRuns: 1 })[0]!;
  const server = ServerProcess.start({ home });
  try {
    await server.initialize();
    const response = await server.request('account/login/start', { type: 'apiKey', apiKey: key });
    if (!response.result) throw new Error(`login failed: ${JSON.stringify(response)}`);
  } finally {
    await server.close();
  }
  return key;
}

/** Failures grouped by kind, so that one kind of defect cannot hide another in the report. */
class Failures {
  readonly #byKind = new Map<string, string[]>();

  add(kind: string, text: string): void {
    if (!this.#byKind.has(kind)) this.#byKind.set(kind, []);
    this.#byKind.get(kind)!.push(text);
  }

  get count(): number {
    return [...this.#byKind.values()].reduce((n, list) => n + list.length, 0);
  }

  report(): string {
    return [...this.#byKind]
      .map(([kind, list]) => `${list.length} × ${kind}:\n${list.slice(0, 6).map((t) => `  - ${t}`).join('\n')}`)
      .join('\n');
  }
}

const snippet = (bytes: Buffer) => {
  const text = bytes.toString('utf8').replace(/\n$/, '');
  return text.length > 160 ? `${text.slice(0, 160)}… (${bytes.length} bytes)` : text;
};

it(`survives ${LINES} generated bad lines, answering every readable id exactly once`, { timeout: 120_000 }, async () => {
  const home = tempHome();
  const storedKey = await storeKeyWithARealLogin(home);
  const authPath = join(home, 'auth.json');
  const authBefore = readFileSync(authPath);
  const listingBefore = readdirSync(home).sort();

  // ---- generate
  const generatedAt = Date.now();
  const ctx = { storedKey };
  const before = fc.sample(lineArb('beforeInitialize', ctx), { seed: SEED, numRuns: BEFORE_INITIALIZE });
  const after = fc.sample(lineArb('afterInitialize', ctx), { seed: SEED + 1, numRuns: LINES - BEFORE_INITIALIZE });
  const initialize: Line = {
    bytes: Buffer.from('{"id":"fuzz-initialize","method":"initialize","params":{"clientInfo":{"name":"fuzz","version":"1"}}}\n'),
    kind: 'initialize',
    reply: { key: idKey('fuzz-initialize'), check: (r) => (r.result ? null : `initialize failed: ${JSON.stringify(r.error)}`) },
    secrets: [],
  };
  // Over the 16 MiB cap: dropped unanswered (README), then the next line in the same write is served.
  const tooLong: Line = {
    bytes: Buffer.from(`{"id":"fuzz-too-long","method":"account/read","params":{"pad":"${'x'.repeat(17 * 1024 * 1024)}"}}\n`),
    kind: 'line over 16 MiB',
    reply: null,
    secrets: [],
  };
  const afterTooLong: Line = {
    bytes: Buffer.from('{"id":"fuzz-after-too-long","method":"account/read","params":{}}\n'),
    kind: 'request after a line over 16 MiB',
    reply: {
      key: idKey('fuzz-after-too-long'),
      check: (r) => ((r.result as { account?: { type?: string } })?.account?.type === 'apiKey' ? null : `got ${JSON.stringify(r)}`),
    },
    secrets: [],
  };
  const middle = Math.floor(after.length / 2);
  const lines: Line[] = [...before, initialize, ...after.slice(0, middle), tooLong, afterTooLong, ...after.slice(middle)];
  const generatedMs = Date.now() - generatedAt;

  // ---- expectations per id key
  const expected = new Map<string, number>();
  for (const l of lines) if (l.reply) expected.set(l.reply.key, (expected.get(l.reply.key) ?? 0) + 1);
  const maybeKeys = new Set(lines.flatMap((l) => l.maybe ?? []));
  const stream = Buffer.concat(lines.map((l) => l.bytes));

  // ---- run
  const started = Date.now();
  const server = RawServer.start(home);
  const random = seededRandom(SEED);
  try {
    for (let offset = 0; offset < stream.length && server.running; ) {
      // Mostly small writes (lines and UTF-8 sequences split across them), sometimes large ones.
      const size = random() < 0.9 ? 1 + Math.floor(random() * 4096) : 1 + Math.floor(random() * 1024 * 1024);
      await server.write(stream.subarray(offset, offset + size));
      offset += size;
    }
    const wanted = lines.filter((l) => l.reply).length;
    const responses = () => server.lines.length; // Notifications would count too; none are expected.
    // Wait for every answer; give up once nothing new has arrived for a while (missing answers are reported below).
    let seen = -1;
    let lastProgress = Date.now();
    await server
      .until(
        () => {
          if (responses() !== seen) [seen, lastProgress] = [responses(), Date.now()];
          return responses() >= wanted || Date.now() - lastProgress > STALL_MS;
        },
        90_000,
        `${wanted} responses (seed ${SEED})`,
      )
      .catch(() => undefined);
    // Anything late or extra shows up here.
    await new Promise((r) => setTimeout(r, 300));
    const elapsedMs = Date.now() - started;

    // ---- check
    const failures = new Failures();
    const output: OutputMessage[] = [];
    for (const raw of server.lines) {
      try {
        output.push(parseOutputLine(raw));
      } catch (error) {
        failures.add('stdout', `stdout line is not one JSON object: ${raw.slice(0, 200)} (${(error as Error).message})`);
      }
    }
    for (const n of output.filter((m) => m.isNotification)) failures.add('notification', `unexpected notification: ${n.raw.slice(0, 200)}`);
    const byKey = new Map<string, OutputMessage[]>();
    for (const m of output.filter((o) => !o.isNotification)) {
      const key = m.key ?? `(no id: ${m.raw.slice(0, 80)})`;
      if (!byKey.has(key)) byKey.set(key, []);
      byKey.get(key)!.push(m);
    }
    // Surplus responses may only be explained by ambiguous ids, one each.
    const surplus = new Map<string, number>();
    for (const [key, got] of byKey) {
      const want = expected.get(key) ?? 0;
      if (got.length > want) surplus.set(key, got.length - want);
    }
    for (const l of lines.filter((x) => x.maybe)) {
      const key = l.maybe!.find((k) => (surplus.get(k) ?? 0) > 0);
      if (key) surplus.set(key, surplus.get(key)! - 1);
    }
    for (const [key, extra] of surplus) {
      if (extra > 0) failures.add('extra response', `${extra} response(s) too many for id ${key.slice(0, 80)}: ${byKey.get(key)![0]!.raw.slice(0, 200)}`);
    }
    for (const l of lines) {
      if (!l.reply) continue;
      const got = byKey.get(l.reply.key) ?? [];
      const want = expected.get(l.reply.key)!;
      if (got.length < want) {
        failures.add('missing response', `no response for id ${l.reply.key.slice(0, 80)} (${l.kind}): ${snippet(l.bytes)}`);
        continue;
      }
      // The answer is checked where the id is unique (duplicates are checked by count).
      if (want === 1 && got.length === 1 && !maybeKeys.has(l.reply.key) && l.reply.check) {
        const problem = l.reply.check(got[0]!.value);
        if (problem) failures.add('wrong answer', `wrong answer to ${l.kind}: ${problem}\n    sent: ${snippet(l.bytes)}`);
      }
    }
    if (!server.running) failures.add('exit', `the server exited: ${JSON.stringify(await server.exited)}; stderr tail:\n${server.stderr.slice(-2000)}`);

    // No secret from any line (nor the stored key) on stderr, not even a piece of one.
    const pieces = new Map<string, string>();
    for (const secret of new Set([storedKey, ...lines.flatMap((l) => l.secrets)])) {
      for (let i = 0; i + LEAK_WINDOW <= secret.length; i++) pieces.set(secret.slice(i, i + LEAK_WINDOW), secret);
    }
    for (let at = 0; at + LEAK_WINDOW <= server.stderr.length; at++) {
      const piece = server.stderr.slice(at, at + LEAK_WINDOW);
      if (pieces.has(piece)) {
        failures.add('secret on stderr', `stderr holds part of a secret (${piece}): …${server.stderr.slice(Math.max(0, at - 120), at + 40)}…`);
        break;
      }
    }

    const exit = server.running ? (server.child.stdin.end(), await Promise.race([server.exited, new Promise((r) => setTimeout(() => r('still running'), 5_000))])) : await server.exited;
    if (JSON.stringify(exit) !== JSON.stringify({ code: 0, signal: null })) failures.add('exit', `on stdin EOF the server ended with ${JSON.stringify(exit)}, not exit code 0`);
    if (!readFileSync(authPath).equals(authBefore)) failures.add('auth.json', 'auth.json changed');
    if ((statSync(authPath).mode & 0o777) !== 0o600) failures.add('auth.json', 'auth.json is no longer mode 0600');
    if (JSON.stringify(readdirSync(home).sort()) !== JSON.stringify(listingBefore)) failures.add('auth.json', `CODEX_HOME changed: ${readdirSync(home).sort().join(', ')}`);

    const kinds = new Map<string, number>();
    for (const l of lines) {
      const k = l.kind.replace(/ \d+ deep| \(\d+ bytes\)|unreadable id .*|ambiguous id .*|notification .*/, (m) => m.split(' ')[0]!);
      kinds.set(k, (kinds.get(k) ?? 0) + 1);
    }
    console.log(
      [
        `fuzz: seed ${SEED} (FUZZ_SEED=${SEED} to repeat), ${lines.length} lines (${LINES} generated + 3 fixed), ${(stream.length / 1024 / 1024).toFixed(1)} MiB,`,
        `  ${lines.filter((l) => l.reply).length} requests expecting one answer each, ${output.length} stdout lines;`,
        `  generated in ${generatedMs} ms, sent and answered in ${elapsedMs} ms; ${failures.count} failure(s)`,
      ].join('\n'),
    );
    if (failures.count > 0) expect.fail(`seed ${SEED}: ${failures.report()}`);
  } finally {
    server.kill();
  }
});
