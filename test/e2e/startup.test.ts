import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ServerProcess } from '../helpers/server-process.js';

const LOADER = fileURLToPath(new URL('../../bin/loader.cjs', import.meta.url));

// Written into the child through NODE_OPTIONS=--require: records, when the first
// response line reaches stdout, the built-in modules Node has loaded and whether
// bin/loader.cjs had loaded the server bundle (dist/server.cjs) by then.
// It first sleeps 100 ms, so the test's first line is surely waiting on stdin when the server
// starts, as a host's is (a host writes right after spawning; Node takes longer to start).
const RECORDER = `
Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
const { writeFileSync } = require('node:fs');
const stdout = process.stdout;
const write = stdout.write;
stdout.write = function (...args) {
  stdout.write = write;
  const loader = require.cache[process.env.CAS_TEST_LOADER];
  writeFileSync(process.env.CAS_TEST_MODULES_OUT, JSON.stringify({
    modules: process.moduleLoadList,
    serverLoaded: loader ? loader.exports.loadedScript('server') !== undefined : 'loader not loaded',
  }));
  return write.apply(this, args);
};
`;

/** Starts the server with the recorder; returns what it recorded at the first response. */
async function recordFirstAnswer(send: (server: ServerProcess) => Promise<unknown>) {
  const dir = mkdtempSync(join(tmpdir(), 'cas-startup-'));
  const recorder = join(dir, 'record-modules.cjs');
  const out = join(dir, 'modules.json');
  writeFileSync(recorder, RECORDER);
  const server = ServerProcess.start({
    auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-startup-test' },
    env: { NODE_OPTIONS: `--require ${recorder}`, CAS_TEST_MODULES_OUT: out, CAS_TEST_LOADER: LOADER },
  });
  try {
    await send(server);
    return JSON.parse(readFileSync(out, 'utf8')) as { modules: string[]; serverLoaded: boolean | string };
  } finally {
    server.kill();
  }
}

describe('start-up', () => {
  it('answers initialize without loading tls, crypto, fs/promises or the jsonrpc transports', async () => {
    const { modules } = await recordFirstAnswer((server) => server.initialize());
    expect(modules).toContain('NativeModule net'); // the stdin pipe: the recorder saw the real list
    for (const heavy of ['NativeModule tls', 'NativeModule crypto', 'NativeModule fs/promises', 'NativeModule internal/fs/promises']) {
      expect(modules).not.toContain(heavy);
    }
  });

  it('answers a plain initialize before the server bundle is loaded', async () => {
    const { serverLoaded } = await recordFirstAnswer((server) => server.initialize());
    expect(serverLoaded).toBe(false);
  });

  it('loads the server bundle before answering a first line that is not a plain initialize', async () => {
    const { serverLoaded } = await recordFirstAnswer((server) => server.request('initialize', {}));
    expect(serverLoaded).toBe(true);
  });

  it('exits with 1 and says why on stderr when the server bundle cannot start', async () => {
    // A copy of bin/ and dist/ whose server bundle throws as it loads.
    const copy = mkdtempSync(join(tmpdir(), 'cas-broken-'));
    const root = dirname(dirname(LOADER));
    cpSync(join(root, 'bin'), join(copy, 'bin'), { recursive: true });
    cpSync(join(root, 'dist'), join(copy, 'dist'), { recursive: true });
    writeFileSync(join(copy, 'dist', 'server.cjs'), 'throw new Error("a broken build");\n');
    rmSync(join(copy, 'dist', 'server.cjs.cache'));
    const server = ServerProcess.start({ bin: join(copy, 'bin', 'codex-account-server') });
    try {
      server.send({ id: 1, method: 'account/read', params: {} });
      expect((await server.exited).code).toBe(1);
      expect(server.stderr).toMatch(/ERROR codex-account-server: the server \(dist\/server\.cjs\) could not start/);
      expect(server.messages).toEqual([]);
    } finally {
      server.kill();
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it('has a V8 code cache for the server bundle that V8 accepts', () => {
    const script = `const l = require(${JSON.stringify(LOADER)});
      const s = l.compileBundle('server', require('node:fs').readFileSync(l.cachePath('server')));
      process.stdout.write(String(s.cachedDataRejected));`;
    expect(execFileSync(process.execPath, ['-e', script]).toString()).toBe('false');
  });
});
