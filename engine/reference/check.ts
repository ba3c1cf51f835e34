// The test spec of an op record: random cases (odd sizes, size-1 dimensions, broadcasting,
// batch 1), the float64 reference, and tolerances. test/ops.test.ts runs every record's checks:
// forward values against the reference, gradients against float64 central differences of it.
// Nothing here touches the GPU; `run` receives the op's own function.
import type { Arr } from './float64.js';
import * as R from './float64.js';

export interface Tol { atol: number; rtol: number }
/** A test case: float inputs (made float32 tensors), then other arguments (an Int32Array becomes an int32 tensor). */
export interface Case { inputs: Arr[]; args: unknown[]; label: string }

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Fn = (...args: any[]) => any;

export interface OpCheck {
  cases: (r: Rng) => Case[];
  ref: (xs: Arr[], args: unknown[]) => Arr;
  /** How to call the op on the case's tensors (default: op(...inputs, ...args)). */
  run?: <T>(op: Fn, xs: T[], args: unknown[]) => T;
  tol?: Tol;
  /** Gradient tolerance against float64 finite differences; false for ops without gradient. */
  grad?: Tol | false;
  /** Inputs whose gradient is checked (default all); where's condition is not differentiable. */
  gradInputs?: number[];
}

/** A small seeded PRNG for test data (mulberry32), independent of the engine's generator. */
export class Rng {
  constructor(private s: number) {}
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  uniform(lo: number, hi: number): number { return lo + (hi - lo) * this.next(); }
  int(lo: number, hi: number): number { return lo + Math.floor(this.next() * (hi - lo + 1)); }
  pick<T>(xs: readonly T[]): T { return xs[Math.floor(this.next() * xs.length)]!; }
  /** Float32-representable values (so the float64 reference sees exactly the GPU's inputs). */
  arr(shape: number[], lo = -2, hi = 2, avoid?: (x: number) => boolean): Arr {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    for (let i = 0; i < n; i++) { let v; do { v = this.uniform(lo, hi); } while (avoid?.(v)); d[i] = v; }
    return { shape, data: Float64Array.from(d) };
  }
}

export const EXACT: Tol = { atol: 0, rtol: 0 };
export const F32: Tol = { atol: 1e-6, rtol: 2e-6 };
export const TRANS: Tol = { atol: 1e-5, rtol: 1e-5 };
export const GRAD: Tol = { atol: 2e-5, rtol: 1e-4 };

/** Shapes with odd sizes and size-1 dimensions, plus one large enough for several workgroups. */
const SHAPES: number[][] = [[1], [7], [3, 5], [2, 1, 4], [1, 3, 1, 5], [5, 3, 2], [4, 6]];
const BIG: number[] = [33, 65];
// BIG is odd (scalar kernels); [64, 33] is a multiple of 4 (vec4 kernels).
const unaryShapes = (r: Rng) => [r.pick(SHAPES), r.pick(SHAPES), BIG, [64, 33]];

/** Pairs that broadcast in every way NumPy allows. */
const PAIRS: Array<[number[], number[]]> = [
  [[3, 5], [3, 5]], [[3, 5], [5]], [[4, 1, 3], [2, 1]], [[1], [2, 3]], [[2, 3, 4], [1, 3, 1]], [[1, 1], [1]], [[6, 1], [1, 7]],
];

export interface Domain { lo?: number; hi?: number; avoid?: (x: number) => boolean; tol?: Tol; grad?: Tol | false; args?: unknown[] }

/** An elementwise function of one tensor (and fixed extra arguments) on random shapes. */
export function unaryCheck(f: (x: number) => number, o: Domain = {}): OpCheck {
  const args = o.args ?? [];
  return {
    tol: o.tol ?? TRANS, grad: o.grad ?? GRAD,
    cases: (r) => unaryShapes(r).map((s) => ({ inputs: [r.arr(s, o.lo ?? -3, o.hi ?? 3, o.avoid)], args, label: `[${s}]${args.length ? ` with ${JSON.stringify(args)}` : ''}` })),
    ref: ([x]) => R.map(x!, f),
  };
}

export interface PairDomain { lo?: number; hi?: number; avoid?: (a: number, b: number) => boolean; tol?: Tol; grad?: Tol | false; scalar?: boolean }

/**
 * Operands with no pair of broadcast elements in the avoided region (ties, poles): same shapes
 * redraw the offending elements of b; broadcast pairs (small) redraw b whole. A pair that cannot
 * be drawn is an error, never a silently kept near-tie.
 */
function avoidingPair(r: Rng, sa: number[], sb: number[], lo: number, hi: number, avoid?: (a: number, b: number) => boolean): [Arr, Arr] {
  const a = r.arr(sa, lo, hi);
  const b = r.arr(sb, lo, hi);
  if (!avoid) return [a, b];
  // Flat positions in a and b of every output element (NumPy broadcasting, right-aligned).
  const out = bshape(sa, sb);
  const pos = (s: number[], idx: number[]) => s.reduce((acc, d, k) => acc * d + (d === 1 ? 0 : idx[idx.length - s.length + k]!), 0);
  const n = out.reduce((x, y) => x * y, 1);
  // Redraw the element of a, then of b, behind each offending pair until none is left.
  for (let pass = 0; pass < 100; pass++) {
    let clean = true;
    for (let i = 0; i < n; i++) {
      const idx: number[] = [];
      for (let d = out.length - 1, rem = i; d >= 0; d--) { idx[d] = rem % out[d]!; rem = Math.floor(rem / out[d]!); }
      const ia = pos(sa, idx), ib = pos(sb, idx);
      if (!avoid(a.data[ia]!, b.data[ib]!)) continue;
      clean = false;
      if (pass % 2 === 0) a.data[ia] = Math.fround(r.uniform(lo, hi));
      else b.data[ib] = Math.fround(r.uniform(lo, hi));
    }
    if (clean) return [a, b];
  }
  throw new Error(`binaryCheck: no operands of shapes [${sa}] and [${sb}] avoid the excluded region; use smaller shapes`);
}

/** The broadcast shape of two shapes (they are known to broadcast). */
const bshape = (x: number[], y: number[]): number[] => {
  const n = Math.max(x.length, y.length);
  return Array.from({ length: n }, (_, i) => Math.max(x[x.length - n + i] ?? 1, y[y.length - n + i] ?? 1));
};

/** A broadcasting binary function, on every broadcast pattern, vec4-sized pairs and a scalar operand. */
export function binaryCheck(f: (a: number, b: number) => number, o: PairDomain = {}): OpCheck {
  return {
    tol: o.tol ?? F32, grad: o.grad ?? GRAD,
    cases: (r) => {
      const lo = o.lo ?? -3, hi = o.hi ?? 3;
      const cs: Case[] = [];
      for (const [sa, sb] of [r.pick(PAIRS), r.pick(PAIRS), r.pick(PAIRS), [BIG, [65]], [[4, 6], [4, 6]], [[64, 33], [64, 33]]] as Array<[number[], number[]]>) {
        cs.push({ inputs: avoidingPair(r, sa, sb, lo, hi, o.avoid), args: [], label: `[${sa}] with [${sb}]` });
      }
      if (o.scalar !== false) {
        const a = r.arr(r.pick(SHAPES), lo, hi);
        let s = Math.fround(r.uniform(lo, hi));
        while (o.avoid && a.data.some((x) => o.avoid!(x, s))) s = Math.fround(r.uniform(lo, hi));
        cs.push({ inputs: [a], args: [s], label: `[${a.shape}] with scalar ${s}` });
      }
      return cs;
    },
    ref: (xs, args) => (args.length ? R.map(xs[0]!, (x) => f(x, args[0] as number)) : R.zip(xs, f)),
  };
}

/** A reduction over axes (with keepdims) on shapes that exercise both reduce kernels. */
export function reductionCheck(ref: (x: Arr, axes?: number[], keep?: boolean) => Arr, tol: Tol = TRANS): OpCheck {
  const cases: Array<[number[], number[] | undefined, boolean]> = [
    [[7], undefined, false], [[3, 5], [1], false], [[3, 5], [0], true], [[2, 3, 4], [0, 2], false],
    [[2, 1, 5], [-1], true], [[1, 300], [1], false], [[300, 3], [0], true], [[4, 3, 2, 3], [1, 3], false], [[513], [0], false],
  ];
  return {
    tol, grad: GRAD,
    cases: (r) => cases.map(([s, axes, keep]) => ({ inputs: [r.arr(s)], args: [axes, keep], label: `[${s}] axes ${JSON.stringify(axes)} keepdims ${keep}` })),
    ref: ([x], [axes, keep]) => ref(x!, axes as number[] | undefined, keep as boolean),
  };
}

export const near = (eps: number) => (a: number, b: number) => Math.abs(a - b) < eps;
export const nearZero = (x: number) => Math.abs(x) < 0.05;
