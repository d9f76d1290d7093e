import fc from 'fast-check';
import type * as z from 'zod/mini';
import { METHODS, type MethodName } from '../../src/protocol/methods.js';

/**
 * Wrong params for every method, derived from the protocol's own zod schemas:
 * every field (at any depth, in every variant of a tagged union) is replaced
 * by a value its schema rejects, or removed when it is required.
 */

type Def = {
  type: string;
  shape?: Record<string, z.ZodMiniType>;
  innerType?: z.ZodMiniType;
  options?: z.ZodMiniType[];
  discriminator?: string;
  values?: unknown[];
};
const defOf = (schema: z.ZodMiniType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** One place in a method's params where a wrong value can go. */
export interface FieldSlot {
  method: MethodName;
  /** A valid params object this slot belongs to (one per union variant). */
  base: Record<string, unknown>;
  /** Path of the field inside `base`. */
  path: string[];
  /** The field's own schema (with its optional/nullable wrappers). */
  schema: z.ZodMiniType;
  /** Absent is an error (not wrapped in `optional`). */
  required: boolean;
}

/**
 * Valid params per method (and per variant of a tagged union), used as the
 * base a single field is broken in, and as the valid requests mixed in.
 * Secret-looking fields are filled in by the caller.
 */
export function validBases(secret: string): Record<MethodName, Array<Record<string, unknown>>> {
  return {
    initialize: [
      {
        clientInfo: { name: 'fuzz-host', title: null, version: '1.0.0' },
        capabilities: { experimentalApi: true, requestAttestation: false, optOutNotificationMethods: ['x'] },
      },
    ],
    'account/login/start': [
      { type: 'apiKey', apiKey: secret },
      { type: 'chatgpt', codexStreamlinedLogin: false, useHostedLoginSuccessPage: true, appBrand: 'codex' },
      { type: 'chatgptDeviceCode' },
      { type: 'chatgptAuthTokens', accessToken: secret, chatgptAccountId: 'ws-1', chatgptPlanType: 'plus' },
    ],
    'account/login/cancel': [{ loginId: '00000000-0000-4000-8000-000000000000' }],
    'account/login/complete': [{ loginId: '00000000-0000-4000-8000-000000000000', redirectUrl: secret }],
    'account/logout': [{}],
    'account/rateLimits/read': [{ supportsLunaReserve: true, excludeResetCreditDetails: false }],
    'account/read': [{ refreshToken: false }],
    getAuthStatus: [{ includeToken: true, refreshToken: false }],
    'account/state/read': [{}],
    'account/gatewayOAuth/read': [{ modelProvider: null }],
    'account/gatewayOAuth/login': [{ modelProvider: null, deviceAuth: false }],
    'account/gatewayOAuth/cancel': [{}],
    'account/securitySetup/read': [{}],
    'account/rateLimitResetCredit/consume': [{ idempotencyKey: 'k-1', creditId: null }],
    'account/usage/read': [{ threadId: null }],
    'account/workspaceMessages/read': [{}],
    'account/sendAddCreditsNudgeEmail': [{ creditType: 'credits' }],
  };
}

function isOptional(schema: z.ZodMiniType): boolean {
  return defOf(schema).type === 'optional';
}

/** Unwraps optional/nullable to the object or union underneath, if any. */
function core(schema: z.ZodMiniType): z.ZodMiniType {
  let s = schema;
  while (defOf(s).innerType) s = defOf(s).innerType!;
  return s;
}

function slotsOf(method: MethodName, base: Record<string, unknown>, schema: z.ZodMiniType, path: string[], out: FieldSlot[]): void {
  const def = defOf(core(schema));
  if (def.type === 'object') {
    for (const [key, field] of Object.entries(def.shape ?? {})) {
      out.push({ method, base, path: [...path, key], schema: field, required: !isOptional(field) });
      const inner = defOf(core(field));
      if (inner.type === 'object') slotsOf(method, base, field, [...path, key], out);
    }
  }
}

/** Every field slot of every method, union variants included. */
export function fieldSlots(secret: string): FieldSlot[] {
  const out: FieldSlot[] = [];
  const bases = validBases(secret);
  for (const method of Object.keys(METHODS) as MethodName[]) {
    const schema = METHODS[method].schema as z.ZodMiniType;
    const def = defOf(schema);
    for (const base of bases[method]) {
      if (def.type === 'union' && def.options) {
        // The variant this base belongs to: the one whose tag literal matches.
        const tag = base[def.discriminator!];
        const variant = def.options.find((o) => (defOf(defOf(o).shape![def.discriminator!]!).values ?? []).includes(tag))!;
        slotsOf(method, base, variant, [], out);
      } else {
        slotsOf(method, base, schema, [], out);
      }
    }
  }
  return out;
}

/**
 * What the server's `validate` accepts (src/rpc/server.ts): `null` reads as
 * absent, absent is `{}` for optional params, and an array fills a struct's
 * fields in order. Used to make sure a "wrong" line can never log in or out.
 */
export function serverAccepts(method: MethodName, params: unknown): boolean {
  const spec = METHODS[method];
  let p = params === null ? undefined : params;
  if (p === undefined) {
    if (spec.params === 'required') return false;
    p = {};
  }
  const schema = spec.schema as z.ZodMiniType;
  if (Array.isArray(p) && defOf(schema).type === 'object') {
    const keys = Object.keys(defOf(schema).shape ?? {});
    p = Object.fromEntries(keys.map((k, i) => [k, (p as unknown[])[i]]).filter(([, v]) => v !== undefined));
  }
  return schema.safeParse(p).success;
}

function setPath(base: Record<string, unknown>, path: string[], value: unknown, remove: boolean): Record<string, unknown> {
  const copy = structuredClone(base);
  let target: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) {
    const next = target[key];
    target[key] = typeof next === 'object' && next !== null && !Array.isArray(next) ? { ...(next as object) } : {};
    target = target[key] as Record<string, unknown>;
  }
  const last = path.at(-1)!;
  if (remove) delete target[last];
  else target[last] = value;
  return copy;
}

/** Any JSON value, including ones that look like the right type but are not (`"true"`, `1`, `[]`). */
export function anyJsonArb(secretArb: fc.Arbitrary<string>): fc.Arbitrary<unknown> {
  const leaf = fc.oneof(
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 12 }),
    fc.constantFrom('', 'true', 'false', '0', 'null', 'apiKey', 'chatgpt', 'codex', 'CODEX', 'ApiKey', '__proto__'),
    secretArb,
  );
  return fc.oneof(
    { arbitrary: leaf, weight: 6 },
    { arbitrary: fc.array(leaf, { maxLength: 3 }), weight: 1 },
    { arbitrary: fc.dictionary(fc.string({ maxLength: 6 }), leaf, { maxKeys: 3 }), weight: 1 },
  );
}

/** Params for `method` that the server must reject: one field wrong or missing, or params of the wrong type. */
export function wrongParamsArb(method: MethodName, slots: FieldSlot[], secretArb: fc.Arbitrary<string>): fc.Arbitrary<{ params: unknown; absent: boolean; what: string }> {
  const mine = slots.filter((s) => s.method === method);
  const options: Array<fc.Arbitrary<{ params: unknown; absent: boolean; what: string }>> = [];
  for (const slot of mine) {
    options.push(
      anyJsonArb(secretArb)
        .filter((v) => !slot.schema.safeParse(v).success)
        .map((v) => ({ params: setPath(slot.base, slot.path, v, false), absent: false, what: `${slot.path.join('.')} of a wrong type` })),
    );
    if (slot.required) {
      options.push(fc.constant({ params: setPath(slot.base, slot.path, undefined, true), absent: false, what: `${slot.path.join('.')} missing` }));
    }
  }
  // Params of the wrong type as a whole (arrays only where they cannot fill a struct positionally).
  options.push(
    fc.oneof(fc.string({ maxLength: 8 }), fc.integer(), fc.boolean(), fc.double({ noNaN: true, noDefaultInfinity: true }), secretArb).map((params) => ({
      params,
      absent: false,
      what: 'params of a wrong type',
    })),
  );
  if (METHODS[method].params === 'required') {
    options.push(fc.constantFrom({ params: undefined, absent: true, what: 'params absent' }, { params: null, absent: false, what: 'params null' }));
  }
  // The filter is the proof a fuzz line never logs in or out: the server parses with these very schemas.
  return fc
    .tuple(fc.oneof(...options), secretArb)
    .map(([o, secret]) => ({ ...o, params: replaceString(o.params, SECRET_PLACEHOLDER, secret) }))
    .filter(({ params, absent }) => !serverAccepts(method, absent ? undefined : params));
}

/** Stands for a secret in the bases; each generated line gets a fresh one. */
export const SECRET_PLACEHOLDER = 'sk-placeholder';

function replaceString(value: unknown, from: string, to: string): unknown {
  if (value === from) return to;
  if (Array.isArray(value)) return value.map((v) => replaceString(v, from, to));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, replaceString(v, from, to)]));
  }
  return value;
}
