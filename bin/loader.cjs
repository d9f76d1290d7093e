// Loads the two bundles of the server. dist/cli.cjs, the start-up stage, is
// small and answers `initialize`: a plain require() (measured: cheaper than
// loading `vm` and `module` for a code cache of 12 KB). dist/server.cjs, the
// server proper, is loaded once that answer is written (through `load`), with
// the V8 code cache the build wrote beside it, so it skips most parsing and
// compiling. Node 20 has no built-in compile cache for this. A cache made by
// another Node/V8 is rejected by V8 itself and the bundle is simply compiled.
// CommonJS on purpose: the ESM loader costs a few milliseconds more at start-up.
'use strict';
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

const distDir = join(__dirname, '..', 'dist');
/** dist/<name>.cjs */
const bundlePath = (name) => join(distDir, `${name}.cjs`);
/** dist/<name>.cjs.cache */
const cachePath = (name) => `${bundlePath(name)}.cache`;
/** The bundles loaded with a code cache (`load`). */
const CACHED_BUNDLES = ['server'];

/** Compiles a bundle as a CommonJS function, with the code cache when one is given. */
function compileBundle(name, cachedData) {
  const filename = bundlePath(name);
  const source = readFileSync(filename, 'utf8');
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  const { Script } = require('node:vm');
  return new Script(wrapper, { filename, ...(cachedData ? { cachedData } : {}) });
}

const loaded = new Map();

/**
 * Compiles (with its cache, if there is one) and runs a bundle once; returns its exports.
 * `{ script }` of each is kept, so the build can take the code cache after its warm-up.
 */
function load(name) {
  const done = loaded.get(name);
  if (done) return done.exports;
  let cachedData;
  try {
    cachedData = readFileSync(cachePath(name));
  } catch {
    // no cache: compile normally
  }
  const script = compileBundle(name, cachedData);
  const filename = bundlePath(name);
  const module = { exports: {} };
  const { createRequire } = require('node:module');
  script.runInThisContext()(module.exports, createRequire(filename), module, filename, distDir);
  loaded.set(name, { script, exports: module.exports });
  return module.exports;
}

/** The script a bundle was loaded from (for the build's `createCachedData()`). */
const loadedScript = (name) => loaded.get(name)?.script;

function start(argv) {
  require(bundlePath('cli')).main(argv, () => load('server'));
}

module.exports = { CACHED_BUNDLES, bundlePath, cachePath, compileBundle, load, loadedScript, start };
