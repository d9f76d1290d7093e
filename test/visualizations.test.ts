import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderVisualizations } from '../scripts/viz-lib.js';

describe('visualizations/', () => {
  it.each(Object.entries(renderVisualizations()))('holds an up-to-date %s (run npm run viz)', (name, fresh) => {
    const committed = readFileSync(new URL(`../visualizations/${name}`, import.meta.url), 'utf8');
    expect(committed).toBe(fresh);
  });
});
