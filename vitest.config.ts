// Test projects: `unit` runs anywhere; `integration` needs root, FUSE and Debian's docker-registry (CI has them).
import { defineConfig } from 'vitest/config';

// Each file gets its own TMPDIR, removed after it (test/setup/tmpdir.ts). The integration project runs one file
// at a time: scripts/test.sh passes --no-file-parallelism, which (unlike a project's own setting) vitest honours.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**'],
          setupFiles: ['test/setup/tmpdir.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          setupFiles: ['test/setup/tmpdir.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
