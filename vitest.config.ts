import { defineConfig } from 'vitest/config';
import { playwright } from '@vitest/browser-playwright';
import { fileURLToPath } from 'node:url';
import { existsSync } from 'node:fs';

const browserEngine = fileURLToPath(new URL('./engine/browser.ts', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
if (!existsSync(CHROMIUM)) console.warn(`vitest: ${CHROMIUM} is missing, so the op tests do not run in a browser (bash .ci/setup installs Debian's chromium)`);

export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      {
        test: {
          name: 'node',
          include: ['test/**/*.test.ts'],
          // Each test file owns one Dawn device in its own process; lavapipe is itself multi-threaded.
          pool: 'forks',
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      ...(existsSync(CHROMIUM) ? [{
        // The op tests again, in Debian's Chromium on its WebGPU (SwiftShader): the same test
        // files, with the engine's Node entry point swapped for the browser one. The GPU-shaped
        // variants run here too: SwiftShader's subgroups have 4 invocations, lavapipe's 8.
        resolve: { alias: [{ find: /^(\.\.\/)+engine\/node\.js$/, replacement: browserEngine }] },
        test: {
          name: 'chromium',
          include: ['test/ops.test.ts', 'test/gpu-variants.test.ts'],
          // After the Node tests: the two projects share the machine's two cores.
          sequence: { groupOrder: 1 },
          testTimeout: 120_000,
          browser: {
            enabled: true,
            headless: true,
            screenshotFailures: false,
            provider: playwright({
              launchOptions: {
                executablePath: CHROMIUM,
                args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', '--enable-unsafe-webgpu'],
              },
            }),
            instances: [{ browser: 'chromium' }],
          },
        },
      }] : []),
    ],
  },
});
