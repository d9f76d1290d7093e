import * as z from 'zod/mini';

/** What the command line and environment ask the inspectors to do (parsed at start-up, so kept tiny). */
export interface InspectRequest {
  /** `bridge`: serve the Stately inspector bridge page; `{relay}`: stream to a WebSocket relay. */
  stately: 'bridge' | { relay: string } | null;
  /** Serve the local live page. */
  ui: boolean;
  /** Port of the local server (0: any free port). */
  port: number;
}

// Built on first use: nothing of inspection runs at start-up when it is off.
const portSchema = () =>
  z.pipe(
    z.string().check(z.regex(/^\d{1,5}$/, 'a port number')),
    z.transform((s: string) => Number(s)),
  ).check(z.refine((n) => n <= 65535, 'a port number (0-65535)'));
const relaySchema = () => z.string().check(z.regex(/^wss?:\/\/[^\s]+$/, 'ws://host:port'));

function flag(args: readonly string[], name: string): { value: string | null } | null {
  for (const arg of args) {
    if (arg === name) return { value: null };
    if (arg.startsWith(`${name}=`)) return { value: arg.slice(name.length + 1) };
  }
  return null;
}

/**
 * `--inspect[=ws://relay]`, `--inspect-ui[=PORT]` and
 * `CODEX_ACCOUNT_SERVER_INSPECT` (`1`/`true`, or a `ws://` relay URL). Null
 * when inspection is off; throws a message fit for stderr on a bad value.
 */
export function parseInspectRequest(args: readonly string[], env: NodeJS.ProcessEnv): InspectRequest | null {
  const inspect = flag(args, '--inspect');
  const ui = flag(args, '--inspect-ui');
  const fromEnv = env.CODEX_ACCOUNT_SERVER_INSPECT?.trim() ?? '';
  const envOn = fromEnv !== '' && fromEnv !== '0' && fromEnv.toLowerCase() !== 'false';

  let stately: InspectRequest['stately'] = null;
  const relay = inspect?.value ?? (envOn && !/^(1|true|yes|on)$/i.test(fromEnv) ? fromEnv : null);
  if (relay !== null) {
    const parsed = relaySchema().safeParse(relay);
    if (!parsed.success) throw new Error(`--inspect: expected ${parsed.error.issues[0]?.message}, got ${JSON.stringify(relay)}`);
    stately = { relay: parsed.data };
  } else if (inspect || envOn) {
    stately = 'bridge';
  }

  let port = 0;
  if (ui?.value != null) {
    const parsed = portSchema().safeParse(ui.value);
    if (!parsed.success) throw new Error(`--inspect-ui: expected ${parsed.error.issues[0]?.message}, got ${JSON.stringify(ui.value)}`);
    port = parsed.data;
  }
  if (stately === null && !ui) return null;
  return { stately, ui: ui !== null, port };
}
