// The browser entry point must not reach any Node-only module: bundle it for the browser and
// check what went in.
import { describe, expect, it } from 'vitest';
import { build } from 'esbuild';

describe('browser entry point', () => {
  it('bundles for the browser with no Node module and no Dawn', async () => {
    const r = await build({ entryPoints: ['engine/browser.ts'], bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent' });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs.some((f) => f.includes('node_modules/webgpu'))).toBe(false);
    expect(inputs.some((f) => f.startsWith('node:') || f.endsWith('engine/device/node.ts'))).toBe(false);
    expect(inputs).toContain('engine/ops/index.ts');
    expect(inputs.some((f) => f.endsWith('tune-store.ts'))).toBe(false); // the file cache is Node's
    expect(r.outputFiles[0]!.text).toContain('import.meta.glob');
  });
});
