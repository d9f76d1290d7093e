import { PassThrough } from 'node:stream';
import * as z from 'zod/mini';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log.js';
import { HostConnection, HostRequestError } from '../../src/rpc/host.js';
import { LineWriter } from '../../src/rpc/ndjson.js';

function host() {
  const output = new PassThrough();
  const writer = new LineWriter(output, () => 0);
  const logs: string[] = [];
  const connection = new HostConnection(writer, createLogger('debug', (l) => logs.push(l)));
  const sent = () => {
    writer.flush();
    return (output.read()?.toString() ?? '').split('\n').filter(Boolean).map((l: string) => JSON.parse(l));
  };
  return { connection, sent, logs };
}

const Result = z.object({ accessToken: z.string() });
const ask = (connection: HostConnection, timeoutMs = 1_000, signal?: AbortSignal) =>
  connection.request({ method: 'account/chatgptAuthTokens/refresh', params: { reason: 'unauthorized' }, result: Result, timeoutMs, ...(signal ? { signal } : {}) });

describe('the server→client request port (SPEC §9.3)', () => {
  it('numbers requests from 0 on the connection and resolves with the checked result', async () => {
    const h = host();
    const first = ask(h.connection);
    const second = ask(h.connection);
    expect(h.sent().map((m) => m.id)).toEqual([0, 1]);
    h.connection.handleResponse(1, { result: { accessToken: 'b' } });
    h.connection.handleResponse(0, { result: { accessToken: 'a' } });
    expect(await first).toEqual({ accessToken: 'a' });
    expect(await second).toEqual({ accessToken: 'b' });
  });

  it('fails a request whose host never answers once its deadline passes, and ignores the late answer', async () => {
    const h = host();
    const pending = ask(h.connection, 30);
    await expect(pending).rejects.toMatchObject({ why: 'timeout' });
    expect(h.connection.handleResponse(0, { result: { accessToken: 'late' } })).toBe(false);
    expect(h.connection.outstanding).toBe(0);
  });

  it('turns an error answer into its code and a malformed result into invalidResult', async () => {
    const h = host();
    const failed = ask(h.connection);
    const malformed = ask(h.connection);
    h.connection.handleResponse(0, { error: { code: -32001 } });
    h.connection.handleResponse(1, { result: { accessToken: 7 } });
    await expect(failed).rejects.toEqual(new HostRequestError('error', -32001));
    await expect(malformed).rejects.toMatchObject({ why: 'invalidResult' });
  });

  it('ignores a second answer, a string id and an unknown id', async () => {
    const h = host();
    const pending = ask(h.connection);
    expect(h.connection.handleResponse(0, { result: { accessToken: 'x' } })).toBe(true);
    expect(h.connection.handleResponse(0, { result: { accessToken: 'y' } })).toBe(false);
    expect(h.connection.handleResponse('0', { result: {} })).toBe(false);
    expect(h.connection.handleResponse(99, { result: {} })).toBe(false);
    expect(await pending).toEqual({ accessToken: 'x' });
  });

  it('stops waiting when its signal aborts, and fails what is outstanding when input ends', async () => {
    const h = host();
    const controller = new AbortController();
    const aborted = ask(h.connection, 1_000, controller.signal);
    const orphaned = ask(h.connection);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ why: 'aborted' });
    h.connection.close();
    await expect(orphaned).rejects.toMatchObject({ why: 'closed' });
    await expect(ask(h.connection)).rejects.toMatchObject({ why: 'closed' });
  });
});
