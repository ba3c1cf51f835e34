// float16 storage (issue 14, mixed precision): the host converter against an independent float64
// rounding, the GPU cast against both, upload and readback, fill, and the errors for what float16
// cannot do yet. Values cover every binade of float16 and beyond: subnormals, the overflow edge,
// ties, signed zeros, Infinity and NaN.
import { describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { fromHalfBits, roundHalf, toHalfBits } from '../engine/half.js';
import { refRoundHalf } from '../engine/reference/half.js';
import { gpu, Rng } from './helpers/setup.js';

await gpu();
const hasF16 = () => E.getDevice().features.has('shader-f16');

/** float32 values over float16's whole range and past it, with the special cases. */
function values(n: number, seed: number): Float32Array {
  const r = new Rng(seed);
  const special = [0, -0, Infinity, -Infinity, NaN, 65504, 65519.99, 65520, -65520, 1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -14, 2 ** -14 - 2 ** -25,
    1 + 2 ** -11, 1 + 3 * 2 ** -11, 2049, 2051, 6e-8, -6e-8, 1e-10, 1.5e-45];
  const out = new Float32Array(n + special.length);
  out.set(special);
  for (let i = 0; i < n; i++) {
    // log-uniform magnitudes from 2^-30 (below the smallest subnormal) to 2^17 (past the largest half)
    out[special.length + i] = (r.next() < 0.5 ? -1 : 1) * 2 ** r.uniform(-30, 17);
  }
  return out;
}

const same = (a: number, b: number) => (Number.isNaN(a) && Number.isNaN(b)) || Object.is(a, b);

describe('host float16 conversion', () => {
  it('rounds float32 values as the float64 reference does (ties to even, subnormals, overflow, NaN)', () => {
    const bad: string[] = [];
    for (const v of values(20000, 1)) {
      if (!same(roundHalf(v), refRoundHalf(v))) bad.push(`${v}: ${roundHalf(v)} vs ${refRoundHalf(v)}`);
    }
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it('round-trips all 65,536 bit patterns (NaN patterns stay NaN)', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = fromHalfBits(h);
      if (Number.isNaN(v)) { expect(((h >> 10) & 0x1f) === 31 && (h & 0x3ff) !== 0).toBe(true); continue; }
      expect(toHalfBits(v), `pattern ${h.toString(16)}`).toBe(h);
    }
  });
});

describe.skipIf(!hasF16())('float16 tensors (skipped where the adapter lacks shader-f16)', () => {
  it('uploads, reads back and casts to float32 exactly the rounded values (odd length)', async () => {
    const v = values(4001, 2);
    const t = E.tensor(v, [v.length], { dtype: 'float16' });
    expect(t.dtype).toBe('float16');
    expect(t.nbytes).toBe(2 * v.length);
    const back = await t.data();
    const wide = await E.cast(t, 'float32').data();
    for (let i = 0; i < v.length; i++) {
      expect(same(back[i]!, refRoundHalf(v[i]!)), `upload of ${v[i]}: ${back[i]}`).toBe(true);
      expect(same(wide[i]!, back[i]!), `cast to float32 of ${back[i]}: ${wide[i]}`).toBe(true);
    }
  });

  it('casts float32 -> float16 on the GPU bit for bit as the host (odd sizes, one element)', async () => {
    for (const [n, seed] of [[1, 3], [7, 4], [2 ** 14 + 3, 5]] as const) {
      const v = values(n, seed).subarray(0, n);
      const h = E.cast(E.tensor(v, [n]), 'float16');
      expect(h.dtype).toBe('float16');
      const got = await h.data();
      for (let i = 0; i < n; i++) expect(same(got[i]!, refRoundHalf(v[i]!)), `cast of ${v[i]}: ${got[i]} vs ${refRoundHalf(v[i]!)}`).toBe(true);
    }
  });

  it('casts between float16 and int32 through float32', async () => {
    const t = E.tensor([1.7, -2.5, 300.2, 2049], [4], { dtype: 'float16' });
    expect([...await E.cast(t, 'int32').data()]).toEqual([1, -2, 300, 2048]);
    expect([...await E.cast(E.tensor(Int32Array.from([3, -7, 2049]), [3]), 'float16').data()]).toEqual([3, -7, 2048]);
  });

  it('fills with a rounded value, odd sizes included', async () => {
    expect([...await E.full([5], 0.1, { dtype: 'float16' }).data()]).toEqual(Array(5).fill(roundHalf(0.1)));
    expect([...await E.zeros([3], { dtype: 'float16' }).data()]).toEqual([0, 0, 0]);
  });

  it('carries the gradient back through a float32 -> float16 cast as float32', async () => {
    const w = E.tensor([0.5, -1.25, 3], [3], { requiresGrad: true });
    const h = E.cast(w, 'float16');
    E.cast(h, 'float32').mul(E.tensor([2, 3, 4], [3])).sum().backward();
    expect(w.grad!.dtype).toBe('float32');
    expect([...await w.grad!.data()]).toEqual([2, 3, 4]);
  });

  it('refuses float16 inputs to float32-only ops, naming them', () => {
    const t = E.tensor([1, 2, 3, 4, 5, 6], [2, 3], { dtype: 'float16' });
    expect(() => E.where(E.gt(E.cast(t, 'float32'), 2), t, t)).toThrow(/where: first value .*float16; float32 is required/);
  });
});
