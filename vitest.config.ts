import {defineConfig} from 'vitest/config';

// CI asks for a machine-readable report too (see .ci/run); people get the default output.
const report = process.env.TSKIT_TEST_REPORT;

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // e2e tests boot QEMU under TCG and talk to real registries: give them room,
    // and keep to the two cores this kind of machine has.
    testTimeout: 180_000,
    hookTimeout: 600_000,
    pool: 'forks',
    maxWorkers: 2,
    globalSetup: ['test/global-setup.ts'],
    reporters: report ? ['default', ['json', {outputFile: report}]] : ['default'],
  },
});
