// The GPU-shaped kernel variants (issue 14), each forced through the registry and checked against
// the float64 reference on random shapes (odd sizes, batch 1, sizes off the tile grid): subgroup
// row reductions and softmax (where the adapter has `subgroups`), coalesced matmul tiles and
// tiled convolution (forward and, through the same kernel, input gradient). Then the table
// rules: lavapipe keeps today's kernels, a GPU gets the new ones without a tune cache.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { isHardwareGpu, VariantPolicy, type Capabilities, type KernelDef } from '../engine/kernels/variants.js';
import { REDUCE_ROWS } from '../engine/kernels/launch.js';
import { MATMUL, matmulKernel } from '../engine/ops/linalg.js';
import { CONV_FORWARD, CONV_WEIGHT_GRAD } from '../engine/ops/conv.js';
import { ROW_KERNEL } from '../engine/ops/softmax.js';
import * as R from '../engine/reference/float64.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';

// The device first: which tests run depends on its features.
await gpu();
afterEach(() => { for (const k of ['reduce.rows', 'softmax.rows', 'matmul', 'conv2d.forward', 'conv2d.weightGrad', 'conv2d.weightGrad.algorithm']) E.getEngine().policy.force(k, null); });

const hasSubgroups = () => E.getDevice().features.has('subgroups');
const SKIP_SUBGROUPS = 'the adapter has no `subgroups` feature';

/** Forces `variant` of `k` and checks that the policy can run it for `shape` (else the force would silently fall back). */
function force<S>(k: KernelDef<S>, variant: string, shape: S): void {
  const policy = E.getEngine().policy;
  expect(policy.candidates(k, shape).map((v) => v.name), `${k.name} runs ${variant} for ${JSON.stringify(shape)}`).toContain(variant);
  policy.force(k.name, variant);
}

const first = (better: (a: number, b: number) => boolean) => (a: R.Arr): R.Arr => {
  const [rows, len] = a.shape as [number, number];
  return R.arr([rows], Array.from({ length: rows }, (_, r) => {
    let at = 0;
    for (let k = 0; k < len; k++) {
      const v = a.data[r * len + k]!, w = a.data[r * len + at]!;
      if (Number.isNaN(v)) { at = k; break; }
      if (better(v, w)) at = k;
    }
    return at;
  }));
};

describe(`subgroup row reductions (reduce.rows; skipped where ${SKIP_SUBGROUPS})`, () => {
  const shapes: Array<[number, number]> = [[1, 1], [3, 7], [5, 300], [1, 9001], [2, 20001], [300, 5]];
  const refs = {
    sum: (a: R.Arr) => R.sum(a, [1]), max: (a: R.Arr) => R.max(a, [1]), min: (a: R.Arr) => R.min(a, [1]),
    argmax: first((v, w) => v > w), argmin: first((v, w) => v < w),
  };
  for (const variant of ['subgroup-row', 'subgroup-split']) {
    for (const [rows, len] of shapes) {
      if (variant === 'subgroup-split' && len <= 8192) continue;
      it.skipIf(!hasSubgroups())(`${variant} [${rows}, ${len}]: sum, max, min, argmax, argmin, ties and NaN`, async () => {
        force(REDUCE_ROWS, variant, { rows, len });
        const r = new Rng(rows * 7 + len);
        // Random reals, then small integers (many ties: the lowest index must win), then NaNs.
        const reals = r.arr([rows, len], -1, 1);
        const ties = R.map(r.arr([rows, len], 0, 4), Math.floor);
        const nans = R.map(reals, (v) => v);
        for (let row = 0; row < rows; row += 2) for (const k of [Math.floor(len / 2), len - 1]) nans.data[row * len + k] = NaN;
        for (const data of [reals, ties, nans]) {
          const x = toTensor(data);
          for (const [name, ref] of Object.entries(refs)) {
            const y = E.tidy(() => (E as unknown as Record<string, (t: E.Tensor, axis: number) => E.Tensor>)[name]!(x, 1));
            const tol = name === 'sum' ? { atol: 2e-6 * len, rtol: 1e-5 } : { atol: 0, rtol: 0 };
            expectClose(await y.data(), y.shape, ref(data), tol, `${variant} ${name} [${rows}, ${len}]`);
            y.dispose();
          }
          x.dispose();
        }
      });
    }
  }
});

describe(`subgroup softmax rows (softmax.rows; skipped where ${SKIP_SUBGROUPS})`, () => {
  for (const [n, c] of [[1, 1], [4, 7], [3, 130], [2, 1000], [67, 10]] as Array<[number, number]>) {
    it.skipIf(!hasSubgroups())(`subgroup [${n}, ${c}]: softmax, logSoftmax, cross-entropy and its gradient`, async () => {
      force(ROW_KERNEL, 'subgroup', { rows: n, cols: c });
      const r = new Rng(n * 31 + c);
      const a = r.arr([n, c], -6, 6);
      const labels = Array.from({ length: n }, () => r.int(0, c - 1));
      const x = toTensor(a, true);
      const y = E.tensor(Int32Array.from(labels), [n]);
      const tol = { atol: 2e-6, rtol: 2e-5 };
      const [s, ls, ce] = [E.softmax(x, -1), E.logSoftmax(x, -1), E.crossEntropy(x, y, { reduction: 'sum' })];
      expectClose(await s!.data(), s!.shape, R.softmax(a), tol, 'softmax');
      expectClose(await ls!.data(), ls!.shape, R.softmax(a, true), tol, 'logSoftmax');
      expectClose(await ce!.data(), ce!.shape, R.arr([], [R.sum(R.crossEntropy(a, labels)).data[0]!]), { atol: 1e-5 * n, rtol: 2e-5 }, 'crossEntropy');
      const [g] = E.grad(ce!, [x]);
      const want = R.softmax(a);
      labels.forEach((k, i) => { want.data[i * c + k]! -= 1; });
      expectClose(await g!.data(), g!.shape, want, tol, 'crossEntropy gradient');
      E.dispose([s!, ls!, ce!, g!, x, y]);
    });
  }
});

const transpose = (a: R.Arr): R.Arr => R.permute(a, [...a.shape.keys()].map((i) => (i === a.shape.length - 2 ? i + 1 : i === a.shape.length - 1 ? i - 1 : i)));

describe('coalesced matmul tiles (matmul)', () => {
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[1, 1], [1, 1], false, false], [[67, 129], [129, 66], false, false], [[70, 130], [70, 68], true, false],
    [[9, 5], [12, 5], false, true], [[3, 33, 20], [20, 44], false, false], [[33, 20], [2, 20, 44], false, false],
    [[2, 40, 33], [2, 36, 40], true, true], [[1, 130, 17], [17, 3], false, false], [[200, 1], [1, 131], false, false],
  ];
  for (const v of MATMUL.variants.filter((x) => x.family === 'matmul-tiled')) {
    it(`${v.name}: odd sizes, batch 1, transposes, batch broadcasting`, async () => {
      for (const [sa, sb, ta, tb] of cases) {
        const r = new Rng(sa.length * 100 + sb[0]! + sa[0]!);
        const a = r.arr(sa, -1, 1), b = r.arr(sb, -1, 1);
        E.getEngine().policy.force('matmul', v.name);
        const c = E.tidy(() => matmulKernel(toTensor(a), toTensor(b), ta, tb));
        expectClose(await c.data(), c.shape, R.matmul(ta ? transpose(a) : a, tb ? transpose(b) : b), { atol: 3e-5, rtol: 1e-5 }, `${v.name} [${sa}]${ta ? '^T' : ''} x [${sb}]${tb ? '^T' : ''}`);
        c.dispose();
      }
    });
  }
});

describe('tiled convolution (conv2d.forward)', () => {
  type Case = [number[], number[], number | [number, number], [number, number, number, number]];
  const cases: Case[] = [
    [[1, 3, 7, 6], [4, 3, 3, 3], 1, [0, 0, 0, 0]], [[2, 2, 6, 7], [3, 2, 3, 3], 2, [0, 1, 1, 1]],
    [[2, 3, 5, 5], [2, 3, 1, 1], 2, [0, 0, 0, 0]], [[1, 2, 9, 8], [3, 2, 3, 2], [2, 1], [1, 0, 2, 1]],
    [[3, 1, 8, 8], [2, 1, 7, 7], 1, [3, 3, 3, 3]], [[1, 5, 11, 13], [37, 5, 3, 3], 1, [1, 1, 1, 1]],
    [[2, 17, 9, 9], [70, 17, 3, 3], 1, [1, 1, 1, 1]],
  ];
  for (const v of CONV_FORWARD.variants.filter((x) => x.family === 'conv2d-tiled')) {
    it(`${v.name}: forward with bias and the input gradient against float64`, async () => {
      for (const [xs, wsh, stride, pads] of cases) {
        const r = new Rng(xs[1]! * 13 + wsh[0]!);
        const [sh, sw] = typeof stride === 'number' ? [stride, stride] : stride;
        const xa = r.arr(xs, -1, 1), wa = r.arr(wsh, -1, 1), ba = r.arr([wsh[0]!], -1, 1);
        const yRef = R.conv2d(xa, wa, ba, sh, sw, pads);
        const dyA = r.arr(yRef.shape, -1, 1);
        E.getEngine().policy.force('conv2d.forward', v.name);
        const x = toTensor(xa, true), w = toTensor(wa), b = toTensor(ba), dy = toTensor(dyA);
        const y = E.conv2d(x, w, b, { stride, padding: pads });
        const [dx] = E.grad(y, [x], { gradient: dy });
        const what = `${v.name} [${xs}] * [${wsh}] stride ${JSON.stringify(stride)} pads ${pads}`;
        expectClose(await y.data(), y.shape, yRef, { atol: 3e-5, rtol: 1e-5 }, what);
        expectClose(await dx!.data(), dx!.shape, R.conv2dInputGrad(dyA, wa, xs, sh, sw, pads), { atol: 3e-5, rtol: 1e-5 }, `${what} input gradient`);
        E.dispose([x, w, b, dy, y, dx!]);
      }
    });
  }
});

describe('tiled weight gradient (conv2d.weightGrad)', () => {
  // Odd sizes, batch 1, strides, uneven padding, more channels and columns than one tile, and
  // more pixels than one split (the partial sums of several slices added by the caller).
  type Case = [number[], number[], number | [number, number], [number, number, number, number]];
  const cases: Case[] = [
    [[1, 3, 7, 6], [4, 3, 3, 3], 1, [0, 0, 0, 0]], [[2, 2, 6, 7], [3, 2, 3, 3], 2, [0, 1, 1, 1]],
    [[1, 2, 9, 8], [3, 2, 3, 2], [2, 1], [1, 0, 2, 1]], [[3, 1, 8, 8], [2, 1, 7, 7], 1, [3, 3, 3, 3]],
    [[2, 9, 11, 13], [70, 9, 3, 3], 1, [1, 1, 1, 1]], [[5, 4, 29, 31], [6, 4, 3, 3], 1, [1, 1, 1, 1]],
  ];
  for (const v of CONV_WEIGHT_GRAD.variants.filter((x) => x.family === 'conv2d-wgrad-tiled')) {
    it(`${v.name}: the weight gradient against float64`, async () => {
      for (const [xs, wsh, stride, pads] of cases) {
        const r = new Rng(xs[1]! * 7 + wsh[0]!);
        const [sh, sw] = typeof stride === 'number' ? [stride, stride] : stride;
        const xa = r.arr(xs, -1, 1), wa = r.arr(wsh, -1, 1);
        const dyA = r.arr(R.conv2d(xa, wa, null, sh, sw, pads).shape, -1, 1);
        E.getEngine().policy.force('conv2d.weightGrad.algorithm', 'direct');
        E.getEngine().policy.force('conv2d.weightGrad', v.name);
        const x = toTensor(xa), w = toTensor(wa, true), dy = toTensor(dyA);
        const y = E.conv2d(x, w, undefined, { stride, padding: pads });
        const [dw] = E.grad(y, [w], { gradient: dy });
        expectClose(await dw!.data(), dw!.shape, R.conv2dWeightGrad(dyA, xa, wsh, sh, sw, pads), { atol: 1e-4, rtol: 1e-5 }, `${v.name} [${xs}] * [${wsh}] stride ${JSON.stringify(stride)} pads ${pads}`);
        E.dispose([x, w, dy, y, dw!]);
      }
    });
  }
});

describe('table rules by adapter', () => {
  const limits = { maxComputeInvocationsPerWorkgroup: 256 };
  const lavapipe: Capabilities = { features: new Set(['subgroups', 'shader-f16']), limits, adapter: { vendor: 'mesa', architecture: 'software', description: 'llvmpipe: Mesa 25.0.7', isFallbackAdapter: true } };
  const h100: Capabilities = { features: new Set(['subgroups', 'shader-f16']), limits, adapter: { vendor: 'nvidia', architecture: 'unknown', description: 'NVIDIA: 580.159.04' } };
  const noSubgroups: Capabilities = { ...h100, features: new Set() };
  type Geometry = Parameters<NonNullable<typeof CONV_FORWARD.bucket>>[0];
  const conv = (Cout: number): Geometry => ({ N: 8, Cin: 32, H: 56, W: 56, Cout, KH: 3, KW: 3, OH: 56, OW: 56, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1 });

  it('recognises software adapters, fallback adapters and unknown ones as not a GPU', () => {
    expect(isHardwareGpu(h100)).toBe(true);
    expect(isHardwareGpu(lavapipe)).toBe(false);
    expect(isHardwareGpu({ ...h100, adapter: { vendor: 'google', architecture: 'swiftshader' } })).toBe(false);
    expect(isHardwareGpu({ ...h100, adapter: { vendor: 'unknown', architecture: 'unknown' } })).toBe(false);
    expect(isHardwareGpu({ features: new Set(), limits })).toBe(false);
    // This machine's own adapter, as the engine describes it.
    expect(isHardwareGpu({ features: new Set(), limits, adapter: E.getDevice().info })).toBe(!/llvmpipe|swiftshader|software/i.test(JSON.stringify(E.getDevice().info)));
  });

  it('keeps lavapipe on today\'s kernels', () => {
    const p = new VariantPolicy(lavapipe);
    expect(p.pick(REDUCE_ROWS, { rows: 4, len: 100_000 }).name).toBe('workgroup-per-row');
    expect(p.pick(REDUCE_ROWS, { rows: 1000, len: 50 }).name).toBe('invocation-per-row');
    expect(p.pick(ROW_KERNEL, { rows: 32, cols: 10 }).name).toBe('workgroup-per-row');
    expect(p.pick(MATMUL, { M: 64, N: 64, K: 64, batch: 1, bRowContiguous: true }).name).toBe('rows');
    expect(p.pick(MATMUL, { M: 63, N: 63, K: 64, batch: 1, bRowContiguous: true }).name).toBe('tiled');
    expect(p.pick(CONV_FORWARD, conv(64)).name).toBe('direct-rb16');
    expect(p.pick(CONV_FORWARD, conv(3)).name).toBe('direct-rb4');
    expect(p.pick(CONV_WEIGHT_GRAD, conv(64)).name).toBe('split-k');
  });

  it.skipIf(isHardwareGpu({ features: new Set(), limits, adapter: E.getDevice().info }))('keeps this machine\'s software adapter on today\'s kernels too (its real capabilities, no tune cache)', () => {
    const d = E.getDevice();
    const p = new VariantPolicy({ features: d.features, limits: d.limits as unknown as Record<string, number>, adapter: d.info });
    expect(p.pick(REDUCE_ROWS, { rows: 4, len: 100_000 }).name).toBe('workgroup-per-row');
    expect(p.pick(ROW_KERNEL, { rows: 32, cols: 10 }).name).toBe('workgroup-per-row');
    expect(p.pick(MATMUL, { M: 512, N: 512, K: 512, batch: 1, bRowContiguous: true }).name).toBe('rows');
    expect(p.pick(CONV_FORWARD, conv(64)).name).toBe('direct-rb16');
  });

  it('gives a GPU the subgroup and tiled variants without a tune cache, and subgroup ones only where it has the feature', () => {
    const p = new VariantPolicy(h100);
    expect(p.pick(REDUCE_ROWS, { rows: 4, len: 100_000 }).name).toBe('subgroup-split');
    expect(p.pick(REDUCE_ROWS, { rows: 5000, len: 3000 }).name).toBe('subgroup-row');
    expect(p.pick(REDUCE_ROWS, { rows: 5000, len: 9 }).name).toBe('invocation-per-row');
    expect(p.pick(ROW_KERNEL, { rows: 32, cols: 10 }).name).toBe('subgroup');
    expect(p.pick(MATMUL, { M: 512, N: 512, K: 512, batch: 1, bRowContiguous: true }).name).toBe('coalesced-32x32');
    expect(p.pick(MATMUL, { M: 4096, N: 4096, K: 4096, batch: 1, bRowContiguous: true }).name).toBe('rows');
    expect(p.pick(CONV_FORWARD, conv(64)).name).toBe('tiled-c64p64');
    expect(p.pick(CONV_FORWARD, conv(32)).name).toBe('tiled-c32p128');
    expect(p.pick(CONV_FORWARD, conv(3)).name).toBe('tiled-c16p64');
    expect(p.pick(CONV_WEIGHT_GRAD, conv(64)).name).toBe('tiled-c64k64');
    expect(p.pick(CONV_WEIGHT_GRAD, conv(3)).name).toBe('tiled-c16k64');
    const bare = new VariantPolicy(noSubgroups);
    expect(bare.pick(REDUCE_ROWS, { rows: 4, len: 100_000 }).name).toBe('workgroup-per-row');
    expect(bare.pick(ROW_KERNEL, { rows: 32, cols: 10 }).name).toBe('workgroup-per-row');
    // A tuned choice still wins over the GPU's table rule.
    const tuned = new VariantPolicy(h100, { 'conv2d.forward': { [CONV_FORWARD.bucket!(conv(64))]: 'direct-rb16' } });
    expect(tuned.pick(CONV_FORWARD, conv(64)).name).toBe('direct-rb16');
  });
});
