import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import * as z from 'zod/mini';
import type { ModelProviders, Policy } from '../machines/account-types.js';
import { resolveCodexHome } from './codex-home.js';
import { parseLogLevel, type LogLevel } from './log.js';
import { HOST_REFRESH_TIMEOUT_RANGE } from './protocol/schemas.js';
import { expecting, serdeMessage, str } from './protocol/serde.js';

export type CredentialsStore = 'file' | 'keyring' | 'auto' | 'ephemeral';

/** 1-based line/column positions, end inclusive (SPEC §4). */
/** Params of the `configWarning` notification (defined with the other notifications). */
export type ConfigWarning = import('./protocol/results.js').ConfigWarningNotification;
export type TextRange = ConfigWarning['range'];

/** Everything the server needs from the environment and `config.toml`; frozen. */
export interface Config {
  codexHome: string;
  configPath: string;
  authPath: string;
  policy: Policy;
  /** Always ends with `/`; `wham/…` paths are appended. */
  chatgptBaseUrl: string;
  credentialsStore: CredentialsStore;
  issuer: string;
  refreshTokenUrl: string;
  revokeTokenUrl: string;
  /** Deadline for each backend HTTP call. */
  httpTimeoutMs: number;
  /**
   * Callback ports of the browser login, tried in order (SPEC §6.1: 1455, then 1457).
   * `CODEX_ACCOUNT_SERVER_LOGIN_PORTS` overrides them (tests run in parallel on their own ports;
   * `0` asks the OS for a free one).
   */
  loginPorts: readonly number[];
  /** How long a started ChatGPT login may wait for the user (`CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS`). */
  loginTimeoutMs: number;
  /**
   * How long to wait for the host's answer to `account/chatgptAuthTokens/refresh` unless
   * `initialize` says otherwise (`CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS`; default 10 s, as the reference).
   */
  hostRefreshTimeoutMs: number;
  /** Deadline for each OS keyring (Secret Service) call. */
  keyringTimeoutMs: number;
  /**
   * `CODEX_ACCOUNT_SERVER_BACKEND_DEADLINE_MS`: replaces every per-method deadline of the
   * account surface (SPEC-account-surface §12.4: 1 s to 60 s); `null` keeps the reference's.
   */
  backendDeadlineMs: number | null;
  /** `model_provider` and `[model_providers.<id>]`, for the gateway-OAuth answers (§18). */
  modelProviders: ModelProviders;
  logLevel: LogLevel;
  warning: ConfigWarning | null;
}

export const DEFAULT_CHATGPT_BASE_URL = 'https://chatgpt.com/backend-api/';
export const INVALID_CONFIG_SUMMARY = 'Invalid configuration; using defaults.';

/** The keys of `config.toml` this server reads; all others are ignored. */
export const ConfigTomlSchema = z.object({
  forced_login_method: z.optional(z.enum(['chatgpt', 'api'], expecting('enum ForcedLoginMethod'))),
  forced_chatgpt_workspace_id: z.optional(
    z.union([str(), z.array(str(), expecting('a sequence'))], expecting('a string or a sequence of strings')),
  ),
  chatgpt_base_url: z.optional(str()),
  cli_auth_credentials_store: z.optional(
    z.enum(['file', 'keyring', 'auto', 'ephemeral'], expecting('enum AuthCredentialsStoreMode')),
  ),
  // Read only as far as the gateway-OAuth answers need (SPEC-account-surface §18); other
  // provider keys are model-provider business, out of this server's scope.
  model_provider: z.optional(str()),
  model_providers: z.optional(
    z.record(z.string(), z.looseObject({ name: z.optional(str()), gateway_oauth: z.optional(z.unknown()) }), expecting('a map')),
  ),
});

/** The providers config.toml names: `openai` unless `model_provider` says otherwise. */
function modelProvidersOf(values: ConfigToml): ModelProviders {
  return {
    selected: values.model_provider ?? 'openai',
    configured: Object.entries(values.model_providers ?? {}).map(([id, p]) => ({
      id,
      name: p.name ?? id,
      gatewayOAuth: p.gateway_oauth !== undefined,
    })),
  };
}
export type ConfigToml = z.infer<typeof ConfigTomlSchema>;

/** Where a top-level `key = value` sits in the file, for the warning's range. */
export function locateValue(text: string, key: string): TextRange | null {
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*\[/.test(line)) break; // values under a table are not top-level keys
    const match = new RegExp(`^(\\s*(?:${key}|"${key}"|'${key}')\\s*=\\s*)`).exec(line);
    if (!match) continue;
    const startIndex = match[1]!.length;
    const rest = line.slice(startIndex).replace(/\r$/, '');
    let length: number;
    const quote = rest[0];
    if (quote === '"' || quote === "'") {
      const close = rest.indexOf(quote, 1);
      length = close === -1 ? rest.length : close + 1;
    } else {
      length = rest.replace(/\s*(#.*)?$/, '').length;
    }
    return {
      start: { line: i + 1, column: startIndex + 1 },
      end: { line: i + 1, column: startIndex + Math.max(length, 1) },
    };
  }
  return null;
}

interface ParsedToml {
  values: ConfigToml;
  warning: ConfigWarning | null;
}

/** Reads and validates `config.toml`. An invalid file yields defaults plus a warning (SPEC §4). */
export function readConfigToml(configPath: string, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ParsedToml {
  let text: string;
  try {
    text = read(configPath);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return { values: {}, warning: null };
    return { values: {}, warning: warningAt(configPath, 1, 1, (error as Error).message) };
  }
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (error) {
    if (error instanceof TomlError) {
      const first = error.message.split('\n')[0] ?? 'invalid TOML';
      return { values: {}, warning: warningAt(configPath, error.line, error.column, first) };
    }
    throw error;
  }
  const result = ConfigTomlSchema.safeParse(raw, { reportInput: true });
  if (result.success) return { values: result.data, warning: null };
  const issue = result.error.issues[0];
  const key = String(issue?.path[0] ?? '');
  const range = locateValue(text, key) ?? { start: { line: 1, column: 1 }, end: { line: 1, column: 1 } };
  return {
    values: {},
    warning: {
      summary: INVALID_CONFIG_SUMMARY,
      details: `${configPath}:${range.start.line}:${range.start.column}: ${serdeMessage(result.error)}`,
      path: configPath,
      range,
    },
  };
}

function warningAt(path: string, line: number, column: number, message: string): ConfigWarning {
  return {
    summary: INVALID_CONFIG_SUMMARY,
    details: `${path}:${line}:${column}: ${message}`,
    path,
    range: { start: { line, column }, end: { line, column } },
  };
}

function withTrailingSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}

/** `1455,1457` → `[1455, 1457]`; anything unparsable falls back to the reference's ports. */
export function parseLoginPorts(value: string | undefined): readonly number[] {
  const fallback = Object.freeze([1455, 1457]);
  if (!value) return fallback;
  const ports = value.split(',').map((p) => p.trim()).filter((p) => p !== '').map(Number);
  const valid = ports.length > 0 && ports.every((p) => Number.isInteger(p) && p >= 0 && p <= 65_535);
  return valid ? Object.freeze(ports) : fallback;
}

function positiveInt(value: string | undefined, fallback: number): number {
  const n = Number(value);
  return Number.isInteger(n) && n > 0 ? n : fallback;
}

/** An integer within `range`, else `fallback`. */
function boundedInt(value: string | undefined, range: { min: number; max: number }, fallback: number): number {
  const n = Number(value);
  return value !== undefined && value !== '' && Number.isInteger(n) && n >= range.min && n <= range.max ? n : fallback;
}

/**
 * Builds the configuration from the environment (SPEC §4) and `config.toml`.
 * `OPENAI_API_KEY` is deliberately not read: it logs nobody in. `codexHome`:
 * as the start-up stage already resolved it for its `initialize` answer.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, codexHome: string = resolveCodexHome(env)): Config {
  const configPath = join(codexHome, 'config.toml');
  const { values, warning } = readConfigToml(configPath);
  const forcedIds = values.forced_chatgpt_workspace_id;
  const issuer = (env.CODEX_APP_SERVER_LOGIN_ISSUER || 'https://auth.openai.com').replace(/\/+$/, '');
  return Object.freeze({
    codexHome,
    configPath,
    authPath: join(codexHome, 'auth.json'),
    policy: Object.freeze({
      forcedLoginMethod: values.forced_login_method ?? null,
      forcedWorkspaceIds: forcedIds === undefined ? null : Object.freeze(typeof forcedIds === 'string' ? [forcedIds] : forcedIds),
    }),
    chatgptBaseUrl: withTrailingSlash(values.chatgpt_base_url ?? DEFAULT_CHATGPT_BASE_URL),
    credentialsStore: values.cli_auth_credentials_store ?? 'file',
    issuer,
    refreshTokenUrl: env.CODEX_REFRESH_TOKEN_URL_OVERRIDE || 'https://auth.openai.com/oauth/token',
    revokeTokenUrl: env.CODEX_REVOKE_TOKEN_URL_OVERRIDE || 'https://auth.openai.com/oauth/revoke',
    httpTimeoutMs: positiveInt(env.CODEX_ACCOUNT_SERVER_HTTP_TIMEOUT_MS, 10_000),
    loginPorts: parseLoginPorts(env.CODEX_ACCOUNT_SERVER_LOGIN_PORTS),
    // The reference abandons a browser login after 10 minutes.
    loginTimeoutMs: positiveInt(env.CODEX_ACCOUNT_SERVER_LOGIN_TIMEOUT_MS, 600_000),
    hostRefreshTimeoutMs: boundedInt(env.CODEX_ACCOUNT_SERVER_HOST_REFRESH_TIMEOUT_MS, HOST_REFRESH_TIMEOUT_RANGE, 10_000),
    // Generous: on a desktop a locked collection shows an unlock prompt the user has to answer.
    keyringTimeoutMs: positiveInt(env.CODEX_ACCOUNT_SERVER_KEYRING_TIMEOUT_MS, 30_000),
    backendDeadlineMs: env.CODEX_ACCOUNT_SERVER_BACKEND_DEADLINE_MS ? positiveInt(env.CODEX_ACCOUNT_SERVER_BACKEND_DEADLINE_MS, 0) || null : null,
    modelProviders: modelProvidersOf(values),
    logLevel: parseLogLevel(env.CODEX_ACCOUNT_SERVER_LOG),
    warning,
  });
}
