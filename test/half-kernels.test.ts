// float16 storage forms of the kernels a mixed-precision training step runs (issue 14): each
// variant forced through the registry on float16 inputs, against the float64 reference of the
// float16-rounded inputs. Tolerance: the one rounding of the output to float16 plus float32
// arithmetic, HALF_TOL below; reductions over many terms get an absolute term scaled
// by the terms' size. The float32-only variants are never picked for float16, and forcing one
// is an error.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { BINARY, UNARY, ACCUMULATE, accumulateKernel } from '../engine/kernels/launch.js';
import { CONV_ALGORITHM, CONV_FORWARD, CONV_WEIGHT_GRAD, CONV_WEIGHT_GRAD_ALGORITHM } from '../engine/ops/conv.js';
import { MATMUL } from '../engine/ops/linalg.js';
import { VariantPolicy } from '../engine/kernels/variants.js';
import * as R from '../engine/reference/float64.js';
import { halfArr } from '../engine/reference/half.js';
import { expectClose, gpu, Rng } from './helpers/setup.js';
import { check, force, forceName, half, HALF_TOL, releaseForced } from './helpers/half.js';

await gpu();
const hasF16 = E.getDevice().features.has('shader-f16');
afterEach(releaseForced);

describe.skipIf(!hasF16)('elementwise on float16 storage', () => {
  const r = new Rng(11);
  for (const [variant, n] of [['vec4', 64 * 33], ['scalar', 33 * 65]] as const) {
    it(`unary ${variant}: relu, exp, affine, [${n}]`, async () => {
      force(UNARY, variant, { n, half: true });
      const [a, t] = half(r, [n]);
      await check(E.relu(t), R.map(a, (x) => Math.max(x, 0)), HALF_TOL, 'relu');
      await check(E.exp(t), R.map(a, Math.exp), HALF_TOL, 'exp');
      await check(E.affine(t, 0.5, -1), R.map(a, (x) => 0.5 * x - 1), HALF_TOL, 'affine');
    });
  }
  for (const [variant, sa, sb] of [['same4', [64, 33], [64, 33]], ['same', [33, 65], [33, 65]], ['broadcast', [4, 1, 3], [2, 1]]] as const) {
    it(`binary ${variant}: add, mul [${sa}] with [${sb}]`, async () => {
      const [a, ta] = half(r, [...sa]);
      const [b, tb] = half(r, [...sb]);
      const shape = R.zip([a, b], (x) => x).shape;
      force(BINARY, variant, { n: shape.reduce((x, y) => x * y, 1), same: variant !== 'broadcast', half: true });
      await check(E.add(ta, tb), R.zip([a, b], (x, y) => x + y), HALF_TOL, 'add');
      await check(E.mul(ta, tb), R.zip([a, b], (x, y) => x * y), HALF_TOL, 'mul');
    });
  }
  for (const [variant, n] of [['vec4', 64], ['scalar', 65]] as const) {
    it(`accumulate ${variant} [${n}]`, async () => {
      force(ACCUMULATE, variant, { n, half: true });
      const [a, ta] = half(r, [n]);
      const [b, tb] = half(r, [n]);
      await check(accumulateKernel(ta, tb), R.zip([a, b], (x, y) => x + y), HALF_TOL, 'accumulate');
    });
  }
  it('float16 with float32 promotes to float32, as PyTorch', async () => {
    const [a, ta] = half(r, [3, 5]);
    const b = r.arr([5]);
    const y = E.add(ta, E.tensor(Float32Array.from(b.data), [5]));
    expect(y.dtype).toBe('float32');
    expectClose(await y.data(), y.shape, R.zip([a, b], (x, z) => x + z), { atol: 1e-6, rtol: 1e-6 }, 'promoted add');
  });
  it('overflow in float16 storage gives Infinity, NaN propagates', async () => {
    const t = E.tensor([60000, Number.NaN, -3], [3], { dtype: 'float16' });
    const y = await E.mul(t, 2).data();
    expect(y[0]).toBe(Infinity);
    expect(Number.isNaN(y[1]!)).toBe(true);
    expect(y[2]).toBe(-6);
  });
});

describe.skipIf(!hasF16)('copies of float16 storage (copy@f16)', () => {
  const r = new Rng(12);
  it('transpose, strided permute, slice and pad are exact', async () => {
    const [a, t] = half(r, [3, 5, 7]);
    for (const [what, y, ref] of [
      ['transpose', E.transpose(t.reshape([15, 7])), R.permute(R.arr([15, 7], a.data), [1, 0])],
      ['permute', E.permute(t, [2, 0, 1]), R.permute(a, [2, 0, 1])],
      ['slice', E.slice(t, [1, 2, 3], [3, 5, 6]), R.slice(a, [1, 2, 3], [3, 5, 6])],
    ] as const) {
      expect(y.dtype, what).toBe('float16');
      expectClose(await y.data(), y.shape, ref, { atol: 0, rtol: 0 }, what);
    }
    const p = E.pad(t, [[0, 0], [0, 0], [1, 2]]);
    expect(p.shape).toEqual([3, 5, 10]);
    expect((await p.data())[0]).toBe(0);
    expect((await p.data())[1]).toBe(a.data[0]);
  });
});


describe.skipIf(!hasF16)('direct convolution on float16 storage (float32 weight gradient)', () => {
  const r = new Rng(13);
  // Sums of up to Cin*K*K products of values in [-1, 1]: the float16 output's rounding dominates.
  const CONV_TOL = { atol: 2e-4, rtol: 2 ** -10 };
  const cases: Array<[number[], number[], number, 'same' | 'valid']> = [[[1, 3, 7, 6], [4, 3, 3, 3], 1, 'same'], [[2, 5, 9, 8], [9, 5, 3, 3], 2, 'same'], [[2, 4, 5, 5], [3, 4, 1, 1], 2, 'valid'], [[3, 2, 8, 8], [17, 2, 3, 3], 1, 'valid']];
  for (const rb of [16, 8, 4]) {
    for (const [xs, ws, s, padding] of cases) {
      it(`direct-rb${rb}: [${xs}] * [${ws}] stride ${s} ${padding}: y, dx (float16), dw (float32)`, async () => {
        const [x, tx] = half(r, xs, -1, 1);
        const [w, tw] = half(r, ws, -1, 1);
        const [b, tb] = half(r, [ws[0]!], -1, 1);
        tx.requiresGrad = tw.requiresGrad = tb.requiresGrad = true;
        const pads = padding === 'same' ? R.tfSamePads(xs[2]!, xs[3]!, ws[2]!, ws[3]!, s, s) : [0, 0, 0, 0] as [number, number, number, number];
        const y = R.conv2d(x, w, b, s, s, pads);
        const g = halfArr(r.arr(y.shape, -1, 1));
        force(CONV_ALGORITHM, 'direct', { N: 1, Cin: 1, H: 1, W: 1, Cout: 1, KH: 1, KW: 1, OH: 1, OW: 1, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, half: true });
        force(CONV_WEIGHT_GRAD_ALGORITHM, 'direct', { N: 1, Cin: 1, H: 1, W: 1, Cout: 1, KH: 1, KW: 1, OH: 1, OW: 1, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0, half: true });
        forceName(CONV_FORWARD.name, `direct-rb${rb}`);
        const ty = E.conv2d(tx, tw, tb, { stride: s, padding });
        await check(ty, y, CONV_TOL, 'y');
        const [dx, dw, db] = E.grad(ty, [tx, tw, tb], E.tensor(Float32Array.from(g.data), g.shape, { dtype: 'float16' }));
        await check(dx!, R.conv2dInputGrad(g, w, xs, s, s, pads), CONV_TOL, 'dx');
        expect(dw!.dtype).toBe('float32');
        expectClose(await dw!.data(), dw!.shape, R.conv2dWeightGrad(g, x, ws, s, s, pads), { atol: 1e-4, rtol: 1e-5 }, 'dw');
        expectClose(await db!.data(), db!.shape, R.sum(g, [0, 2, 3]), { atol: 1e-4, rtol: 1e-5 }, 'db');
      });
    }
  }

  it('never picks a float32-only convolution for float16, and refuses one forced', async () => {
    const g = { N: 2, Cin: 16, H: 8, W: 8, Cout: 16, KH: 3, KW: 3, OH: 8, OW: 8, sh: 1, sw: 1, pt: 1, pb: 1, pl: 1, pr: 1 };
    const policy = E.getEngine().policy;
    expect(policy.candidates(CONV_ALGORITHM, g).map((v) => v.name)).toContain('winograd-f2');
    expect(policy.candidates(CONV_ALGORITHM, { ...g, half: true }).map((v) => v.name)).toEqual(['direct']);
    expect(policy.candidates(CONV_FORWARD, { ...g, half: true }).every((v) => v.name.startsWith('direct'))).toBe(true);
    expect(policy.candidates(CONV_WEIGHT_GRAD, { ...g, half: true }).map((v) => v.name)).toEqual(['split-k']);
    forceName(CONV_ALGORITHM.name, 'winograd-f2');
    const x = E.zeros([2, 16, 8, 8], { dtype: 'float16' });
    const w = E.zeros([16, 16, 3, 3], { dtype: 'float16' });
    expect(() => E.conv2d(x, w, undefined, { padding: 'same' })).toThrow(/conv2d.algorithm.*'winograd-f2' is forced but runs only on float32 storage/);
    expect(() => E.conv2d(x, E.zeros([16, 16, 3, 3]))).toThrow(/conv2d: input \[2, 16, 8, 8\] is float16 but weight float32/);
  });
});

describe.skipIf(!hasF16)('reductions of float16 storage (float32 results): sum, mean, max, global average pooling', () => {
  const r = new Rng(14);
  for (const variant of ['workgroup-per-row', 'invocation-per-row']) {
    it(`${variant}: [3, 5, 7, 9] over H, W and over all axes`, async () => {
      const [a, t] = half(r, [3, 5, 7, 9]);
      forceName('reduce.rows', variant);
      const tol = { atol: 1e-5, rtol: 1e-5 }; // exact float16 inputs, float32 sums
      for (const [what, y, ref] of [
        ['globalAvgPool2d', E.globalAvgPool2d(t), R.mean(a, [2, 3])],
        ['sum', E.sum(t), R.sum(a)],
        ['max over channels', E.max(t, 1), R.max(a, [1])],
      ] as const) {
        expect(y.dtype, what).toBe('float32');
        expectClose(await y.data(), y.shape, ref, tol, what);
      }
    });
  }
  it.skipIf(!E.getDevice().features.has('subgroups'))('refuses the subgroup reductions for float16 when forced', () => {
    forceName('reduce.rows', 'subgroup-row');
    const t = E.zeros([2, 40], { dtype: 'float16' });
    expect(() => E.sum(t, 1)).toThrow(/reduce.rows.*'subgroup-row' is forced but runs only on float32 storage/);
  });
});

describe.skipIf(!hasF16)('matmul on float16 storage', () => {
  const r = new Rng(15);
  // K products of values in [-1, 1] summed in f32: the float16 output's rounding dominates.
  const MM_TOL = { atol: 2e-4, rtol: 2 ** -10 };
  for (const [variant, sa, sb] of [['rows', [5, 9], [9, 12]], ['tiled', [66, 9], [9, 67]], ['tiled', [2, 3, 13], [13, 7]]] as const) {
    it(`${variant}: [${sa}] x [${sb}], and both gradients`, async () => {
      const [a, ta] = half(r, [...sa], -1, 1);
      const [b, tb] = half(r, [...sb], -1, 1);
      const M = sa[sa.length - 2]!, K = sa[sa.length - 1]!, N = sb[1]!;
      force(MATMUL, variant, { M, N, K, batch: sa.length === 3 ? sa[0]! : 1, bRowContiguous: true, half: true });
      ta.requiresGrad = tb.requiresGrad = true;
      const y = E.matmul(ta, tb);
      const ref = R.matmul(a, b);
      await check(y, ref, MM_TOL, 'y');
      E.getEngine().policy.force(MATMUL.name, null);
      const g = halfArr(r.arr(ref.shape, -1, 1));
      const [ga, gb] = E.grad(y, [ta, tb], E.tensor(Float32Array.from(g.data), g.shape, { dtype: 'float16' }));
      const tr = (x: R.Arr) => R.permute(x, x.shape.length === 3 ? [0, 2, 1] : [1, 0]);
      await check(ga!, R.matmul(g, tr(b)), MM_TOL, 'da');
      const gbRef = R.matmul(tr(a), g);
      // A broadcast b's gradient sums per-batch products that were each rounded to float16.
      expectClose(await gb!.data(), gb!.shape, sa.length === 3 ? R.sum(gbRef, [0]) : gbRef, sa.length === 3 ? { atol: 3e-3, rtol: 2 ** -10 } : MM_TOL, 'db');
    });
  }
  it('float16 with float32 promotes; the coalesced tiles are float32-only', async () => {
    const [a, ta] = half(r, [3, 4], -1, 1);
    const b = r.arr([4, 5], -1, 1);
    const y = E.matmul(ta, E.tensor(Float32Array.from(b.data), [4, 5]));
    expect(y.dtype).toBe('float32');
    expectClose(await y.data(), y.shape, R.matmul(a, b), { atol: 1e-6, rtol: 1e-6 }, 'promoted');
    const names = E.getEngine().policy.candidates(MATMUL, { M: 64, N: 64, K: 64, batch: 1, bRowContiguous: true, half: true }).map((v) => v.name);
    expect(names.every((n) => n === 'rows' || n === 'tiled')).toBe(true);
  });
});

describe('float16 on an adapter without shader-f16', () => {
  it('the policy refuses a float16 call, naming the kernel and the feature', () => {
    const policy = new VariantPolicy({ features: new Set(), limits: {} });
    const g = { N: 1, Cin: 1, H: 3, W: 3, Cout: 1, KH: 3, KW: 3, OH: 1, OW: 1, sh: 1, sw: 1, pt: 0, pb: 0, pl: 0, pr: 0 };
    expect(policy.pick(CONV_FORWARD, g).name).toBe('direct-rb4'); // one output channel: the smallest block
    expect(() => policy.pick(CONV_FORWARD, { ...g, half: true })).toThrow(/kernel 'conv2d.forward': float16 storage needs the adapter feature 'shader-f16', which this adapter lacks/);
  });
});

describe.skipIf(!hasF16)('softmax and cross-entropy reading float16 logits (float32 results)', () => {
  const r = new Rng(16);
  it('workgroup-per-row: softmax, logSoftmax, cross-entropy and its logit gradient', async () => {
    forceName('softmax.rows', 'workgroup-per-row');
    const [x, tx] = half(r, [5, 7], -4, 4);
    const labels = Int32Array.from([0, 6, 3, 3, 1]);
    const tol = { atol: 1e-6, rtol: 1e-5 }; // exact float16 inputs, float32 arithmetic
    const sm = E.softmax(tx);
    expect(sm.dtype).toBe('float32');
    expectClose(await sm.data(), sm.shape, R.softmax(x, false), tol, 'softmax');
    expectClose(await E.logSoftmax(tx).data(), [5, 7], R.softmax(x, true), tol, 'logSoftmax');
    tx.requiresGrad = true;
    const loss = E.crossEntropy(tx, E.tensor(labels, [5]), { reduction: 'sum' });
    expectClose(await loss.data(), [], R.arr([], [R.crossEntropy(x, [...labels]).data.reduce((a, b) => a + b, 0)]), tol, 'crossEntropy');
    const [dx] = E.grad(loss, [tx]);
    expect(dx!.dtype).toBe('float32');
    const p = R.softmax(x, false);
    expectClose(await dx!.data(), dx!.shape, R.arr([5, 7], p.data.map((v, i) => v - (labels[Math.floor(i / 7)] === i % 7 ? 1 : 0))), tol, 'd logits');
  });
});
