export { seededRandom } from '../helpers/seeded-random.js';

/** Empty lock files Codex keeps beside auth.json (SPEC §5): allowed to stay. */
export const LOCK_FILES = ['auth.lock', 'auth.json.lock'];

/** auth.json for an API key, byte for byte as Codex writes it (SPEC §5). */
export function apiKeyFile(key: string): string {
  return JSON.stringify({ auth_mode: 'apikey', OPENAI_API_KEY: key }, null, 2);
}

/** Outcomes and failures of a crash run, grouped so that one kind cannot hide another. */
export class CrashReport {
  kills = 0;
  cleanups = 0;
  readonly #outcomes = new Map<string, number>();
  readonly #failures = new Map<string, string[]>();

  outcome(operation: string, what: string): void {
    this.kills++;
    const key = `${operation}: ${what}`;
    this.#outcomes.set(key, (this.#outcomes.get(key) ?? 0) + 1);
  }

  fail(kind: string, text: string): void {
    if (!this.#failures.has(kind)) this.#failures.set(kind, []);
    this.#failures.get(kind)!.push(text);
  }

  get failed(): boolean {
    return this.#failures.size > 0;
  }

  summary(): string {
    return [...this.#outcomes].sort().map(([k, n]) => `${n} × ${k}`).join(', ');
  }

  failures(): string {
    return [...this.#failures]
      .map(([kind, list]) => `${list.length} × ${kind}:\n${list.slice(0, 6).map((t) => `  - ${t}`).join('\n')}`)
      .join('\n');
  }
}
