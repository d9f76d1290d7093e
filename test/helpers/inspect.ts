import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import type { ServerProcess } from './server-process.js';

/** Where the server said (on stderr) its inspect pages are. */
export interface InspectUrls {
  port: number;
  token: string;
  live: string | null;
  stately: string | null;
}

/** Waits for the announcement lines on stderr and parses them. */
export async function inspectUrls(server: ServerProcess, expect: { live?: boolean; stately?: boolean } = { live: true }): Promise<InspectUrls> {
  const patterns: RegExp[] = [];
  if (expect.live) patterns.push(/live state page: open (http:\S+)/);
  if (expect.stately) patterns.push(/Stately inspector: open (http:\S+)/);
  for (const p of patterns) await server.stderrMatching(p);
  const live = /live state page: open (http:\S+)/.exec(server.stderr)?.[1] ?? null;
  const stately = /Stately inspector: open (http:\S+)/.exec(server.stderr)?.[1] ?? null;
  const any = new URL((live ?? stately)!);
  return { port: Number(any.port), token: any.searchParams.get('token')!, live, stately };
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A plain GET on 127.0.0.1 with exactly the given headers (Host included when given). */
export function httpGet(port: number, path: string, headers: Record<string, string> = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'GET', headers, setHost: !('Host' in headers) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export interface SseEvent {
  event: string;
  data: any;
}

/** A server-sent-events client over node:http that keeps everything it received. */
export class SseReader {
  readonly events: SseEvent[] = [];
  /** Every byte received, as text (for secret scans). */
  raw = '';
  #buffer = '';
  #waiters: Array<() => void> = [];
  readonly #response: IncomingMessage;

  private constructor(response: IncomingMessage) {
    this.#response = response;
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => {
      this.raw += chunk;
      this.#buffer += chunk;
      let end: number;
      while ((end = this.#buffer.indexOf('\n\n')) !== -1) {
        const block = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1] ?? 'message';
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (data !== undefined) this.events.push({ event, data: JSON.parse(data) });
      }
      for (const wake of this.#waiters.splice(0)) wake();
    });
  }

  static open(port: number, path: string): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`SSE ${path} answered ${res.statusCode}`));
        else resolve(new SseReader(res));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** The data of every `message` event. */
  get messages(): any[] {
    return this.events.filter((e) => e.event === 'message').map((e) => e.data);
  }

  async waitFor(predicate: (data: any) => boolean, timeoutMs = 5_000): Promise<any> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found !== undefined) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`SSE: timed out; got ${JSON.stringify(this.messages).slice(0, 2000)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.#response.destroy();
  }
}

/** Root-actor snapshots in a live-page feed, in order (init and later). */
export function rootStates(messages: any[]): unknown[] {
  const states: unknown[] = [];
  for (const m of messages) {
    const views = m.type === 'init' ? m.actors : m.type === 'snapshot' ? [m.snapshot] : [];
    for (const v of views) if (v.machine === 'account' && v.parent === null) states.push(v.value);
  }
  return states;
}
