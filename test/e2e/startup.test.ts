import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ServerProcess } from '../helpers/server-process.js';

const LOADER = fileURLToPath(new URL('../../bin/loader.cjs', import.meta.url));

// Written into the child through NODE_OPTIONS=--require: records the built-in
// modules Node has loaded when the first response line reaches stdout.
const RECORDER = `
const { writeFileSync } = require('node:fs');
const stdout = process.stdout;
const write = stdout.write;
stdout.write = function (...args) {
  stdout.write = write;
  writeFileSync(process.env.CAS_TEST_MODULES_OUT, process.moduleLoadList.join('\\n'));
  return write.apply(this, args);
};
`;

describe('start-up', () => {
  let server: ServerProcess | undefined;
  afterEach(() => server?.kill());

  it('answers initialize without loading tls, crypto, fs/promises or the jsonrpc transports', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cas-startup-'));
    const recorder = join(dir, 'record-modules.cjs');
    const out = join(dir, 'modules.txt');
    writeFileSync(recorder, RECORDER);
    server = ServerProcess.start({
      auth: { auth_mode: 'apikey', OPENAI_API_KEY: 'sk-startup-test' },
      env: { NODE_OPTIONS: `--require ${recorder}`, CAS_TEST_MODULES_OUT: out },
    });
    await server.initialize();
    const loaded = readFileSync(out, 'utf8').split('\n');
    expect(loaded).toContain('NativeModule net'); // the stdin pipe: the recorder saw the real list
    for (const heavy of ['NativeModule tls', 'NativeModule crypto', 'NativeModule fs/promises', 'NativeModule internal/fs/promises']) {
      expect(loaded).not.toContain(heavy);
    }
  });

  it('has a V8 code cache for the bundle that V8 accepts', () => {
    const script = `const l = require(${JSON.stringify(LOADER)});
      const s = l.compileBundle(require('node:fs').readFileSync(l.cachePath));
      process.stdout.write(String(s.cachedDataRejected));`;
    expect(execFileSync(process.execPath, ['-e', script]).toString()).toBe('false');
  });
});
