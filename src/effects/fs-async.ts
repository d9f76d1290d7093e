import * as fs from 'node:fs';
import { promisify } from 'node:util';

/**
 * Promise forms of the `fs` calls the credential store makes, built on the
 * callback API. `node:fs/promises` (which also loads readline and more) costs
 * about 1.5 ms to load, and `auth.json` is read while `initialize` waits.
 */
export const access = promisify(fs.access);
export const close = promisify(fs.close);
export const mkdir = promisify(fs.mkdir);
export const open = promisify(fs.open);
export const readFile = promisify(fs.readFile);
export const rename = promisify(fs.rename);
export const unlink = promisify(fs.unlink);
