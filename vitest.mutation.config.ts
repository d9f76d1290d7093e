import { defineConfig } from 'vitest/config';

/**
 * The tests StrykerJS runs for every mutant (`npm run mutate`): the ones that
 * exercise machines/ and the storage in-process. A mutant in a machine
 * definition is "static" (it is evaluated when the module loads), so every
 * such mutant runs this whole list: it is kept to the tests that can kill
 * one. The end-to-end suites spawn the built bundle, which a mutant in the
 * sources does not reach.
 */
export default defineConfig({
  test: {
    include: [
      'test/machine/**/*.test.ts',
      // In-process server tests reach the views, the surface and the wording.
      'test/rpc/**/*.test.ts',
      // Pure modules of machines/ (views, guards, wording, surface) and the error mapping over the wording.
      'test/unit/{rate-limits,serde,config,uuid-rfc3339,wording,account-guards,account-surface,account-login-region,errors,secret}.test.ts',
      'test/unit/storage*.test.ts',
      'test/unit/keyring-store.test.ts',
      'test/unit/log.test.ts',
    ],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
