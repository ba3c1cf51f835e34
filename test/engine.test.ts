// The engine's structure at work: the variant policy (requirements, table rule, tuned choices,
// the tune cache on disk), the autotuner, graph nodes owning their saved tensors, and the
// elementwise WGSL generated from the op records.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { VariantPolicy, type KernelDef } from '../engine/kernels/variants.js';
import { shaderSource } from '../engine/kernels/shaders.js';
import { fileTuneStore } from '../engine/kernels/tune-store.js';
import { tune } from '../engine/tune.js';
import { MATMUL } from '../engine/ops/linalg.js';
import { ENGINE_VERSION } from '../engine/version.js';
import { gpu } from './helpers/setup.js';

const cache = mkdtempSync(join(tmpdir(), 'medgrad-tune-'));
beforeAll(async () => { process.env.MEDGRAD_CACHE_DIR = cache; await gpu(); });
afterAll(() => rmSync(cache, { recursive: true, force: true }));

const k: KernelDef<{ n: number }> = {
  name: 'test.kernel',
  variants: [
    { name: 'fast-f16', family: 'f', entry: 'a', requires: { features: ['shader-f16'] } },
    { name: 'big-groups', family: 'f', entry: 'b', requires: { limits: { maxComputeInvocationsPerWorkgroup: 1024 } } },
    { name: 'even', family: 'f', entry: 'c', serves: (s) => s.n % 2 === 0 },
    { name: 'any', family: 'f', entry: 'd' },
  ],
  bucket: (s) => `n${s.n}`,
};

describe('variant policy', () => {
  it('never picks a variant whose features, limits or shapes the adapter or call lacks', () => {
    const bare = new VariantPolicy({ features: new Set(), limits: { maxComputeInvocationsPerWorkgroup: 256 } });
    expect(bare.candidates(k, { n: 3 }).map((v) => v.name)).toEqual(['any']);
    expect(bare.pick(k, { n: 4 }).name).toBe('even');
    const rich = new VariantPolicy({ features: new Set(['shader-f16']), limits: { maxComputeInvocationsPerWorkgroup: 1024 } });
    expect(rich.candidates(k, { n: 3 }).map((v) => v.name)).toEqual(['fast-f16', 'big-groups', 'any']);
  });

  it('prefers a tuned choice for the bucket, unless that variant cannot run the shape', () => {
    const p = new VariantPolicy({ features: new Set(), limits: {} }, { 'test.kernel': { n4: 'any', n3: 'even' } });
    expect(p.pick(k, { n: 4 }).name).toBe('any');
    expect(p.pick(k, { n: 3 }).name).toBe('any');
    p.force('test.kernel', 'even');
    expect(p.pick(k, { n: 6 }).name).toBe('even');
    p.force('test.kernel', null);
    expect(p.pick(k, { n: 6 }).name).toBe('even');
  });

  it('takes limits from the device, not from WebGPU defaults', () => {
    expect(E.getEngine().runtime.maxWorkgroups).toBe(E.getDevice().limits.maxComputeWorkgroupsPerDimension);
  });
});

describe('autotuning', () => {
  it('times the variants a workload uses, keeps the fastest, and a new engine reads them from the cache', async () => {
    const e = E.getEngine();
    const a = E.rand([40, 64]), b = E.rand([64, 48]);
    const rows = await tune(e, () => E.tidy(() => { E.matmul(a, b); E.sum(E.rand([300, 7]), 1); }), { reps: 1 });
    const mm = rows.find((r) => r.kernel === 'matmul')!;
    // Every variant this adapter can run (the tensor-core one needs an adapter feature).
    const runnable = e.policy.candidates(MATMUL, { M: 40, N: 48, K: 64, batch: 1, bRowContiguous: true }).map((v) => v.name);
    expect(Object.keys(mm.times).sort()).toEqual(runnable.sort());
    expect(Object.values(mm.times).every((t) => t > 0)).toBe(true);
    expect(mm.chosen).toBe(Object.entries(mm.times).sort((x, y) => x[1] - y[1])[0]![0]);
    expect(rows.some((r) => r.kernel === 'reduce.rows')).toBe(true);
    // The product is unchanged whichever variant runs it.
    const want = await E.matmul(a, b).data();
    // (Bit for bit among the float32 kernels; the tensor cores round inputs to f16, checked in subgroup-matrix.test.ts.)
    for (const v of runnable.filter((n) => !n.startsWith('subgroup-matrix'))) {
      e.policy.force('matmul', v);
      expect(Array.from(await E.matmul(a, b).data())).toEqual(Array.from(want));
    }
    e.policy.force('matmul', null);
    const file = e.saveTuning()!;
    expect(file.startsWith(cache)).toBe(true);
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { version: string; choices: Record<string, Record<string, string>> };
    expect(saved.version).toBe(ENGINE_VERSION);
    expect(saved.choices.matmul![mm.bucket]).toBe(mm.chosen);
    expect(fileTuneStore(e.device.info).load()).toEqual(saved.choices);
    E.dispose([a, b]);
  });

  it('tunes batch norm\'s passes too (statistics, gradient sums, normalise, input gradient), per aligned or odd plane', async () => {
    const e = E.getEngine();
    const rm = E.zeros([3]), rv = E.ones([3]);
    const step = (hw: [number, number]) => {
      const x = E.rand([2, 3, ...hw], { requiresGrad: true }), g = E.rand([3], { requiresGrad: true }), b = E.zeros([3], { requiresGrad: true });
      E.sum(E.square(E.batchNormRelu2d(x, g, b, rm, rv, null, { training: true }))).backward();
      E.dispose([x.grad!, g.grad!, b.grad!]);
    };
    const rows = await tune(e, () => E.tidy(() => { step([6, 6]); step([5, 3]); }), { reps: 1 });
    for (const kernel of ['batchnorm.stats', 'batchnorm.sums', 'batchnorm.apply', 'batchnorm.backward']) {
      const k = E.kernels().find((d) => d.name === kernel)!;
      for (const [bucket, HW] of [['n2.c4.hw64', 36], ['n2.c4.hw16.odd', 15]] as const) {
        const shape = { N: 2, C: 3, HW };
        const candidates = e.policy.candidates(k, shape).map((v) => v.name).sort();
        const row = rows.find((r) => r.kernel === kernel && r.bucket === bucket);
        // A shape only one variant serves (the vec4 forms need aligned planes) has nothing to tune.
        if (candidates.length < 2) { expect(row, `${kernel} ${bucket}`).toBeUndefined(); continue; }
        expect(Object.keys(row!.times).sort(), `${kernel} ${bucket}`).toEqual(candidates);
        expect(e.policy.pick(k, shape).name).toBe(row!.chosen);
      }
    }
    expect(rows.filter((r) => r.kernel.startsWith('batchnorm.')).length).toBeGreaterThanOrEqual(6);
    E.dispose([rm, rv]);
  });

  it('keeps the engine version equal to the package version', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(ENGINE_VERSION).toBe(pkg.version);
  });
});

describe('graph nodes own their saved tensors', () => {
  const live = () => E.memory().tensors;
  it('frees max-pooling indices and batch-norm statistics after backward, on dispose, and at once without grad', () => {
    const before = live();
    const x = E.rand([2, 3, 6, 6], { requiresGrad: true });
    const w = E.ones([3], { requiresGrad: true }), b = E.zeros([3], { requiresGrad: true });
    const rm = E.zeros([3]), rv = E.ones([3]);
    let t0 = live();
    const pooled = E.maxPool2d(x, 2);
    const y = E.batchNorm2d(pooled, w, b, rm, rv, { training: true });
    // Pooled output and its indices, normalised output and its mean and inverse deviation.
    expect(live() - t0).toBe(5);
    const loss = E.sum(y);
    t0 = live();
    const [g] = E.grad(loss, [x]);
    // The gradient arrives; the three saved tensors go with the consumed graph.
    expect(live() - t0).toBe(1 - 3);
    t0 = live();
    const p = E.noGrad(() => E.maxPool2d(x, 2));
    expect(live() - t0).toBe(1); // no node, so its indices were freed at once
    t0 = live();
    const z = E.maxPool2d(x, 2);
    expect(live() - t0).toBe(2);
    z.dispose();
    expect(live() - t0).toBe(0); // disposing the output released its node's indices
    E.dispose([g, y, pooled, loss, p, x, w, b, rm, rv]);
    expect(live()).toBe(before);
  });
});

describe('generated kernels', () => {
  it('elementwise.wgsl gets one case per unary record and per binary scalar form, from the records', () => {
    const src = shaderSource('elementwise');
    expect(src).not.toMatch(/@generated/);
    for (const op of E.OPS.filter((o) => o.kind === 'unary' || o.kind === 'binary' || o.kind === 'compare')) {
      expect(src, op.name).toContain(`return ${op.wgsl!};`);
    }
  });
});
