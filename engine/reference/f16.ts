// Checking a matmul computed from f16-rounded inputs with f32 accumulation (the tensor-core
// variants) against float64, with tolerances derived from the inputs themselves. Used by the
// tests and by bench/tensor-cores.ts (the check a lent GPU runs).
import * as R from './float64.js';

const roundHalfEven = (v: number): number => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : r;
};

/** x rounded to the nearest IEEE binary16 value (ties to even), overflow to +-inf, NaN kept. */
export function f16round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 65520) return Math.sign(x) * Infinity; // halfway past 65504 rounds to inf
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e--;
  if (2 ** (e + 1) <= ax) e++;
  const q = 2 ** (Math.max(e, -14) - 10); // spacing: 10 fraction bits, subnormals below 2^-14
  return roundHalfEven(x / q) * q;
}

const abs = (a: R.Arr) => R.map(a, Math.abs);

/** Accumulation allowance per unit of sum |a16||b16|: 16 times the usual K u (u = 2^-24) bound for f32 sums, for the units' own summation order. */
export const accumulationAllowance = (K: number): number => Math.max(K, 16) * 2 ** -20;

/**
 * Checks c (a [..., M, N] result of logical a [.., M, K] x b [.., K, N]) twice:
 * - tight, against float64 on the f16-rounded inputs: |c - a16 b16| <= accumulationAllowance(K) * (|a16| |b16|);
 * - loose, against float64 on the inputs themselves: the same plus the input rounding's own effect,
 *   |a16 - a| |b16| + |a| |b16 - b| per product (at most 2^-10 |a||b| plus subnormal spacing).
 * Non-finite expectations (NaN, +-inf from overflow) must match exactly. The message names the
 * worst element, both values and the bound. Returns null when c passes, else what failed.
 */
export function f16MatmulMismatch(actual: ArrayLike<number>, a: R.Arr, b: R.Arr, what: string): string | null {
  const K = a.shape[a.shape.length - 1]!;
  const a16 = R.map(a, f16round), b16 = R.map(b, f16round);
  const ref16 = R.matmul(a16, b16), ref = R.matmul(a, b);
  const scale = R.matmul(abs(a16), abs(b16));
  const rounding = R.zip([R.matmul(abs(R.zip([a16, a], (x, y) => x - y)), abs(b16)), R.matmul(abs(a), abs(R.zip([b16, b], (x, y) => x - y)))], (x, y) => x + y);
  if (actual.length !== ref.data.length) return `${what}: ${actual.length} elements, expected ${ref.data.length}`;
  const allow = accumulationAllowance(K);
  for (const [name, expected, extra] of [['f16-rounded inputs', ref16, null], ['float32 inputs', ref, rounding]] as const) {
    let worst = -1, worstExcess = 0, bad = 0;
    for (let i = 0; i < expected.data.length; i++) {
      const e = expected.data[i]!, v = actual[i]!;
      if (!Number.isFinite(e) || !Number.isFinite(ref16.data[i]!)) {
        const want = Number.isFinite(ref16.data[i]!) ? e : ref16.data[i]!; // overflow in f16 is what the kernel computes
        if (!Object.is(v, want) && !(Number.isNaN(v) && Number.isNaN(want))) { bad++; if (worst < 0) worst = i; }
        continue;
      }
      const bound = allow * scale.data[i]! + (extra ? extra.data[i]! : 0) + 1e-30;
      const excess = Math.abs(v - e) / bound;
      if (!(excess <= 1)) { bad++; if (!(excess <= worstExcess)) { worstExcess = excess; worst = i; } }
    }
    if (bad > 0) {
      const bound = allow * scale.data[worst]! + (extra ? extra.data[worst]! : 0);
      return `${what}: ${bad} of ${expected.data.length} elements outside the f16 tolerance against float64 on ${name}; worst at flat index ${worst}: got ${actual[worst]}, expected ${expected.data[worst]}, bound ${bound.toExponential(3)} (${worstExcess.toFixed(1)}x)`;
    }
  }
  return null;
}

/**
 * The same check for a convolution y = conv2d(x, w) ([N, Cout, OH, OW], weights [Cout, Cin, KH,
 * KW], strides and pads [top, bottom, left, right]): per image, the weights as [Cout, Cin KH KW]
 * times the image's im2col. Returns null when every image passes, else the first failure.
 */
export function f16ConvMismatch(actual: ArrayLike<number>, x: R.Arr, w: R.Arr, sh: number, sw: number, pads: [number, number, number, number], what: string): string | null {
  const [Cout, , KH, KW] = w.shape as [number, number, number, number];
  const cols = R.im2col(x, KH, KW, sh, sw, pads);
  const [N, K, P] = cols.shape as [number, number, number];
  if (actual.length !== N * Cout * P) return `${what}: ${actual.length} elements, expected ${N * Cout * P}`;
  const a = R.arr([Cout, K], w.data);
  const out = Float64Array.from(actual);
  for (let n = 0; n < N; n++) {
    const b = R.arr([K, P], cols.data.subarray(n * K * P, (n + 1) * K * P));
    const bad = f16MatmulMismatch(out.subarray(n * Cout * P, (n + 1) * Cout * P), a, b, `${what}, image ${n}`);
    if (bad) return bad;
  }
  return null;
}
