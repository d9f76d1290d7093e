// Regenerates visualizations/ from the machines listed in scripts/viz-machines.ts: `npm run viz`.
import { writeFileSync } from 'node:fs';
import { renderVisualizations } from './viz-lib.js';

for (const [name, content] of Object.entries(await renderVisualizations())) {
  writeFileSync(new URL(`../visualizations/${name}`, import.meta.url), content);
  process.stderr.write(`wrote visualizations/${name}\n`);
}
