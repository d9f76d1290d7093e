import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { METHODS, NOTIFICATIONS } from '../../src/protocol/methods.js';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { chatgptJwt } from '../helpers/jwt.js';
import { BIN, ServerProcess, type Wire } from '../helpers/server-process.js';

const run = promisify(execFile);

/** Every message of one end-to-end run, with the method of each request the client sent (by id). */
interface Capture {
  sent: Array<Record<string, unknown>>;
  received: Wire[];
  methodOf: Map<unknown, string>;
  /** Our answers to the server's requests. */
  answers: Array<{ id: unknown; result: unknown }>;
}

function capture(s: ServerProcess, sent: Array<Record<string, unknown>>): Capture {
  const methodOf = new Map<unknown, string>();
  for (const m of sent) if ('id' in m && typeof m.method === 'string') methodOf.set(m.id, m.method);
  return { sent, received: [...s.messages], methodOf, answers: [] };
}

/** A server that records what it was sent, so the requests can be checked too. */
function recording(s: ServerProcess) {
  const sent: Array<Record<string, unknown>> = [];
  const original = s.send.bind(s);
  s.send = (message: object) => {
    sent.push(message as Record<string, unknown>);
    original(message);
  };
  return sent;
}

describe('generate-json-schema and generate-ts', { timeout: 60_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'cas-schema-'));
  const jsonDir = join(out, 'json');
  const tsDir = join(out, 'ts');
  let ajv: Ajv2020;
  let index: any;
  const runs: Capture[] = [];
  let backend: FakeBackend;

  const schema = (file: string): ValidateFunction => {
    const document = JSON.parse(readFileSync(join(jsonDir, file), 'utf8'));
    return ajv.getSchema(document.title) ?? (ajv.addSchema(document, document.title), ajv.getSchema(document.title)!);
  };

  beforeAll(async () => {
    await run(process.execPath, [BIN, 'generate-json-schema', '--out', jsonDir]);
    await run(process.execPath, [BIN, 'generate-ts', '--out', tsDir]);
    ajv = new Ajv2020({ strict: true, allErrors: true });
    index = JSON.parse(readFileSync(join(jsonDir, 'index.json'), 'utf8'));

    // Run 1: a config warning, and a request before initialize.
    {
      const s = ServerProcess.start({ config: 'forced_login_method = "password"\n' });
      const sent = recording(s);
      try {
        await s.request('account/read', {});
        await s.initialize();
        await s.notification('configWarning');
        runs.push(capture(s, sent));
      } finally {
        s.kill();
      }
    }

    // Run 2: logins of every kind, errors, notifications, and the server asking the host for tokens.
    backend = await FakeBackend.start();
    backend.on('/backend-api/wham/accounts/check', accountsCheck([{ id: 'ws-1', name: 'Acme', origin: backend.origin }]));
    let usageCalls = 0;
    backend.on('/backend-api/wham/usage', () =>
      ++usageCalls === 1
        ? { status: 401, json: { detail: 'token expired' } }
        : {
            json: {
              plan_type: 'plus',
              rate_limit: { primary_window: { used_percent: 12, limit_window_seconds: 18000, reset_at: 1_780_000_000 }, secondary_window: null },
              credits: { has_credits: true, unlimited: false, balance: '3.00' },
            },
          },
    );
    const s = ServerProcess.start({
      config: `chatgpt_base_url = "${backend.baseUrl}"\n`,
      env: { CODEX_ACCOUNT_SERVER_LOGIN_PORTS: '0', CODEX_APP_SERVER_LOGIN_ISSUER: 'http://127.0.0.1:9' },
    });
    const sent = recording(s);
    try {
      await s.initialize({ capabilities: { experimentalApi: true, stateNotifications: true } });
      await s.request('account/state/read', {});
      await s.request('getAuthStatus', {});
      await s.request('account/read', {});
      await s.request('account/rateLimits/read', {});
      await s.request('account/login/start', { type: 'apiKey', apiKey: 'sk-schema-test-000111' });
      await s.request('getAuthStatus', { includeToken: true });
      await s.request('account/login/start', { type: 'nope' });
      await s.request('no/such/method', {});
      await s.request('account/login/cancel', { loginId: '11111111-2222-4333-8444-555555555555' });
      const browser = await s.request('account/login/start', { type: 'chatgpt' });
      await s.request('account/login/complete', { loginId: browser.result.loginId, redirectUrl: 'http://localhost/auth/callback?state=wrong&code=c' });
      await s.request('account/login/cancel', { loginId: browser.result.loginId });
      await s.notification('account/login/completed');
      await s.request('account/logout', {});
      const token = chatgptJwt({ accountId: 'ws-1', planType: 'plus', email: 'a@b.c', userId: 'user-1' });
      await s.request('account/login/start', { type: 'chatgptAuthTokens', accessToken: token, chatgptAccountId: 'ws-1', chatgptPlanType: 'plus' });
      await s.waitFor((m) => m.method === 'account/updated' && m.params.authMode === 'chatgptAuthTokens');
      await s.request('account/read', {});
      s.send({ id: 'limits', method: 'account/rateLimits/read', params: {} });
      const ask = await s.waitFor((m) => m.method === 'account/chatgptAuthTokens/refresh');
      const answer = { id: ask.id, result: { accessToken: chatgptJwt({ accountId: 'ws-1', planType: 'plus' }), chatgptAccountId: 'ws-1', chatgptPlanType: 'plus' } };
      s.send(answer);
      await s.response('limits');
      await s.request('account/state/read');
      const c = capture(s, sent);
      c.answers.push(answer);
      runs.push(c);
    } finally {
      s.kill();
    }
  });

  afterAll(async () => backend?.stop());

  it('exports params and result of every method, every notification and the server request, listed in index.json', () => {
    expect(Object.keys(index.requests)).toEqual(Object.keys(METHODS));
    expect(Object.keys(index.notifications).sort()).toEqual(Object.values(NOTIFICATIONS).sort());
    expect(Object.keys(index.serverRequests)).toEqual(['account/chatgptAuthTokens/refresh']);
    for (const entry of [...Object.values(index.requests), ...Object.values(index.serverRequests)] as any[]) {
      expect(schema(entry.params)).toBeTypeOf('function');
      expect(schema(entry.result)).toBeTypeOf('function');
    }
    for (const entry of Object.values(index.notifications) as any[]) expect(schema(entry.params)).toBeTypeOf('function');
    const bundle = JSON.parse(readFileSync(join(jsonDir, 'codex_account_server_protocol.schemas.json'), 'utf8'));
    expect(Object.keys(bundle.$defs)).toEqual(expect.arrayContaining(['AccountStateReadResponse', 'StateValue', 'ClientRequest', 'ServerNotification']));
  });

  it('exports each machine\'s states and transitions as visualizations/ holds them', () => {
    for (const [id, file] of Object.entries(index.machines as Record<string, string>)) {
      const exported = readFileSync(join(jsonDir, file), 'utf8');
      expect(exported).toBe(readFileSync(new URL(`../../visualizations/${file.replace(/^machines\//, '')}`, import.meta.url), 'utf8'));
      expect(JSON.parse(exported).id).toBe(id);
    }
  });

  it('validates every message the server wrote in the end-to-end runs against the exported schema', () => {
    const kinds = new Set<string>();
    let checked = 0;
    for (const c of runs) {
      for (const m of c.received) {
        let validate: ValidateFunction;
        let value: unknown = m;
        if (typeof m.method === 'string' && 'id' in m) {
          validate = schema(index.envelopes.ServerRequest);
          kinds.add(`server request ${m.method}`);
        } else if (typeof m.method === 'string') {
          validate = schema(index.envelopes.ServerNotification);
          kinds.add(`notification ${m.method}`);
        } else if ('error' in m) {
          validate = schema(index.envelopes.ErrorResponse);
          kinds.add('error');
        } else {
          const method = c.methodOf.get(m.id);
          expect(method, `a response to an unknown request ${JSON.stringify(m.id)}`).toBeDefined();
          validate = schema(index.requests[method!].result);
          value = m.result;
          kinds.add(`result ${method}`);
        }
        expect(validate(value), `${JSON.stringify(m).slice(0, 300)}: ${ajv.errorsText(validate.errors)}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
    expect([...kinds].sort()).toEqual(
      expect.arrayContaining([
        'error',
        'notification account/login/completed',
        'notification account/state/changed',
        'notification account/updated',
        'notification configWarning',
        'result account/login/cancel',
        'result account/login/start',
        'result account/logout',
        'result account/rateLimits/read',
        'result account/read',
        'result account/state/read',
        'result getAuthStatus',
        'result initialize',
        'server request account/chatgptAuthTokens/refresh',
      ]),
    );
  });

  it('validates the requests the client sent and its answer to the server\'s request', () => {
    const request = schema(index.envelopes.ClientRequest);
    const valid = runs.flatMap((c) => c.sent).filter((m) => 'method' in m && m.method !== 'no/such/method' && (m.params as any)?.type !== 'nope');
    expect(valid.length).toBeGreaterThan(15);
    for (const m of valid) expect(request(m), `${JSON.stringify(m)}: ${ajv.errorsText(request.errors)}`).toBe(true);
    const answer = schema(index.serverRequests['account/chatgptAuthTokens/refresh'].result);
    for (const a of runs.flatMap((c) => c.answers)) expect(answer(a.result)).toBe(true);
  });

  it('rejects what the server must never send: a result with a field too many or a wrong type', () => {
    const account = schema(index.requests['account/read'].result);
    expect(account({ account: null, userId: null, requiresOpenaiAuth: true, workspaceRouting: null })).toBe(true);
    expect(account({ account: null, userId: null, requiresOpenaiAuth: true, workspaceRouting: null, token: 'x' })).toBe(false);
    expect(account({ account: { type: 'chatgpt', email: 1, planType: null, workspaceName: null }, userId: null, requiresOpenaiAuth: true, workspaceRouting: null })).toBe(false);
    expect(schema(index.envelopes.ClientRequest)({ id: 1, method: 'account/login/start', params: { type: 'nope' } })).toBe(false);
  });

  it('writes TypeScript declarations that type-check the captured messages and refuse a wrong one', () => {
    const examples = runs.flatMap((c) =>
      c.received
        .filter((m) => 'result' in m && c.methodOf.has(m.id))
        .map((m, i) => `export const r${runs.indexOf(c)}_${i}: ClientRequestMap[${JSON.stringify(c.methodOf.get(m.id))}]['result'] = ${JSON.stringify(m.result)};`),
    );
    const notifications = runs.flatMap((c) =>
      c.received
        .filter((m) => typeof m.method === 'string' && !('id' in m))
        .map((m, i) => `export const n${runs.indexOf(c)}_${i}: ServerNotificationMap[${JSON.stringify(m.method)}]['params'] = ${JSON.stringify(m.params)};`),
    );
    const good = join(tsDir, 'examples.ts');
    writeFileSync(good, [`import type { ClientRequestMap, ServerNotificationMap, AccountStatePath } from './protocol.js';`, ...examples, ...notifications, `export const p: AccountStatePath = 'login.chatgptPending.waiting';`].join('\n'));
    const bad = join(tsDir, 'wrong.ts');
    writeFileSync(bad, `import type { ClientRequestMap } from './protocol.js';\nexport const x: ClientRequestMap['account/state/read']['result']['busy'] = 'yes';\n`);
    const diagnostics = (file: string) => {
      const program = ts.createProgram([file], { strict: true, noEmit: true, module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022, types: [] });
      return ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    };
    expect(examples.length).toBeGreaterThanOrEqual(12);
    expect(diagnostics(good)).toEqual([]);
    expect(diagnostics(bad).join('\n')).toMatch(/not assignable to type 'boolean'/);
  });

  it('says what it wrote on stderr, keeps stdout empty, and refuses a missing --out', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cas-schema-cli-'));
    const ok = await run(process.execPath, [BIN, 'generate-json-schema', '--out', dir]);
    expect(ok.stdout).toBe('');
    expect(ok.stderr).toMatch(/wrote \d+ files to /);
    const missing = await run(process.execPath, [BIN, 'generate-ts']).catch((error) => error);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--out DIR is required');
  });
});
