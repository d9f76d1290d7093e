// Bundles src/cli.ts into dist/cli.cjs (one file to load, no transpiling at run
// time), then writes the V8 code cache that bin/loader.cjs feeds back to V8.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import loader from '../bin/loader.cjs';

const { cachePath, compileBundle, runBundle } = loader;

await build({
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/cli.cjs',
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // Loaded from node_modules only when SSL_CERT_FILE asks for it: kept out of the start-up bundle.
  external: ['undici'],
  // vscode-jsonrpc's Node entry also loads its socket/pipe/IPC transports (crypto, net, os):
  // this server needs only the common API with a Node runtime layer (src/rpc/jsonrpc-node.ts).
  alias: { 'vscode-jsonrpc/node': './src/rpc/jsonrpc-node.ts' },
  // The bundle runs inside vm.Script (bin/loader.cjs), which has no dynamic-import hook: use require().
  supported: { 'dynamic-import': false },
  logLevel: 'warning',
});

// Run the module's top level once (`--warm-up` returns before serving), then
// one initialize and account/read on memory streams with a home holding an API
// key, so the cache holds the functions start-up and the first requests
// compile, not just the outer script (V8 adds functions compiled by then).
const script = compileBundle();
const bundle = runBundle(script, ['--warm-up']);
const home = mkdtempSync(join(tmpdir(), 'cas-warm-up-'));
try {
  writeFileSync(join(home, 'auth.json'), JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: 'sk-warm-up' }, null, 2), { mode: 0o600 });
  await bundle.warmUp(home);
} finally {
  rmSync(home, { recursive: true, force: true });
}
writeFileSync(cachePath, script.createCachedData());
