// The source's shape: the engine's folders form layers that import only downward (no cycle
// between folders), nothing in the engine reaches nn/ or experiments/, and no source file passes
// 300 lines. Type-only imports are allowed anywhere (they vanish at run time).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '..');

/** The engine's layers, lowest first; a file may import its own layer or lower ones. */
const LAYERS: string[][] = [
  ['engine/shape.ts', 'engine/dtype.ts', 'engine/half.ts', 'engine/version.ts', 'engine/context.ts', 'engine/random.ts', 'engine/reference'],
  ['engine/device'],
  ['engine/buffers'],
  ['engine/tensor'],
  ['engine/kernels'],
  ['engine/profiler'],
  ['engine/autograd'],
  ['engine/ops'],
  ['engine/engine.ts', 'engine/session.ts', 'engine/tune.ts', 'engine/index.ts', 'engine/node.ts', 'engine/browser.ts'],
];

function files(dir: string): string[] {
  return readdirSync(join(ROOT, dir)).flatMap((f) => {
    const p = join(dir, f);
    return statSync(join(ROOT, p)).isDirectory() ? files(p) : p.endsWith('.ts') && !p.endsWith('.d.ts') ? [p] : [];
  });
}

const layerOf = (file: string) => LAYERS.findIndex((l) => l.some((p) => file === p || file.startsWith(p + '/')));

/** Value imports (not `import type`) of a file, as repository paths. */
function valueImports(file: string): string[] {
  const src = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of src.matchAll(/^\s*(import|export)\s+(type\s+)?(?:[^'"]*?\s+from\s+)?'(\.[^']+)'/gm)) {
    if (m[2]) continue;
    out.push(relative(ROOT, resolve(ROOT, dirname(file), m[3]!)).replace(/\.js$/, '.ts'));
  }
  return out;
}

describe('layers', () => {
  const engine = files('engine');

  it('places every engine file in a layer', () => {
    expect(engine.filter((f) => layerOf(f) < 0)).toEqual([]);
  });

  it('imports only its own layer or lower ones, and never nn/ or experiments/', () => {
    const bad: string[] = [];
    for (const f of engine) {
      for (const dep of valueImports(f)) {
        if (!dep.startsWith('engine/')) { bad.push(`${f} -> ${dep}`); continue; }
        if (layerOf(dep) > layerOf(f)) bad.push(`${f} (layer ${layerOf(f)}) -> ${dep} (layer ${layerOf(dep)})`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has no import cycle between engine folders', () => {
    // Files directly in engine/ stand for themselves (the base ones sit below every folder).
    const folder = (f: string) => (dirname(f) === 'engine' ? f : dirname(f));
    const edges = new Map<string, Set<string>>();
    for (const f of engine) for (const d of valueImports(f)) if (folder(d) !== folder(f)) (edges.get(folder(f)) ?? edges.set(folder(f), new Set()).get(folder(f))!).add(folder(d));
    const state = new Map<string, number>();
    const cycle: string[] = [];
    const visit = (n: string, path: string[]): void => {
      if (state.get(n) === 2) return;
      if (state.get(n) === 1) { cycle.push([...path, n].join(' -> ')); return; }
      state.set(n, 1);
      for (const m of edges.get(n) ?? []) visit(m, [...path, n]);
      state.set(n, 2);
    };
    for (const n of edges.keys()) visit(n, []);
    expect(cycle).toEqual([]);
  });
});

describe('file size', () => {
  it('keeps every source file at 300 lines or fewer', () => {
    const all = ['engine', 'nn', 'experiments', 'bench', 'test'].flatMap(files);
    const shaders = readdirSync(join(ROOT, 'shaders')).map((f) => join('shaders', f));
    const long = [...all, ...shaders].map((f) => [f, readFileSync(join(ROOT, f), 'utf8').split('\n').length - 1] as const).filter(([, n]) => n > 300);
    expect(long).toEqual([]);
  });
});
