import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { singleFlight } from '../../src/effects/single-flight.js';

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

describe('singleFlight', () => {
  it('runs once for twenty concurrent callers with the same key and gives them all its result', async () => {
    const flight = singleFlight<number, string>();
    let runs = 0;
    const gate = deferred<string>();
    const callers = Array.from({ length: 20 }, () =>
      flight.run(1, () => {
        runs++;
        return gate.promise;
      }),
    );
    gate.resolve('new-token');
    expect(await Promise.all(callers)).toEqual(Array(20).fill('new-token'));
    expect(runs).toBe(1);
  });

  it('shares a failure with every caller of the run', async () => {
    const flight = singleFlight<number, string>();
    const callers = [1, 2, 3].map(() => flight.run(7, async () => Promise.reject(new Error('refresh_token_reused'))));
    for (const caller of callers) await expect(caller).rejects.toThrow('refresh_token_reused');
  });

  it('runs separately for different keys', async () => {
    const flight = singleFlight<number, number>();
    let runs = 0;
    const results = await Promise.all([1, 2, 1, 2].map((k) => flight.run(k, async () => (runs++, k * 10))));
    expect(results).toEqual([10, 20, 10, 20]);
    expect(runs).toBe(2);
  });

  it('starts a new run for the same key once the previous one settled', async () => {
    const flight = singleFlight<number, number>();
    let runs = 0;
    await flight.run(1, async () => ++runs);
    expect(flight.inFlight(1)).toBe(false);
    expect(await flight.run(1, async () => ++runs)).toBe(2);
  });

  it('reports a run as in flight until it settles', async () => {
    const flight = singleFlight<string, void>();
    const gate = deferred<void>();
    const caller = flight.run('v1', () => gate.promise);
    expect(flight.inFlight('v1')).toBe(true);
    gate.resolve();
    await caller;
    expect(flight.inFlight('v1')).toBe(false);
  });

  it('lets one caller stop waiting while the run goes on for the others', async () => {
    const flight = singleFlight<number, string>();
    const gate = deferred<string>();
    let runSignal: AbortSignal | undefined;
    const leaving = new AbortController();
    const first = flight.run(1, (signal) => ((runSignal = signal), gate.promise), { signal: leaving.signal });
    const second = flight.run(1, () => gate.promise);
    leaving.abort(new Error('request cancelled'));
    await expect(first).rejects.toThrow('request cancelled');
    expect(runSignal?.aborted).toBe(false);
    gate.resolve('ok');
    expect(await second).toBe('ok');
  });

  it('aborts the run once every caller has stopped waiting', async () => {
    const flight = singleFlight<number, string>();
    const a = new AbortController();
    const b = new AbortController();
    let runSignal: AbortSignal | undefined;
    const run = (signal: AbortSignal) => {
      runSignal = signal;
      return new Promise<string>((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)));
    };
    const first = flight.run(1, run, { signal: a.signal });
    const second = flight.run(1, run, { signal: b.signal });
    await sleep(0);
    a.abort(new Error('a left'));
    await expect(first).rejects.toThrow('a left');
    expect(runSignal?.aborted).toBe(false);
    b.abort(new Error('b left'));
    await expect(second).rejects.toThrow('b left');
    expect(runSignal?.aborted).toBe(true);
  });
});

describe('singleFlight after abandonment', () => {
  it('starts afresh for a caller who arrives after everyone abandoned the run', async () => {
    const flight = singleFlight<number, string>();
    const gone = new AbortController();
    const abandoned = flight.run(1, () => new Promise<string>(() => {}), { signal: gone.signal });
    gone.abort(new Error('left'));
    await expect(abandoned).rejects.toThrow('left');
    expect(await flight.run(1, async () => 'fresh')).toBe('fresh');
  });
});
