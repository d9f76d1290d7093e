// Bundles src/cli.ts into dist/cli.cjs (one file to load, no transpiling at run
// time), then writes the V8 code cache that bin/loader.mjs feeds back to V8.
import { writeFileSync } from 'node:fs';
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
  // Loaded from node_modules only when needed, kept out of the start-up bundle: undici when
  // SSL_CERT_FILE asks for it, fs-ext (a native addon, cannot be bundled) on the first credential write.
  external: ['undici', 'fs-ext'],
  // The bundle runs inside vm.Script (bin/loader.cjs), which has no dynamic-import hook: use require().
  supported: { 'dynamic-import': false },
  logLevel: 'warning',
});

// Run the module's top level once (`--warm-up` returns before serving), so the
// cache holds the functions start-up compiles, not just the outer script.
const script = compileBundle();
runBundle(script, ['--warm-up']);
writeFileSync(cachePath, script.createCachedData());
