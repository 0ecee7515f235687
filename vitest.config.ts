import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    env: { LLMK_POISON: '1' },
    // Native worker threads + 2 cores: run files one at a time so timings and the
    // thread pool are not oversubscribed.
    // --expose-gc: memory-accounting tests flush pending handle finalizers first.
    poolOptions: { forks: { singleFork: true, execArgv: ['--expose-gc'] } },
  },
});
