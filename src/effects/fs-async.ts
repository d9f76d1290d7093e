import * as fs from 'node:fs';
import { promisify } from 'node:util';

/**
 * Promise forms of the `fs` calls the credential store makes on the start-up
 * path, built on the callback API. `node:fs/promises` (which also loads
 * readline and more) costs about 1.5 ms to load, and `auth.json` is read while
 * `initialize` waits. Writes use `node:fs/promises` (FileHandle), loaded on the
 * first write.
 */
export const access = promisify(fs.access);
export const mkdir = promisify(fs.mkdir);
export const readFile = promisify(fs.readFile);
export const readdir = promisify(fs.readdir);
export const rename = promisify(fs.rename);
export const stat = promisify(fs.stat);
export const unlink = promisify(fs.unlink);

/** `node:fs/promises`, loaded on first use. */
export const fsPromises = (): typeof import('node:fs/promises') => fs.promises;
