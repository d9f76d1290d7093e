import { defineConfig } from 'vitest/config';

/**
 * The tests StrykerJS runs for every mutant (`npm run mutate`): the unit and
 * machine tests, which exercise machines/ and the storage in-process. The
 * end-to-end suites spawn the built bundle, which a mutant in the sources
 * does not reach, so they would only cost time.
 */
export default defineConfig({
  test: {
    include: ['test/unit/**/*.test.ts', 'test/machine/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
  },
});
