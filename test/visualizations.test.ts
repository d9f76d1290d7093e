import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderVisualizations } from '../scripts/viz-lib.js';

describe('visualizations/', () => {
  it.each(Object.entries(renderVisualizations()))('should hold an up-to-date %s', (name, fresh) => {
    const committed = readFileSync(new URL(`../visualizations/${name}`, import.meta.url), 'utf8');
    expect(committed, `visualizations/${name} is stale; run npm run viz`).toBe(fresh);
  });
});
