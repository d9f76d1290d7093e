import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderVisualizations } from '../scripts/viz-lib.js';

const fresh = await renderVisualizations();

describe('visualizations/', () => {
  it.each(Object.entries(fresh))('should hold an up-to-date %s', (name, content) => {
    const committed = readFileSync(new URL(`../visualizations/${name}`, import.meta.url), 'utf8');
    expect(committed, `visualizations/${name} is stale; run npm run viz`).toBe(content);
  });

  it('should draw every state of each machine in its SVG with a highlightable id', () => {
    const svg = fresh['account-machine.svg']!;
    for (const id of ['account:loggedOut', 'account:apiKey', 'account:chatgpt', 'account:chatgpt.idle', 'account:externalTokens.verifying']) {
      expect(svg).toContain(`id="${id}"`);
    }
  });
});
