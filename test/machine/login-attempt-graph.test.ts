import { describe, expect, it } from 'vitest';
import { getShortestPaths, getStateNodes } from 'xstate/graph';
import { loginAttemptMachine } from '../../machines/login-attempt-machine.js';
import type { ExchangedTokens } from '../../machines/login-attempt-types.js';
import { chart, EVENTS, input } from './login-attempt-samples.js';

function activePaths(value: unknown, prefix = ''): string[] {
  if (typeof value === 'string') return [prefix + value];
  return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => [prefix + k, ...activePaths(v, `${prefix}${k}.`)]);
}

describe('login attempt machine graph', () => {
  it('should reach every state node by some path', () => {
    const paths = getShortestPaths(chart, { events: EVENTS, input: input() });
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    const all = getStateNodes(loginAttemptMachine.root).map((n) => n.path.join('.')).filter((p) => p !== '');
    expect(all).toHaveLength(12);
    expect(all.filter((p) => !reached.has(p))).toEqual([]);
  });

  it('should reach done only after the credentials were saved', () => {
    const paths = getShortestPaths(chart, { events: EVENTS, input: input(), toState: (s) => s.value === 'done' });
    expect(paths.length).toBeGreaterThan(0);
    for (const path of paths) expect(path.steps.map((s) => s.event.type)).toContain('xstate.done.actor.saveLogin');
  });

  it('should never save a login to a workspace outside the forced list', () => {
    const allowed = EVENTS[6]!;
    expect((allowed as unknown as { output: ExchangedTokens }).output.claims.accountId).toBe('ws-1');
    const events = EVENTS.filter((e) => e !== allowed);
    const paths = getShortestPaths(chart, { events, input: input(['ws-1']) });
    const reached = new Set(paths.flatMap((p) => activePaths(p.state.value)));
    expect(reached.has('failed')).toBe(true);
    expect(reached.has('open.running.saving')).toBe(false);
    expect(reached.has('done')).toBe(false);
  });
});
