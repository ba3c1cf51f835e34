// float16 storage forms of the kernels a mixed-precision training step runs (issue 14): each
// variant forced through the registry on float16 inputs, against the float64 reference of the
// float16-rounded inputs. Tolerance: the one rounding of the output to float16 plus float32
// arithmetic, HALF_TOL below; reductions over many terms get an absolute term scaled
// by the terms' size. The float32-only variants are never picked for float16, and forcing one
// is an error.
import { afterEach, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import type { KernelDef } from '../engine/kernels/variants.js';
import { BINARY, UNARY, ACCUMULATE, accumulateKernel } from '../engine/kernels/launch.js';
import * as R from '../engine/reference/float64.js';
import { halfArr } from '../engine/reference/half.js';
import { expectClose, gpu, Rng } from './helpers/setup.js';

await gpu();
const hasF16 = E.getDevice().features.has('shader-f16');
const forcedKernels: string[] = [];
afterEach(() => { for (const k of forcedKernels.splice(0)) E.getEngine().policy.force(k, null); });

/**
 * One float16 ulp relative (2^-10): the output's rounding to float16 (half an ulp with ties to
 * even; WGSL lets the f32 -> f16 conversion round either way, so up to one), after f32 arithmetic.
 */
const HALF_TOL = { atol: 1e-6, rtol: 2 ** -10 };

function force<S>(k: KernelDef<S>, variant: string, shape: S): void {
  const policy = E.getEngine().policy;
  expect(policy.candidates(k, shape).map((v) => v.name), `${k.name} runs ${variant} on float16 for ${JSON.stringify(shape)}`).toContain(variant);
  policy.force(k.name, variant);
  forcedKernels.push(k.name);
}

/** Random values already rounded to float16, and their float16 tensor. */
function half(r: Rng, shape: number[], lo = -2, hi = 2): [R.Arr, E.Tensor] {
  const a = halfArr(r.arr(shape, lo, hi));
  return [a, E.tensor(Float32Array.from(a.data), shape, { dtype: 'float16' })];
}

async function check(t: E.Tensor, ref: R.Arr, tol: { atol: number; rtol: number }, what: string): Promise<void> {
  expect(t.dtype, what).toBe('float16');
  expectClose(await t.data(), t.shape, ref, tol, what);
}

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
