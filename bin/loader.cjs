// Loads the bundled server (dist/cli.cjs) with the V8 code cache the build
// wrote beside it, so start-up skips most parsing and compiling. Node 20 has
// no built-in compile cache for this. A cache made by another Node/V8 is
// rejected by V8 itself and the bundle is simply compiled as usual.
// CommonJS on purpose: the ESM loader costs a few milliseconds more at start-up.
'use strict';
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const { Script } = require('node:vm');

const bundlePath = join(__dirname, '..', 'dist', 'cli.cjs');
const cachePath = `${bundlePath}.cache`;

/** Compiles the bundle as a CommonJS function, with the code cache when one is given. */
function compileBundle(cachedData) {
  const source = readFileSync(bundlePath, 'utf8');
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  return new Script(wrapper, { filename: bundlePath, ...(cachedData ? { cachedData } : {}) });
}

/** Runs a compiled bundle with the given argv (process.argv from index 2); returns its exports. */
function runBundle(script, argv) {
  process.argv = [process.argv[0], bundlePath, ...argv];
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(bundlePath), module, bundlePath, dirname(bundlePath));
  return module.exports;
}

function start(argv) {
  let cachedData;
  try {
    cachedData = readFileSync(cachePath);
  } catch {
    // no cache: compile normally
  }
  runBundle(compileBundle(cachedData), argv);
}

module.exports = { bundlePath, cachePath, compileBundle, runBundle, start };
