// Regenerates visualizations/ from the machine: `npm run viz`.
import { writeFileSync } from 'node:fs';
import { renderVisualizations } from './viz-lib.js';

for (const [name, content] of Object.entries(renderVisualizations())) {
  writeFileSync(new URL(`../visualizations/${name}`, import.meta.url), content);
  process.stderr.write(`wrote visualizations/${name}\n`);
}
