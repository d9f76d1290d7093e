import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { machineGraph, statePaths, VIZ_MACHINES } from './machines.js';
import { allTypes, bundle, protocolCatalog, standalone } from './protocol.js';
import { renderTypescript } from './typescript.js';

/** The verbs this module serves, as the reference names them. */
export const SCHEMA_VERBS = ['generate-json-schema', 'generate-ts'] as const;
export type SchemaVerb = (typeof SCHEMA_VERBS)[number];

const USAGE = `Usage: codex-account-server generate-json-schema --out DIR
       codex-account-server generate-ts --out DIR

generate-json-schema  one JSON Schema (draft 2020-12) per params, result, notification and
                      server request, the envelopes, a bundle, index.json, and each machine's
                      states and transitions under machines/
generate-ts           protocol.ts: the same types as TypeScript declarations
`;

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;

/** Writes the JSON Schemas; returns the files written, relative to `dir`. */
export function writeJsonSchemas(dir: string): string[] {
  const catalog = protocolCatalog();
  const files: Record<string, unknown> = {};
  for (const type of allTypes(catalog)) files[`${type.name}.json`] = standalone(catalog, type);
  files['codex_account_server_protocol.schemas.json'] = bundle(catalog);
  const machines: Record<string, string> = {};
  for (const { file, machine } of VIZ_MACHINES) {
    machines[machine.id] = `machines/${file}.json`;
    files[`machines/${file}.json`] = machineGraph(machine);
  }
  files['index.json'] = {
    requests: Object.fromEntries(catalog.requests.map((r) => [r.method, { params: `${r.params.name}.json`, result: `${r.result.name}.json` }])),
    notifications: Object.fromEntries(catalog.notifications.map((n) => [n.method, { params: `${n.params.name}.json` }])),
    serverRequests: Object.fromEntries(catalog.serverRequests.map((r) => [r.method, { params: `${r.params.name}.json`, result: `${r.result.name}.json` }])),
    envelopes: Object.fromEntries(catalog.envelopes.map((e) => [e.name, `${e.name}.json`])),
    machines,
  };
  mkdirSync(join(dir, 'machines'), { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), json(value));
  return Object.keys(files);
}

/** Writes protocol.ts; returns the files written, relative to `dir`. */
export function writeTypescript(dir: string): string[] {
  const machines = Object.fromEntries(VIZ_MACHINES.map(({ machine }) => [machine.id, statePaths(machine)]));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'protocol.ts'), renderTypescript(protocolCatalog(), machines));
  return ['protocol.ts'];
}

/**
 * `generate-json-schema --out DIR` and `generate-ts --out DIR` (the
 * reference's verbs; its `--experimental` is accepted: this server's
 * additions are always included). Returns the exit code.
 */
export function runSchemaCommand(args: readonly string[], out: (text: string) => void, err: (text: string) => void): number {
  const [verb, ...rest] = args as [SchemaVerb, ...string[]];
  let dir: string | null = null;
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === '--out' || arg === '-o') dir = rest[++i] ?? null;
    else if (arg.startsWith('--out=')) dir = arg.slice('--out='.length);
    else if (arg === '--experimental') continue;
    else if (arg === '--help' || arg === '-h') {
      out(USAGE);
      return 0;
    } else {
      err(`codex-account-server ${verb}: unexpected argument ${JSON.stringify(arg)}\n${USAGE}`);
      return 2;
    }
  }
  if (!dir) {
    err(`codex-account-server ${verb}: --out DIR is required\n${USAGE}`);
    return 2;
  }
  const target = resolve(dir);
  try {
    const written = verb === 'generate-ts' ? writeTypescript(target) : writeJsonSchemas(target);
    err(`codex-account-server: wrote ${written.length} file${written.length === 1 ? '' : 's'} to ${target}\n`);
    return 0;
  } catch (error) {
    err(`codex-account-server ${verb}: ${(error as Error).message}\n`);
    return 1;
  }
}
