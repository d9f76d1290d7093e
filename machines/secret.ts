/**
 * A credential that never shows up when serialized: JSON, `String()` and
 * `util.inspect` all print `[redacted]`, so snapshots, inspector events and
 * logs cannot leak it. Only the adapter and the effects call `reveal()`.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'Secret([redacted])';
  }
}
