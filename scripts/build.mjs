// Bundles the start-up stage src/cli.ts into dist/cli.cjs and the server proper
// src/serve.ts into dist/server.cjs (no transpiling at run time), then writes
// the V8 code cache of the server, which bin/loader.cjs feeds back to V8.
// Inspection (`--inspect`, `--inspect-ui`) is a second bundle, dist/inspect.cjs,
// required only when asked for, so the start-up bundle does not grow with it.
import { readFile } from 'node:fs/promises';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { build } from 'esbuild';
import loader from '../bin/loader.cjs';

const { CACHED_BUNDLES, bundlePath, cachePath, load, loadedScript } = loader;

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // Loaded from node_modules only when needed, kept out of the start-up bundle: undici when
  // SSL_CERT_FILE asks for it, fs-ext (a native addon, cannot be bundled) on the first credential write.
  // The keyring's native module is only ever loaded by its helper process, never by the server.
  external: ['undici', 'fs-ext', '@napi-rs/keyring'],
  // vscode-jsonrpc's Node entry also loads its socket/pipe/IPC transports (crypto, net, os):
  // this server needs only the common API with a Node runtime layer (src/rpc/jsonrpc-node.ts).
  alias: { 'vscode-jsonrpc/node': './src/rpc/jsonrpc-node.ts' },
  // dist/server.cjs runs inside vm.Script (bin/loader.cjs), which has no dynamic-import hook: use require().
  supported: { 'dynamic-import': false },
  logLevel: 'warning',
};

/** `import text from './x.svg?raw'` as Vite reads it: the file's text. */
const rawText = {
  name: 'raw-text',
  setup(b) {
    b.onResolve({ filter: /\?raw$/ }, (args) => ({
      path: new URL(args.path.slice(0, -'?raw'.length), `file://${args.resolveDir}/`).pathname,
      namespace: 'raw-text',
    }));
    b.onLoad({ filter: /.*/, namespace: 'raw-text' }, async (args) => ({ contents: await readFile(args.path, 'utf8'), loader: 'text' }));
  },
};

/**
 * cli.ts's lazy `import('./inspect/index.js')` becomes `require('./inspect.cjs')`, the second bundle;
 * `import('./schema/index.js')` (generate-json-schema, generate-ts) becomes `require('./schema.cjs')`.
 */
const inspectApart = {
  name: 'inspect-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/inspect\/index\.js$/ }, () => ({ path: './inspect.cjs', external: true }));
    b.onResolve({ filter: /^\.\/schema\/index\.js$/ }, () => ({ path: './schema.cjs', external: true }));
  },
};

// Caches of an older build would be fed to V8 by the warm-up below.
for (const name of CACHED_BUNDLES) rmSync(cachePath(name), { force: true });

await build({
  ...common,
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/cli.cjs',
  plugins: [inspectApart],
});

await build({
  ...common,
  entryPoints: ['src/serve.ts'],
  outfile: 'dist/server.cjs',
  plugins: [inspectApart],
});

// The start-up stage must stay small: zod, xstate and the machines belong in dist/server.cjs.
if (statSync(bundlePath('cli')).size > 32 * 1024) throw new Error('dist/cli.cjs grew past 32 KiB: something heavy is imported on the start-up path');

await build({
  ...common,
  entryPoints: ['src/inspect/index.ts'],
  outfile: 'dist/inspect.cjs',
  // ws's optional native speed-ups; ws works without them.
  external: [...common.external, 'bufferutil', 'utf-8-validate'],
  plugins: [rawText],
});

// The schema export verbs: zod's JSON Schema output, xstate/graph and the TypeScript emitter.
await build({
  ...common,
  entryPoints: ['src/schema/index.ts'],
  outfile: 'dist/schema.cjs',
});

// The keyring helper: a child process the keyring store starts on first use
// (src/effects/keyring-helper.ts). The native module stays in node_modules.
await build({
  entryPoints: ['src/effects/keyring-helper.ts'],
  outfile: 'dist/keyring-helper.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  legalComments: 'none',
  external: ['@napi-rs/keyring'],
  logLevel: 'warning',
});

// One initialize and account/read through both stages on memory streams, with a home holding an
// API key, so the cache holds the functions the server runs on loading and on its first requests,
// not just the outer script (V8 adds functions compiled by then).
const cli = createRequire(import.meta.url)(bundlePath('cli'));
const home = mkdtempSync(join(tmpdir(), 'cas-warm-up-'));
try {
  writeFileSync(join(home, 'auth.json'), JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-warm-up' }, null, 2), { mode: 0o600 });
  await cli.warmUp(home, () => load('server'));
} finally {
  rmSync(home, { recursive: true, force: true });
}
for (const name of CACHED_BUNDLES) writeFileSync(cachePath(name), loadedScript(name).createCachedData());
