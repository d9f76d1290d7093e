import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { toResponseError } from '../../src/rpc/errors.js';
import { Issuer, followAuthUrl } from '../helpers/issuer.js';
import { authUrlOf, loginDeps, startAttempt } from '../helpers/login.js';

// The only test file that binds the reference's callback ports 1455 and 1457
// (SPEC §6.1): every other file uses OS-assigned ports, so files run in parallel.
const PORTS = [1455, 1457] as const;

let issuer: Issuer;
const cleanups: Array<() => unknown> = [];
beforeEach(async () => (issuer = await Issuer.start()));
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await issuer.stop();
});

function attempt(loginId: string) {
  const { deps } = loginDeps(issuer, { ports: PORTS });
  const a = startAttempt(deps, { loginId });
  cleanups.push(() => a.stop());
  return a;
}

/** Another program on the port: it answers every request (even /cancel) and never lets go. */
async function occupy(port: number) {
  const seen: Array<{ path: string; headers: IncomingHttpHeaders }> = [];
  const server: Server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    res.end('busy');
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  cleanups.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return seen;
}

const portOf = (authUrl: string) => new URL(new URL(authUrl).searchParams.get('redirect_uri')!).port;

describe('callback ports 1455 and 1457', () => {
  it('listens on 1455 and signs in through it', async () => {
    const a = attempt('00000000-0000-4000-8000-000000000001');
    const authUrl = authUrlOf(await a.ready());
    expect(new URL(authUrl).searchParams.get('redirect_uri')).toBe('http://127.0.0.1:1455/auth/callback');
    const steps = await followAuthUrl(authUrl);
    expect(steps[1]!.location).toMatch(/^http:\/\/127\.0\.0\.1:1455\/success\?id_token=/);
    expect((await a.finished()).status).toBe('succeeded');
  });

  it('takes 1455 over from an older login with GET /cancel; the older one ends cancelled', async () => {
    const older = attempt('00000000-0000-4000-8000-000000000002');
    expect(portOf(authUrlOf(await older.ready()))).toBe('1455');
    const started = Date.now();
    const newer = attempt('00000000-0000-4000-8000-000000000003');
    expect(portOf(authUrlOf(await newer.ready()))).toBe('1455');
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(await older.finished()).toMatchObject({ status: 'failed', error: 'Login server error: Login cancelled' });
  });

  it('falls back to 1457 after about 2 s when 1455 stays busy, having asked its occupant to cancel', async () => {
    const occupant = await occupy(1455);
    const started = Date.now();
    const a = attempt('00000000-0000-4000-8000-000000000004');
    expect(portOf(authUrlOf(await a.ready()))).toBe('1457');
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(1_800);
    expect(waited).toBeLessThan(4_000);
    expect(occupant.map((r) => [r.path, r.headers.connection])).toEqual([['/cancel', 'close']]);
  });

  it('fails to start after about 4 s when both ports are busy, with the reference error', async () => {
    await occupy(1455);
    await occupy(1457);
    const started = Date.now();
    const a = attempt('00000000-0000-4000-8000-000000000005');
    const report = await a.ready();
    expect(Date.now() - started).toBeGreaterThanOrEqual(3_600);
    expect(report).toEqual({
      type: 'loginAttempt.startFailed',
      loginId: '00000000-0000-4000-8000-000000000005',
      failure: { kind: 'loginServerFailed', message: 'failed to start login server: Port 127.0.0.1:1457 is already in use' },
    });
    expect(await a.finished()).toMatchObject({ status: 'notStarted' });
    const wire = toResponseError(report.type === 'loginAttempt.startFailed' ? report.failure : { kind: 'internal' });
    expect([wire.code, wire.message, wire.data]).toEqual([
      -32603,
      'failed to start login server: Port 127.0.0.1:1457 is already in use',
      { reason: 'login_port_unavailable', recovery: 'retry' },
    ]);
  });
});
