import { HOST_REFRESH_TIMEOUT_RANGE } from '../protocol/limits.js';
import { buildUserAgent, type PlatformInfo } from '../user-agent.js';
import { parseLine, type JsonRpcId } from './ndjson.js';

/**
 * The `initialize` answer (SPEC §2). It depends on the client's name and
 * version, the platform, the environment and `CODEX_HOME`, never on the
 * credentials or `config.toml`: the start-up stage (src/cli.ts) can give it
 * before the statecharts exist, and the server (src/rpc/server.ts) gives the
 * same one.
 */
export function initializeResult(
  clientInfo: { name: string; version: string },
  codexHome: string,
  platform: PlatformInfo,
  env: NodeJS.ProcessEnv,
) {
  return {
    userAgent: buildUserAgent(clientInfo, platform, env),
    codexHome,
    platformFamily: platform.family,
    platformOs: platform.os,
  };
}

/** Params the start-up stage accepted (a subset of what `InitializeParamsSchema` accepts). */
export interface PlainInitializeParams {
  clientInfo: { name: string; version: string; title?: string | null };
  capabilities?: Record<string, unknown> | null;
}

const isMap = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isOptional = (value: unknown, check: (v: unknown) => boolean, nullable = false) =>
  value === undefined || (nullable && value === null) || check(value);
const isString = (value: unknown) => typeof value === 'string';
const isBoolean = (value: unknown) => typeof value === 'boolean';

/**
 * A line that is an `initialize` request whose params are certainly valid
 * (every field of SPEC §2 of the right type, unknown ones ignored as the
 * schema ignores them), or `null`. Deliberately narrower than
 * `InitializeParamsSchema` and without zod: anything else (missing or bad
 * params, a sequence for params, an out-of-range timeout) is left to the full
 * server, which words the error. test/unit/plain-initialize.test.ts checks
 * that the schema accepts whatever this accepts.
 */
export function plainInitializeRequest(line: string): { id: JsonRpcId; params: PlainInitializeParams } | null {
  const message = parseLine(line);
  if (message.kind !== 'request' || message.method !== 'initialize') return null;
  const params = message.params;
  if (!isMap(params)) return null;
  const { clientInfo, capabilities } = params;
  if (!isMap(clientInfo) || !isString(clientInfo.name) || !isString(clientInfo.version)) return null;
  if (!isOptional(clientInfo.title, isString, true)) return null;
  if (capabilities !== undefined && capabilities !== null) {
    if (!isMap(capabilities)) return null;
    const { experimentalApi, requestAttestation, stateNotifications, optOutNotificationMethods, chatgptAuthTokensRefreshTimeoutMs } =
      capabilities;
    if (![experimentalApi, requestAttestation, stateNotifications].every((flag) => isOptional(flag, isBoolean))) return null;
    const isNames = (v: unknown) => Array.isArray(v) && v.every(isString);
    if (!isOptional(optOutNotificationMethods, isNames, true)) return null;
    const { min, max } = HOST_REFRESH_TIMEOUT_RANGE;
    const isTimeout = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
    if (!isOptional(chatgptAuthTokensRefreshTimeoutMs, isTimeout, true)) return null;
  }
  return { id: message.id, params: params as unknown as PlainInitializeParams };
}
