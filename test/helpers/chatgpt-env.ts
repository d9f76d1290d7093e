import { afterEach, beforeAll } from 'vitest';
import { accountsCheck, FakeBackend } from './backend.js';
import { Issuer } from './issuer.js';
import { leakedSecrets } from './login.js';
import { ServerProcess, type StartOptions } from './server-process.js';
import { selfSigned } from './tls.js';

/** The workspaces discovery lists (SPEC §9.2). */
export const WORKSPACES = [
  { id: 'ws-1', name: 'Acme' },
  { id: 'ws-2', name: 'Other' },
];

export interface ChatgptEnvStart extends StartOptions {
  /** Extra `config.toml` lines (after `chatgpt_base_url`). */
  configLines?: string;
  /** `initialize` params (default capabilities: experimentalApi on). */
  initialize?: Record<string, unknown>;
}

/**
 * Per-test ChatGPT world for end-to-end tests: the issuer stand-in (plain
 * HTTP, as its overrides allow), the ChatGPT backend over HTTPS (trusted
 * through `SSL_CERT_FILE`, SPEC §9.2), and any number of built servers
 * pointed at both, with OS-assigned callback ports. After each test every
 * server is killed, both stand-ins stop, and no secret the issuer handed out
 * may appear on any server's stderr (debug logging is on to give leaks a chance).
 */
export function useChatgptEnv() {
  let tls: ReturnType<typeof selfSigned>;
  const state: { issuer: Issuer | null; backend: FakeBackend | null; servers: ServerProcess[] } = {
    issuer: null,
    backend: null,
    servers: [],
  };
  beforeAll(() => {
    tls = selfSigned();
  });
  afterEach(async () => {
    const servers = state.servers.splice(0);
    for (const s of servers) s.kill();
    const issuer = state.issuer;
    await issuer?.stop();
    await state.backend?.stop();
    state.issuer = null;
    state.backend = null;
    if (issuer) {
      const leaks = leakedSecrets(issuer, servers.map((s) => s.stderr));
      if (leaks.length > 0) throw new Error(`${leaks.length} secret(s) reached a server's stderr`);
    }
  });

  const env = {
    get issuer(): Issuer {
      if (!state.issuer) throw new Error('call env.setup() first');
      return state.issuer;
    },
    get backend(): FakeBackend {
      if (!state.backend) throw new Error('call env.setup() first');
      return state.backend;
    },
    /** Starts the issuer and the backend (discovery answers for WORKSPACES). */
    async setup(): Promise<void> {
      state.issuer = await Issuer.start();
      state.backend = await FakeBackend.start(tls);
      state.backend.on('/backend-api/wham/accounts/check', accountsCheck(WORKSPACES));
    },
    /** The environment a server needs to use both stand-ins. */
    serverEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
      return {
        CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0',
        CODEX_APP_SERVER_LOGIN_ISSUER: env.issuer.origin,
        CODEX_REFRESH_TOKEN_URL_OVERRIDE: env.issuer.refreshUrl,
        CODEX_REVOKE_TOKEN_URL_OVERRIDE: env.issuer.revokeUrl,
        CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS: '3000',
        CODEX_ACCOUNT_SERVER_LOG: 'debug',
        SSL_CERT_FILE: tls.certPath,
        ...extra,
      };
    },
    /** Starts a server (not initialized). */
    spawn(options: ChatgptEnvStart = {}): ServerProcess {
      const { configLines = '', initialize: _, env: extraEnv, ...rest } = options;
      const config = options.config ?? `chatgpt_base_url = "${env.backend.baseUrl}"\n${configLines}`;
      const server = ServerProcess.start({ ...rest, config, env: env.serverEnv(extraEnv) });
      state.servers.push(server);
      return server;
    },
    /** Starts and initializes a server. */
    async start(options: ChatgptEnvStart = {}): Promise<ServerProcess> {
      const server = env.spawn(options);
      await server.initialize(options.initialize ?? {});
      return server;
    },
  };
  return env;
}

/** Whether anything accepts connections at `url` (a freed callback port refuses them). */
export async function isListening(url: string): Promise<boolean> {
  try {
    await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return true;
  } catch {
    return false;
  }
}

/** The callback server's origin of a browser login, from its authorize URL. */
export function callbackOrigin(authUrl: string): string {
  return new URL(new URL(authUrl).searchParams.get('redirect_uri')!).origin;
}
