/** One message for a stream: its JSON, and a key when later messages of the same key supersede it. */
export interface SseItem {
  json: string;
  coalesceKey: string | null;
}

/** The part of an HTTP response an SSE stream needs (a `ServerResponse`, or any Writable in tests). */
export interface SseSink {
  write(chunk: string): boolean;
  end(): void;
  on(event: 'drain' | 'close', listener: () => void): unknown;
  readonly writableLength: number;
}

export interface SseClientEvents {
  /** The client stopped reading: events are being dropped from now on. */
  congested(): void;
  /** It read again; `dropped` events were skipped (snapshots coalesced to the latest). */
  recovered(dropped: number): void;
}

/**
 * One server-sent-events stream with bounded memory. While the socket takes
 * data, each item is written; once `write` reports a full buffer, log rows are
 * dropped (counted) and snapshots coalesced to the latest per actor until
 * `drain`, which sends the pending snapshots and a `dropped` notice. At most
 * one buffer's worth plus one snapshot per actor is ever held.
 */
export class SseClient {
  readonly #sink: SseSink;
  readonly #events: SseClientEvents;
  #congested = false;
  #dropped = 0;
  readonly #pending = new Map<string, string>();
  #closed = false;

  constructor(sink: SseSink, events: SseClientEvents) {
    this.#sink = sink;
    this.#events = events;
    sink.on('drain', () => this.#drain());
    sink.on('close', () => {
      this.#closed = true;
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sends one feed item, or drops/coalesces it while the client is not reading. */
  send(item: SseItem): void {
    this.sendBatch([item]);
  }

  /** Sends items in one write (one syscall for a turn's worth), or drops/coalesces them while the client is not reading. */
  sendBatch(items: readonly SseItem[]): void {
    if (this.#closed) return;
    if (this.#congested) {
      for (const item of items) {
        if (item.coalesceKey !== null) this.#pending.set(item.coalesceKey, item.json);
        else this.#dropped++;
      }
      return;
    }
    let chunk = '';
    for (const item of items) chunk += `event: message\ndata: ${item.json}\n\n`;
    if (chunk !== '') this.#raw(chunk);
  }

  /** A comment line that keeps proxies and the browser from timing the stream out. */
  ping(): void {
    if (!this.#closed && !this.#congested) this.#raw(': ping\n\n');
  }

  close(): void {
    this.#closed = true;
    this.#sink.end();
  }

  #write(json: string, event = 'message'): void {
    this.#raw(`event: ${event}\ndata: ${json}\n\n`);
  }

  #raw(chunk: string): void {
    if (!this.#sink.write(chunk) && !this.#congested) {
      this.#congested = true;
      this.#events.congested();
    }
  }

  #drain(): void {
    if (this.#closed || !this.#congested) return;
    this.#congested = false;
    const dropped = this.#dropped;
    this.#dropped = 0;
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    this.#write(JSON.stringify({ dropped }), 'dropped');
    for (const json of pending) this.#write(json);
    this.#events.recovered(dropped);
  }
}
