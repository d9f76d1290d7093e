import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { accountsCheck, FakeBackend } from '../helpers/backend.js';
import { inspectUrls, SseReader } from '../helpers/inspect.js';
import { makeJwt } from '../helpers/jwt.js';
import { ServerProcess } from '../helpers/server-process.js';

const CHECK = '/backend-api/wham/accounts/check';

/** Random secrets: printable ASCII, long enough and varied enough not to occur by chance. */
const secretArb = fc
  .string({ minLength: 16, maxLength: 48, unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.~+/=!$%*"\\') })
  .filter((s) => new Set(s).size >= 8);

describe('secrets never leave through the inspectors', { timeout: 120_000 }, () => {
  let backend: FakeBackend;
  let server: ServerProcess;
  let live: SseReader;
  let stately: SseReader;

  beforeAll(async () => {
    backend = await FakeBackend.start();
    backend.on(CHECK, accountsCheck([{ id: 'ws-1', name: 'Acme' }]));
    server = ServerProcess.start({
      config: `chatgpt_base_url = "${backend.baseUrl}"\n`,
      args: ['--inspect', '--inspect-ui'],
      env: { CODEX_ACCOUNT_SERVER_LOG: 'debug' },
    });
    await server.initialize({ capabilities: { experimentalApi: true, stateNotifications: true } });
    const urls = await inspectUrls(server, { live: true, stately: true });
    live = await SseReader.open(urls.port, `/events?token=${urls.token}`);
    stately = await SseReader.open(urls.port, `/stately/events?token=${urls.token}`);
  });

  afterAll(async () => {
    live?.close();
    stately?.close();
    server?.kill();
    await backend?.stop();
  });

  it('keeps random API keys and host tokens out of the page feed, the Stately feed, the state API and stderr', async () => {
    const used: string[] = [];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(secretArb, secretArb, async (apiKey, signature) => {
        const tag = `run-${n++}`;
        const accessToken = `${makeJwt({ 'https://api.openai.com/auth': { chatgpt_account_id: 'ws-1', chatgpt_plan_type: 'plus' }, email: 'a@b.c' }).split('.').slice(0, 2).join('.')}.${Buffer.from(signature).toString('base64url')}`;
        used.push(apiKey, accessToken, Buffer.from(signature).toString('base64url'));

        expect((await server.request('account/login/start', { type: 'apiKey', apiKey }, `${tag}-key`)).result).toEqual({ type: 'apiKey' });
        await server.request('account/logout', {}, `${tag}-out1`);
        const tokens = await server.request(
          'account/login/start',
          { type: 'chatgptAuthTokens', accessToken, chatgptAccountId: 'ws-1' },
          `${tag}-tokens`,
        );
        expect(tokens.result).toEqual({ type: 'chatgptAuthTokens' });
        await server.notification('account/updated', server.messages.indexOf(tokens));
        await server.request('account/state/read', {}, `${tag}-state`);
        // The host asks for the token back: it goes to stdout only.
        expect((await server.request('getAuthStatus', { includeToken: true }, `${tag}-status`)).result.authToken).toBe(accessToken);
        await server.request('account/logout', {}, `${tag}-out2`);
        await live.waitFor((m) => m.type === 'log' && m.entry.kind === 'rpc' && m.entry.rpc.id === `${tag}-out2` && m.entry.rpc.kind === 'response');
      }),
      { numRuns: 12 },
    );
    // Everything the inspectors emitted has arrived (the Stately feed is converted a tick later).
    await stately.waitFor((m) => m.type === '@xstate.event' && m.event.type === 'logout' && m.event.requestId !== undefined);
    await new Promise((resolve) => setTimeout(resolve, 200));

    const stateApi = server.rawLines.filter((line) => line.includes('"account/state/changed"') || /^\{"id":"run-\d+-state"/.test(line));
    expect(stateApi.filter((line) => line.includes('"account/state/changed"')).length).toBeGreaterThan(12);
    expect(stateApi.filter((line) => line.includes('-state"')).length).toBe(12);
    const emitted = { live: live.raw, stately: stately.raw, stderr: server.stderr, stateApi: stateApi.join('\n') };
    expect(live.messages.length).toBeGreaterThan(100);
    expect(stately.messages.length).toBeGreaterThan(100);
    for (const secret of used) {
      const escaped = JSON.stringify(secret).slice(1, -1);
      for (const [where, text] of Object.entries(emitted)) {
        expect(text.includes(secret) || text.includes(escaped), `${where} leaked ${secret}`).toBe(false);
      }
    }
  });
});
