import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';

/**
 * The `fetch` every backend call uses. With `SSL_CERT_FILE` set (SPEC §4), its
 * certificates are trusted on top of Node's own roots; Node's global fetch
 * cannot take extra CAs, so undici (the library behind it) is loaded, lazily
 * and only then, to supply a dispatcher that does.
 */
export function createFetch(env: NodeJS.ProcessEnv, log: Logger): typeof fetch {
  const caFile = env.SSL_CERT_FILE;
  if (!caFile) return (input, init) => fetch(input, init);
  let custom: Promise<typeof fetch> | undefined;
  const load = async (): Promise<typeof fetch> => {
    let extra: string;
    try {
      extra = readFileSync(caFile, 'utf8');
    } catch (error) {
      log.warn(`SSL_CERT_FILE ${caFile} is unreadable (${(error as Error).message}); using the default trust store`);
      return (input, init) => fetch(input, init);
    }
    // node:tls costs milliseconds to load: only this path needs it, not start-up.
    const [{ createSecureContext, rootCertificates }, undici] = await Promise.all([import('node:tls'), import('undici')]);
    // One secure context for every connection: given as `ca`, the ~150 roots were parsed again
    // for each TLS handshake (tens of ms each; 20 parallel reads waited seconds for connections).
    const secureContext = createSecureContext({ ca: [...rootCertificates, extra] });
    const dispatcher = new undici.Agent({ connect: { secureContext } });
    return ((input: Parameters<typeof fetch>[0], init?: RequestInit) =>
      undici.fetch(input as never, { ...(init as object), dispatcher } as never)) as unknown as typeof fetch;
  };
  return async (input, init) => (await (custom ??= load()))(input, init);
}
