import * as z from 'zod/mini';
import { METHODS, NOTIFICATIONS, SERVER_REQUESTS } from '../protocol/methods.js';
import { ErrorObjectSchema, NOTIFICATION_PARAMS, RESULTS, StateValueSchema } from '../protocol/results.js';
import { ChatgptAuthTokensRefreshParamsSchema, ChatgptAuthTokensRefreshResultSchema } from '../protocol/server-requests.js';

/** A JSON Schema document (draft 2020-12), as plain data. */
export type JsonSchema = { [key: string]: unknown };

const DRAFT = 'https://json-schema.org/draft/2020-12/schema';

/** `account/login/start` → `AccountLoginStart`, `getAuthStatus` → `GetAuthStatus`. */
export function typeName(method: string): string {
  return method
    .split('/')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

/** One exported type: its name, what it describes and its schema (without `$schema`; shared `$defs` hoisted). */
export interface ProtocolType {
  name: string;
  description: string;
  schema: JsonSchema;
}

export interface ProtocolCatalog {
  /** Params and result of every client request, in the order of `METHODS`. */
  requests: Array<{ method: string; params: ProtocolType; result: ProtocolType }>;
  notifications: Array<{ method: string; params: ProtocolType }>;
  /** Server → client requests (`account/chatgptAuthTokens/refresh`). */
  serverRequests: Array<{ method: string; params: ProtocolType; result: ProtocolType }>;
  /** Types several schemas refer to (`StateValue`, recursive), by name; referenced as `#/$defs/<name>`. */
  shared: Record<string, JsonSchema>;
  /** Envelopes: `ClientRequest`, `ServerNotification`, `ServerRequest`, `ErrorResponse`. */
  envelopes: ProtocolType[];
}

/**
 * Every message of the protocol as JSON Schema, from the zod schemas
 * (`z.toJSONSchema`): params as the server accepts them (`io: 'input'`:
 * unknown fields allowed, optional fields optional), results and
 * notifications as it sends them (no other fields).
 */
export function protocolCatalog(): ProtocolCatalog {
  const registry = z.registry<{ id?: string }>();
  registry.add(StateValueSchema, { id: 'StateValue' });
  const shared: Record<string, JsonSchema> = {};

  const convert = (schema: z.ZodMiniType, io: 'input' | 'output'): JsonSchema => {
    const json = z.toJSONSchema(schema, { io, metadata: registry, unrepresentable: 'any' }) as JsonSchema;
    delete json.$schema;
    const defs = json.$defs as Record<string, JsonSchema> | undefined;
    if (defs) {
      for (const [name, def] of Object.entries(defs)) shared[name] = def;
      delete json.$defs;
    }
    return json;
  };
  const type = (name: string, description: string, schema: z.ZodMiniType, io: 'input' | 'output'): ProtocolType => ({
    name,
    description,
    schema: convert(schema, io),
  });

  const requests = Object.entries(METHODS).map(([method, spec]) => ({
    method,
    params: type(`${typeName(method)}Params`, `Params of \`${method}\`.`, spec.schema, 'input'),
    result: type(`${typeName(method)}Response`, `Result of \`${method}\`.`, RESULTS[method as keyof typeof RESULTS], 'output'),
  }));
  const notificationMethods = Object.values(NOTIFICATIONS) as Array<keyof typeof NOTIFICATION_PARAMS>;
  const notifications = notificationMethods.map((method) => ({
    method,
    params: type(`${typeName(method)}Notification`, `Params of the \`${method}\` notification.`, NOTIFICATION_PARAMS[method], 'output'),
  }));
  const refresh = SERVER_REQUESTS.chatgptAuthTokensRefresh;
  const serverRequests = [
    {
      method: refresh,
      params: type(`${typeName(refresh)}Params`, `Params of the \`${refresh}\` request the server sends.`, ChatgptAuthTokensRefreshParamsSchema, 'output'),
      result: type(`${typeName(refresh)}Response`, `What the client answers to \`${refresh}\`.`, ChatgptAuthTokensRefreshResultSchema, 'input'),
    },
  ];

  const id = { anyOf: [{ type: 'string' }, { type: 'integer' }] };
  const ref = (t: ProtocolType) => ({ $ref: `#/$defs/${t.name}` });
  const envelopes: ProtocolType[] = [
    {
      name: 'ClientRequest',
      description: 'A request the client sends (one JSON object per line on stdin).',
      schema: {
        oneOf: requests.map((r) => ({
          type: 'object',
          properties: { id, method: { const: r.method }, params: METHODS[r.method as keyof typeof METHODS].params === 'optional' ? { anyOf: [ref(r.params), { type: 'null' }] } : ref(r.params) },
          required: METHODS[r.method as keyof typeof METHODS].params === 'optional' ? ['id', 'method'] : ['id', 'method', 'params'],
        })),
      },
    },
    {
      name: 'ServerNotification',
      description: 'A notification the server sends; `emittedAtMs` is when it was written.',
      schema: {
        oneOf: notifications.map((n) => ({
          type: 'object',
          properties: { method: { const: n.method }, params: ref(n.params), emittedAtMs: { type: 'number' } },
          required: ['method', 'params', 'emittedAtMs'],
          additionalProperties: false,
        })),
      },
    },
    {
      name: 'ServerRequest',
      description: 'A request the server sends to the client; ids are integers from 0.',
      schema: {
        oneOf: serverRequests.map((r) => ({
          type: 'object',
          properties: { id: { type: 'integer' }, method: { const: r.method }, params: ref(r.params) },
          required: ['id', 'method', 'params'],
          additionalProperties: false,
        })),
      },
    },
    {
      name: 'ErrorResponse',
      description: 'An error answer: the reference\'s code and message, plus `data.reason` and `data.recovery`.',
      schema: {
        type: 'object',
        properties: { id: { anyOf: [...id.anyOf, { type: 'null' }] }, error: convert(ErrorObjectSchema, 'output') },
        required: ['id', 'error'],
        additionalProperties: false,
      },
    },
  ];
  return { requests, notifications, serverRequests, shared, envelopes };
}

/** Every named type of the catalogue, envelopes last. */
export function allTypes(catalog: ProtocolCatalog): ProtocolType[] {
  return [
    ...catalog.requests.flatMap((r) => [r.params, r.result]),
    ...catalog.notifications.map((n) => n.params),
    ...catalog.serverRequests.flatMap((r) => [r.params, r.result]),
    ...catalog.envelopes,
  ];
}

/**
 * A standalone document for one type: its schema with every `$defs` it may
 * refer to (shared types, and for envelopes the named types they use).
 */
export function standalone(catalog: ProtocolCatalog, type: ProtocolType): JsonSchema {
  const defs: Record<string, JsonSchema> = { ...catalog.shared };
  for (const t of allTypes(catalog)) if (t !== type && !catalog.envelopes.includes(t)) defs[t.name] = t.schema;
  const text = JSON.stringify(type.schema);
  const used = Object.fromEntries(Object.entries(defs).filter(([name]) => text.includes(`"#/$defs/${name}"`) || name in catalog.shared));
  return { $schema: DRAFT, title: type.name, description: type.description, ...type.schema, $defs: used };
}

/** One document with every type under `$defs` (what `codex_account_server_protocol.schemas.json` holds). */
export function bundle(catalog: ProtocolCatalog): JsonSchema {
  const defs: Record<string, JsonSchema> = { ...catalog.shared };
  for (const t of allTypes(catalog)) defs[t.name] = { description: t.description, ...t.schema };
  return { $schema: DRAFT, title: 'CodexAccountServerProtocol', $defs: defs };
}
