import accountMachineSvg from '../../visualizations/account-machine.svg?raw';
import loginAttemptMachineSvg from '../../visualizations/login-attempt-machine.svg?raw';
import sessionMachineSvg from '../../visualizations/session-machine.svg?raw';

/**
 * The SVG of each machine by machine id, as `npm run viz` drew it; embedded in
 * dist/inspect.cjs at build time. Add a line per machine listed in
 * scripts/viz-machines.ts. State elements carry `id="<machine>:<path>"`.
 */
export const DIAGRAMS: Readonly<Record<string, string>> = {
  account: accountMachineSvg,
  session: sessionMachineSvg,
  loginAttempt: loginAttemptMachineSvg,
};
