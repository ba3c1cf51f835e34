// Fused kernels give bitwise the values and gradients of the ops they replace: the attack step
// (signStep) and batch norm with residual and ReLU (batchNormRelu2d), on random data with
// negatives, ties at zero and both batch-norm modes.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { gpu } from './helpers/setup.js';

beforeAll(gpu);

const bits = async (t: E.Tensor) => Array.from(new Uint32Array((await t.data()).buffer));

describe('batchNormRelu2d', () => {
  for (const training of [true, false]) {
    for (const withResidual of [true, false]) {
      // H*W of 30 runs the scalar kernels, 24 the vec4 ones.
      it.each([[3, 4, 5, 6], [2, 4, 4, 6]])(`equals relu(batchNorm2d(x)${withResidual ? ' + residual' : ''}) bit for bit, ${training ? 'training' : 'inference'}, [%i, %i, %i, %i]`, async (...shape: number[]) => {
        const g = new E.Generator(training ? 3 : 4);
        const make = () => ({
          x: E.randn(shape, { generator: new E.Generator(1), requiresGrad: true }),
          w: E.rand([4], { low: 0.5, high: 1.5, generator: new E.Generator(2), requiresGrad: true }),
          b: E.randn([4], { generator: new E.Generator(5), requiresGrad: true }),
          rm: E.zeros([4]), rv: E.ones([4]),
          r: E.randn(shape, { generator: new E.Generator(6), requiresGrad: true }),
        });
        const dy = E.randn(shape, { generator: g });
        const o = { training, eps: 1e-3, momentum: 0.1 };
        const a = make(), b = make();
        const fused = E.batchNormRelu2d(a.x, a.w, a.b, a.rm, a.rv, withResidual ? a.r : null, o);
        const bn = E.batchNorm2d(b.x, b.w, b.b, b.rm, b.rv, o);
        const plain = E.relu(withResidual ? E.add(bn, b.r) : bn);
        expect(await bits(fused)).toEqual(await bits(plain));
        expect((await fused.data()).some((v) => v === 0)).toBe(true); // the mask is exercised
        const inputs = (s: typeof a) => [s.x, s.w, s.b, ...(withResidual ? [s.r] : [])];
        const ga = E.grad(fused, inputs(a), dy), gb = E.grad(plain, inputs(b), dy);
        for (let i = 0; i < ga.length; i++) expect(await bits(ga[i]!), `gradient ${i}`).toEqual(await bits(gb[i]!));
        expect(await bits(a.rm)).toEqual(await bits(b.rm)); // the running statistics moved alike
        E.dispose([fused, bn, plain, dy, ga, gb, Object.values(a), Object.values(b)]);
      });
    }
  }

  it('rejects a residual of another shape, naming both', () => {
    const x = E.zeros([1, 2, 3, 3]), w = E.ones([2]), b = E.zeros([2]), r = E.zeros([1, 2, 3, 4]);
    expect(() => E.batchNormRelu2d(x, w, b, E.zeros([2]), E.ones([2]), r, { training: true })).toThrow(/residual of shape \[1, 2, 3, 4\] does not match input of shape \[1, 2, 3, 3\]/);
    E.dispose([x, w, b, r]);
  });
});

describe('signStep', () => {
  it('equals min(max(x + step * sign(g), lo), hi) bit for bit, with a scalar and per-sample steps', async () => {
    const x = E.rand([4, 3, 5, 5], { generator: new E.Generator(1) });
    const grad = E.randn([4, 3, 5, 5], { generator: new E.Generator(2) });
    const lo = E.clamp(E.sub(x, 8 / 255), 0, 1), hi = E.clamp(E.add(x, 8 / 255), 0, 1);
    const steps = E.rand([4], { low: 0.001, high: 0.05, generator: new E.Generator(3) });
    const fused = [E.signStep(x, grad, 2 / 255, lo, hi), E.signStep(x, grad, steps, lo, hi)];
    const plain = [E.minimum(E.maximum(E.add(x, E.mul(E.sign(grad), 2 / 255)), lo), hi),
      E.minimum(E.maximum(E.add(x, E.mul(E.sign(grad), E.reshape(steps, [4, 1, 1, 1]))), lo), hi)];
    for (let i = 0; i < 2; i++) expect(await bits(fused[i]!)).toEqual(await bits(plain[i]!));
    expect(() => E.signStep(x, grad, E.ones([3]), lo, hi)).toThrow(/per-sample steps of shape \[3\] do not match input of shape \[4, 3, 5, 5\]/);
    E.dispose([x, grad, lo, hi, steps, fused, plain]);
  });
});

describe('batch-norm statistics in one pass', () => {
  // A mean of 1000 with a spread of 0.01: raw sums of squares would cancel to nothing in float32.
  it.each([[4, 3, 8, 8], [4, 3, 5, 5]])('match float64 on data far from zero, [%i, %i, %i, %i]', async (...shape: number[]) => {
    const x = E.affine(E.randn(shape, { generator: new E.Generator(9) }), 0.01, 1000);
    const C = shape[1]!;
    const rm = E.zeros([C]), rv = E.ones([C]);
    // Momentum 1: the running statistics become the batch's mean and unbiased variance.
    const y = E.batchNorm2d(x, E.ones([C]), E.zeros([C]), rm, rv, { training: true, momentum: 1, eps: 1e-3 });
    const xs = await x.data(), m = await rm.data(), v = await rv.data();
    const [N, , H, W] = shape as [number, number, number, number];
    for (let c = 0; c < C; c++) {
      const vals: number[] = [];
      for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) vals.push(xs[(n * C + c) * H * W + i]!);
      const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
      const unbiased = vals.reduce((a, b) => a + (b - mean) ** 2, 0) / (vals.length - 1);
      expect(Math.abs(m[c]! - mean)).toBeLessThan(1e-4);
      expect(Math.abs(v[c]! - unbiased) / unbiased).toBeLessThan(1e-3);
    }
    E.dispose([x, rm, rv, y]);
  });
});
