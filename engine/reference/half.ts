// float16 rounding in float64, written independently of engine/half.ts's bit manipulation: the
// nearest multiple of the binade's spacing, ties to even, Infinity past the largest finite half.
// The reference that float16 kernels are checked against: inputs rounded to what float16 storage
// holds, then the op in float64.
import type { Arr } from './float64.js';

const MAX_HALF = 65504;

/** x (a float64) rounded to the nearest binary16 value, ties to even. */
export function refRoundHalf(x: number): number {
  if (Number.isNaN(x) || x === 0 || !Number.isFinite(x)) return x;
  const a = Math.abs(x);
  // Spacing of halves near a: 2^(e - 10) for a in [2^e, 2^(e+1)), and 2^-24 below 2^-14.
  let b = Math.floor(Math.log2(a));
  if (2 ** b > a) b--; // log2 may round up just below a power of two
  const q = 2 ** (Math.max(b, -14) - 10);
  const m = a / q;
  const f = Math.floor(m);
  const r = m - f > 0.5 || (m - f === 0.5 && f % 2 === 1) ? f + 1 : f;
  const v = r * q;
  if (v > MAX_HALF) return Math.sign(x) * Infinity;
  return Math.sign(x) * v || (x < 0 ? -0 : 0);
}

/** An array's values rounded to float16 (the inputs a float16 kernel really sees). */
export const halfArr = (a: Arr): Arr => ({ shape: [...a.shape], data: a.data.map(refRoundHalf) });
