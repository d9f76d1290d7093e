import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { SseClient } from '../../src/inspect/sse.js';

const row = (n: number) => ({ json: JSON.stringify({ n, pad: 'x'.repeat(200) }), coalesceKey: null });
const snap = (actor: string, value: string) => ({ json: JSON.stringify({ actor, value }), coalesceKey: actor });

function client(highWaterMark = 1024) {
  const stream = new PassThrough({ highWaterMark });
  const notes: string[] = [];
  const sse = new SseClient(stream, {
    congested: () => notes.push('congested'),
    recovered: (dropped) => notes.push(`recovered ${dropped}`),
  });
  return { stream, sse, notes };
}

const read = (stream: PassThrough) => {
  let text = '';
  let chunk: Buffer | null;
  while ((chunk = stream.read()) !== null) text += chunk.toString();
  return text;
};

describe('SseClient', () => {
  it('writes each item as one server-sent event', () => {
    const { stream, sse } = client();
    sse.send(snap('x:0', 'loggedOut'));
    expect(read(stream)).toBe('event: message\ndata: {"actor":"x:0","value":"loggedOut"}\n\n');
  });

  it('holds at most one buffer plus one snapshot per actor for a client that never reads', () => {
    const { stream, sse, notes } = client();
    for (let i = 0; i < 10_000; i++) {
      sse.send(row(i));
      sse.send(snap('x:0', `s${i}`));
    }
    expect(notes).toEqual(['congested']);
    expect(stream.writableLength + stream.readableLength).toBeLessThan(4 * 1024);
  });

  it('after draining, reports how many events were dropped and sends only the latest snapshot', async () => {
    const { stream, sse, notes } = client();
    for (let i = 0; i < 100; i++) sse.send(row(i));
    sse.send(snap('x:0', 'old'));
    sse.send(snap('x:0', 'latest'));
    let after = read(stream);
    await new Promise((resolve) => setImmediate(resolve));
    after += read(stream);
    after = after.slice(after.indexOf('event: dropped'));
    expect(notes[0]).toBe('congested');
    expect(notes[1]).toMatch(/^recovered \d+$/);
    const dropped = Number(notes[1]!.split(' ')[1]);
    expect(after).toContain(`event: dropped\ndata: {"dropped":${dropped}}`);
    expect(after).toContain('"value":"latest"');
    expect(after).not.toContain('"value":"old"');
  });

  it('ignores items after the client went away', () => {
    const { stream, sse } = client();
    stream.destroy();
    stream.emit('close');
    sse.send(row(1));
    expect(sse.closed).toBe(true);
  });
});
