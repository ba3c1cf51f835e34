// The npm package: `npm pack` (which builds dist/ through prepack) holds the library and nothing
// else, and the tarball, installed into an empty folder, works as `medgrad` in Node, type-checks
// for a TypeScript user, and bundles for the browser (esbuild's `browser` condition) without any
// Node module, its shaders inlined.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

interface PackResult { filename: string; files: { path: string }[] }

let tmp = '';
let app = '';          // a user's project: node_modules/medgrad is the unpacked tarball
let packed: string[] = [];
let manifest: { dependencies?: Record<string, string>; bin?: Record<string, string> } = {};

/** Runs a command and returns its stdout; a failure shows the command's stderr. */
function run(cmd: string, args: string[], cwd: string, timeout = 60_000): string {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout, env: { ...process.env, MEDGRAD_DEBUG: '' } });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/** Files under dir (relative to dir, '/'-separated), recursively. */
function walk(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split('\\').join('/'));
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'medgrad-pack-'));
  // prepack builds dist/ (tsc, shaders); the lifecycle script's own output precedes the JSON.
  const out = run('npm', ['pack', '--json', '--pack-destination', tmp], ROOT, 120_000);
  const [result] = JSON.parse(out.slice(out.search(/^\[/m))) as PackResult[];
  packed = result!.files.map((f) => f.path).sort();

  app = join(tmp, 'app');
  mkdirSync(join(app, 'node_modules'), { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run('tar', ['-xzf', join(tmp, result!.filename), '-C', tmp], tmp);
  renameSync(join(tmp, 'package'), join(app, 'node_modules', 'medgrad'));
  manifest = JSON.parse(readFileSync(join(app, 'node_modules', 'medgrad', 'package.json'), 'utf8')) as typeof manifest;
  // The package's runtime dependencies, and only those, from the repository's node_modules (no
  // registry): a module the library imports without declaring it fails to resolve here.
  for (const dep of Object.keys(manifest.dependencies ?? {})) {
    const link = join(app, 'node_modules', dep);
    mkdirSync(dirname(link), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules', dep), link, 'dir');
  }
});

afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

describe('npm pack', () => {
  it('packs dist/ (every engine/ and nn/ module as .js and .d.ts, every shader) and nothing else', () => {
    const sources = [...walk(join(ROOT, 'engine')).map((f) => `engine/${f}`), ...walk(join(ROOT, 'nn')).map((f) => `nn/${f}`)]
      .filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
    const shaders = readdirSync(join(ROOT, 'shaders')).filter((f) => f.endsWith('.wgsl'));
    expect(shaders.length).toBeGreaterThan(0);
    const expected = [
      'package.json', 'README.md',
      // npm always packs a declared bin; outside a clone it says the command needs the repository.
      'bin/medgrad.mjs',
      ...sources.flatMap((f) => [`dist/${f.slice(0, -3)}.js`, `dist/${f.slice(0, -3)}.d.ts`]),
      'dist/engine/device/browser-shaders.js',   // the shaders for the browser entry, made by the build
      ...shaders.map((f) => `dist/shaders/${f}`),
    ].sort();
    expect(packed).toEqual(expected);
    expect(packed).toContain('dist/engine/node.js');
    expect(packed).toContain('dist/engine/node.d.ts');
    expect(packed).toContain('dist/engine/browser.js');
    expect(packed).toContain('dist/nn/index.js');
    for (const dir of ['test/', 'experiments/', 'bench/', 'runs/', 'node_modules/', '.ci/', 'shaders/', 'engine/', 'nn/', 'docs/']) {
      expect(packed.filter((f) => f.startsWith(dir))).toEqual([]);
    }
    // The library's own imports; the study's (vega, marked, tsx, ...) are development dependencies.
    expect(Object.keys(manifest.dependencies ?? {}).sort()).toEqual(['webgpu', 'wgsl_reflect']);
  });
});

describe('the installed package', () => {
  it("runs in Node as import { init, tensor } from 'medgrad', with medgrad/nn on the same engine", () => {
    const code = `
      import { init, tensor, ones, Generator } from 'medgrad';
      import { Linear } from 'medgrad/nn';
      await init();
      const t = tensor([1, 2, 3]);
      const y = new Linear(3, 2, { generator: new Generator(0) }).call(ones([4, 3]));
      console.log(JSON.stringify({ sum: Array.from(await t.add(t).data()), linear: y.shape }));`;
    const out = run(process.execPath, ['--input-type=module', '-e', code], app);
    expect(JSON.parse(out.trim().split('\n').at(-1)!)).toEqual({ sum: [2, 4, 6], linear: [4, 2] });
  });

  it('type-checks for a TypeScript user (WebGPU types from lib "dom"), under Node and under a bundler with the browser condition', () => {
    writeFileSync(join(app, 'consumer.ts'), [
      "import { init, tensor, type Tensor, type Device } from 'medgrad';",
      "import { Linear, SGD, Module } from 'medgrad/nn';",
      "const device: Device = await init({ powerPreference: 'low-power' });",
      'const t: Tensor = tensor([1, 2, 3]).add(1);',
      'const m: Module = new Linear(3, 1, { generator: null as never });',
      'const b: GPUBuffer = t.buffer;',
      'export const used = [device, t, m, SGD, b];',
      '',
    ].join('\n'));
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    // No skipLibCheck: the package's .d.ts files are checked too.
    const base = ['--noEmit', '--strict', '--target', 'ES2022', '--lib', 'ES2023,DOM', '--types', '', 'consumer.ts'];
    run(process.execPath, [tsc, ...base, '--module', 'NodeNext', '--moduleResolution', 'NodeNext'], app);
    run(process.execPath, [tsc, ...base, '--module', 'ESNext', '--moduleResolution', 'Bundler', '--customConditions', 'browser'], app);
  });

  it('bundles for the browser from the browser entry: no Node module, no Dawn, shaders inlined, and runs on a WebGPU navigator', async () => {
    const r = await build({
      stdin: { contents: "export { init, tensor } from 'medgrad';\nexport { Linear } from 'medgrad/nn';\n", resolveDir: app, loader: 'js' },
      absWorkingDir: app, bundle: true, platform: 'browser', format: 'esm', write: false, metafile: true, logLevel: 'silent',
    });
    const inputs = Object.keys(r.metafile.inputs);
    expect(inputs).toContain('node_modules/medgrad/dist/engine/browser.js');
    expect(inputs).toContain('node_modules/medgrad/dist/engine/device/browser-shaders.js');
    expect(inputs).toContain('node_modules/medgrad/dist/nn/index.js');
    expect(inputs.filter((f) => f.startsWith('node:') || /\/webgpu\/|engine\/node\.js|device\/node\.js|native-stderr/.test(f))).toEqual([]);
    const js = r.outputFiles[0]!.text;
    expect(js).not.toContain('import.meta');
    expect(js).toContain('fn conv_fwd');
    expect(js).not.toContain('dawn (node)');

    // The bundle on Dawn standing in for navigator.gpu: the browser entry's init() and its
    // inlined shaders do real work.
    writeFileSync(join(app, 'bundle.mjs'), js);
    const code = `
      import { create, globals } from 'webgpu';
      Object.assign(globalThis, globals);
      globalThis.__gpu = create([]);
      Object.defineProperty(globalThis, 'navigator', { value: { gpu: globalThis.__gpu }, configurable: true });
      const m = await import('./bundle.mjs');
      const device = await m.init();
      const t = m.tensor([1, 2, 3]);
      console.log(JSON.stringify({ kind: device.kind ?? null, sum: Array.from(await t.add(t).data()) }));`;
    const out = run(process.execPath, ['--input-type=module', '-e', code], app);
    expect(JSON.parse(out.trim().split('\n').at(-1)!).sum).toEqual([2, 4, 6]);
  });

  it('builds with Vite (the bundler the repository uses) from the browser entry', () => {
    const site = join(tmp, 'site');
    mkdirSync(site);
    symlinkSync(join(app, 'node_modules'), join(site, 'node_modules'), 'dir');
    writeFileSync(join(site, 'package.json'), JSON.stringify({ name: 'site', private: true, type: 'module' }));
    writeFileSync(join(site, 'index.html'), '<script type="module" src="./main.js"></script>\n');
    writeFileSync(join(site, 'main.js'), "import { init, tensor } from 'medgrad';\nimport { Linear } from 'medgrad/nn';\nconsole.log(init, tensor, Linear);\n");
    run(process.execPath, [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--minify', 'false', '--logLevel', 'warn'], site);
    const assets = join(site, 'dist', 'assets');
    const js = readdirSync(assets).filter((f) => f.endsWith('.js')).map((f) => readFileSync(join(assets, f), 'utf8')).join('\n');
    expect(js).toContain('fn conv_fwd');
    expect(js).toContain('navigator.gpu is missing');   // the browser device module's message
    expect(js).not.toContain('dawn (node)');            // the Node device module's backend name
    expect(js).not.toMatch(/import\.meta\.glob|from ?["']node:|from ?["']webgpu["']/);
  });

  it("says where the medgrad command lives instead of failing on the missing sources", () => {
    const bin = join(app, 'node_modules', 'medgrad', manifest.bin!.medgrad!);
    const r = spawnSync(process.execPath, [bin, '--help'], { cwd: app, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/runs from a clone of the repository.*import \{ init, tensor \} from 'medgrad'/);
  });
});
