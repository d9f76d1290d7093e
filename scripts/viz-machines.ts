// The list lives with the schema export (src/schema/machines.ts), which exports the same graphs.
export { VIZ_MACHINES, type VizMachine } from '../src/schema/machines.js';
