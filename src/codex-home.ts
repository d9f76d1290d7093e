import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';

/**
 * `CODEX_HOME` as an absolute, resolved path (SPEC §4), else `~/.codex`.
 * Apart from config.ts so the start-up stage (src/cli.ts) can answer
 * `initialize` without loading `config.toml`'s parser and schemas.
 */
export function resolveCodexHome(env: NodeJS.ProcessEnv): string {
  const fromEnv = env.CODEX_HOME;
  if (fromEnv !== undefined && fromEnv !== '') {
    const abs = isAbsolute(fromEnv) ? fromEnv : resolve(fromEnv);
    try {
      return realpathSync(abs);
    } catch {
      return abs; // created on first write
    }
  }
  return join(homedir(), '.codex');
}
