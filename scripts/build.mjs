// Bundles src/cli.ts into dist/cli.cjs (one file to load, no transpiling at run
// time), then writes the V8 code cache that bin/loader.mjs feeds back to V8.
// Inspection (`--inspect`, `--inspect-ui`) is a second bundle, dist/inspect.cjs,
// required only when asked for, so the start-up bundle does not grow with it.
import { readFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { build } from 'esbuild';
import loader from '../bin/loader.cjs';

const { cachePath, compileBundle, runBundle } = loader;

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  minify: true,
  sourcemap: 'linked',
  legalComments: 'none',
  // The bundle runs inside vm.Script (bin/loader.cjs), which has no dynamic-import hook: use require().
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

/** cli.ts's lazy `import('./inspect/index.js')` becomes `require('./inspect.cjs')`, the second bundle. */
const inspectApart = {
  name: 'inspect-apart',
  setup(b) {
    b.onResolve({ filter: /^\.\/inspect\/index\.js$/ }, () => ({ path: './inspect.cjs', external: true }));
  },
};

await build({
  ...common,
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/cli.cjs',
  // Loaded from node_modules only when SSL_CERT_FILE asks for it: kept out of the start-up bundle.
  external: ['undici'],
  plugins: [inspectApart],
});

await build({
  ...common,
  entryPoints: ['src/inspect/index.ts'],
  outfile: 'dist/inspect.cjs',
  // ws's optional native speed-ups; ws works without them.
  external: ['bufferutil', 'utf-8-validate'],
  plugins: [rawText],
});

// Run the module's top level once (`--warm-up` returns before serving), so the
// cache holds the functions start-up compiles, not just the outer script.
const script = compileBundle();
runBundle(script, ['--warm-up']);
writeFileSync(cachePath, script.createCachedData());
