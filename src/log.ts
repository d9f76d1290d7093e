import { Secret } from '../machines/secret.js';

/**
 * Logs go to stderr only: stdout carries the protocol. Every line passes
 * through `redact`, so a token that slips into a message is masked anyway.
 */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

const ORDER: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

// JWTs, OpenAI-style keys, bearer headers, refresh tokens and JSON fields that carry secrets.
const SECRET_PATTERNS: readonly RegExp[] = [
  /eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/g,
  /\bsk-[A-Za-z0-9_-]{2,}/g,
  /\b(Bearer)\s+[^\s"',]+/gi,
  /"(api_?key|apiKey|OPENAI_API_KEY|access_?token|accessToken|id_?token|idToken|refresh_?token|refreshToken|authToken|code|code_verifier)"\s*:\s*"[^"]*"/g,
];

/** Masks anything that looks like a credential. */
export function redact(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (match, name: string | undefined) => {
      if (match.startsWith('"')) return `"${name}":"[redacted]"`;
      if (/^bearer/i.test(match)) return `${name} [redacted]`;
      return '[redacted]';
    });
  }
  return out;
}

function render(value: unknown): string {
  if (typeof value === 'function') return render((value as () => unknown)());
  if (value instanceof Secret) return '[redacted]';
  if (value instanceof Error) return value.message;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * A part may be a function: it is called only when the level is enabled, so
 * costly log text is never built for nothing (`log.debug(() => …)`).
 */
export interface Logger {
  /** Whether a line at `level` would be written. */
  enabled(level: LogLevel): boolean;
  error(...parts: unknown[]): void;
  warn(...parts: unknown[]): void;
  info(...parts: unknown[]): void;
  debug(...parts: unknown[]): void;
}

export function createLogger(
  level: LogLevel = 'warn',
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const enabled = (l: LogLevel) => ORDER[l] <= ORDER[level];
  const at = (l: LogLevel) => (...parts: unknown[]) => {
    if (!enabled(l)) return;
    try {
      write(`${new Date().toISOString()} ${l.toUpperCase()} codex-account-server: ${redact(parts.map(render).join(' '))}\n`);
    } catch {
      // A log line that cannot be built or written is lost, never the request that logged it.
    }
  };
  return { enabled, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

export function parseLogLevel(value: string | undefined): LogLevel {
  const v = value?.toLowerCase();
  return v === 'error' || v === 'warn' || v === 'info' || v === 'debug' ? v : 'warn';
}
