/**
 * One in-flight run per key, shared by every caller that asks meanwhile
 * (issue 8, scope 2): N requests that hit a 401 with the same credential
 * version share one recovery, so the issuer sees one grant and the host one
 * refresh request. The entry is dropped when the run settles, so a later 401
 * (on the new credentials) starts a new run.
 *
 * A caller that hits a 401 with an old version after the run ended starts a
 * run of its own: the run should itself compare versions (under the lock) and
 * use newer stored credentials instead of redeeming again.
 */
export interface SingleFlight<K, T> {
  /**
   * Runs `fn` for `key`, or joins the run in flight. `options.signal` lets one
   * caller stop waiting; the run's own signal (given to `fn`) aborts only
   * when every caller has stopped waiting.
   */
  run(key: K, fn: (signal: AbortSignal) => Promise<T>, options?: { signal?: AbortSignal }): Promise<T>;
  /** Whether a run for `key` is in flight. */
  inFlight(key: K): boolean;
}

interface Flight<T> {
  promise: Promise<T>;
  waiting: number;
  abort: AbortController;
}

/** A fresh, empty single-flight group. */
export function singleFlight<K, T>(): SingleFlight<K, T> {
  const flights = new Map<K, Flight<T>>();

  const join = (flight: Flight<T>, signal: AbortSignal | undefined): Promise<T> => {
    flight.waiting++;
    if (!signal) return flight.promise;
    return new Promise<T>((resolve, reject) => {
      const leave = () => {
        if (--flight.waiting === 0) flight.abort.abort(signal.reason);
        reject(signal.reason);
      };
      if (signal.aborted) return leave();
      signal.addEventListener('abort', leave, { once: true });
      flight.promise.then(
        (value) => {
          signal.removeEventListener('abort', leave);
          resolve(value);
        },
        (error: unknown) => {
          signal.removeEventListener('abort', leave);
          reject(error);
        },
      );
    });
  };

  return {
    run(key, fn, options = {}) {
      let flight = flights.get(key);
      // A run every caller abandoned is winding down: do not join it.
      if (!flight || flight.abort.signal.aborted) {
        const abort = new AbortController();
        // Deferred a tick so `fn` never runs before this caller has joined.
        const promise = Promise.resolve().then(() => fn(abort.signal));
        const created: Flight<T> = { promise, waiting: 0, abort };
        flights.set(key, created);
        void promise.then(
          () => flights.get(key) === created && flights.delete(key),
          () => flights.get(key) === created && flights.delete(key),
        );
        flight = created;
      }
      return join(flight, options.signal);
    },
    inFlight: (key) => flights.has(key),
  };
}
