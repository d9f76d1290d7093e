import type { AuthFailure } from './account-types.js';

/**
 * Default for every effect: reject. Production (`src/effects/actors.ts`) and
 * tests supply real implementations with `machine.provide({ actors })`; an
 * effect nobody provided answers `notImplemented` instead of hanging.
 */
export function notProvided(name: string) {
  return async (): Promise<never> => {
    throw { kind: 'notImplemented', message: `${name} is not available in this build` } satisfies AuthFailure;
  };
}
