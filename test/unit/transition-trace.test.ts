import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { assign, createActor, setup } from 'xstate';
import { createTransitionTrace } from '../../src/inspect/transition-trace.js';

const machine = setup({ types: { events: {} as { type: 'go'; secret: string }, context: {} as { n: number } } }).createMachine({
  id: 'demo',
  initial: 'a',
  context: { n: 0 },
  states: {
    a: {
      on: {
        go: [
          { guard: ({ context }) => context.n > 0, target: 'b' },
          { actions: assign({ n: ({ context }) => context.n + 1 }) },
        ],
      },
    },
    b: { always: [{ guard: () => false, target: 'a' }, { target: 'c' }] },
    c: {},
  },
});

describe('transition trace', () => {
  it('should write each transition with its source, event, candidate index and targets, and nothing of the event', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'cas-trace-')), 'trace.jsonl');
    const trace = createTransitionTrace(path);
    const actor = createActor(machine, { inspect: trace.inspect }).start();
    actor.send({ type: 'go', secret: 'sk-do-not-write' });
    actor.send({ type: 'go', secret: 'sk-do-not-write' });
    trace.close();
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain('sk-do-not-write');
    expect(text.trim().split('\n').map((l) => JSON.parse(l))).toEqual([
      { machine: 'demo', source: 'demo.a', on: 'go', index: 1, targets: [], event: 'go' },
      { machine: 'demo', source: 'demo.a', on: 'go', index: 0, targets: ['demo.b'], event: 'go' },
      { machine: 'demo', source: 'demo.b', on: '', index: 1, targets: ['demo.c'], event: 'go' },
    ]);
  });
});
