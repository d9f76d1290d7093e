import type { AnyStateMachine } from 'xstate';
import { accountMachine } from '../machines/account-machine.js';
import { loginAttemptMachine } from '../machines/login-attempt-machine.js';
import { sessionMachine } from '../machines/session-machine.js';

/** A machine `npm run viz` draws: `file` names its outputs in visualizations/ and its source in machines/. */
export interface VizMachine {
  file: string;
  machine: AnyStateMachine;
}

/** Every machine with generated diagrams; add a line per new machine (and its SVG in src/inspect/diagrams.ts). */
export const VIZ_MACHINES: readonly VizMachine[] = [
  { file: 'account-machine', machine: accountMachine },
  { file: 'session-machine', machine: sessionMachine },
  { file: 'login-attempt-machine', machine: loginAttemptMachine },
];
