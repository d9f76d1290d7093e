import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AnyStateNode } from 'xstate';
import { renderVisualizations } from '../scripts/viz-lib.js';
import { VIZ_MACHINES } from '../scripts/viz-machines.js';

const fresh = await renderVisualizations();

describe('visualizations/', () => {
  it.each(Object.entries(fresh))('should hold an up-to-date %s', (name, content) => {
    const committed = readFileSync(new URL(`../visualizations/${name}`, import.meta.url), 'utf8');
    expect(committed, `visualizations/${name} is stale; run npm run viz`).toBe(content);
  });

  it.each(VIZ_MACHINES.map((m) => [m.file, m.machine] as const))(
    'should draw every state of %s in its SVG with the id the live page highlights',
    (file, machine) => {
      const svg = fresh[`${file}.svg`]!;
      const ids = machineStatePaths(machine.root).map((path) => `${machine.id}:${path}`);
      expect(ids.length).toBeGreaterThan(3);
      for (const id of ids) expect(svg, `${file}.svg lacks ${id}`).toContain(`id="${id}"`);
    },
  );

  it('should give the parallel account chart its regions and nested states', () => {
    const svg = fresh['account-machine.svg']!;
    for (const id of ['account:credentials', 'account:credentials.chatgptSession.externalTokens', 'account:login.chatgptPending.waiting']) {
      expect(svg).toContain(`id="${id}"`);
    }
  });
});

/** Dotted paths of every state node under `node` (its descendants, not itself). */
function machineStatePaths(node: AnyStateNode): string[] {
  return Object.values(node.states).flatMap((child) => [child.path.join('.'), ...machineStatePaths(child)]);
}
