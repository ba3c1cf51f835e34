// The op test table: for each engine op, random cases (odd sizes, size-1 dimensions,
// broadcasting, batch 1), how to run it on the engine and in the float64 reference, and
// its tolerance. ops.test.ts runs forward and gradient checks from this table and fails if an
// op of the engine's op table has no entry here.
import * as E from '../../engine/node.js';
import type { Tensor } from '../../engine/node.js';
import * as R from './reference.js';
import type { Arr } from './reference.js';
import type { Rng } from './setup.js';

export interface Case { inputs: Arr[]; args: unknown[]; label: string }
export interface Tol { atol: number; rtol: number }
export interface Spec {
  op: string;
  cases: (r: Rng) => Case[];
  run: (xs: Tensor[], args: unknown[]) => Tensor;
  ref: (xs: Arr[], args: unknown[]) => Arr;
  tol?: Tol;
  /** Gradient tolerance against float64 finite differences; false for ops without gradient. */
  grad?: Tol | false;
  /** Inputs whose gradient is checked (default all); where's condition is not differentiable. */
  gradInputs?: number[];
}

const F32: Tol = { atol: 1e-6, rtol: 2e-6 };
const TRANS: Tol = { atol: 1e-5, rtol: 1e-5 };
const GRAD: Tol = { atol: 2e-5, rtol: 1e-4 };

/** Shapes with odd sizes and size-1 dimensions, plus one large enough for several workgroups. */
const SHAPES: number[][] = [[1], [7], [3, 5], [2, 1, 4], [1, 3, 1, 5], [5, 3, 2], [4, 6]];
const BIG: number[] = [33, 65];
// BIG is odd (scalar kernels); [64, 33] is a multiple of 4 (vec4 kernels).
const unaryShapes = (r: Rng) => [r.pick(SHAPES), r.pick(SHAPES), BIG, [64, 33]];

/** Pairs that broadcast in every way NumPy allows. */
const PAIRS: Array<[number[], number[]]> = [
  [[3, 5], [3, 5]], [[3, 5], [5]], [[4, 1, 3], [2, 1]], [[1], [2, 3]], [[2, 3, 4], [1, 3, 1]], [[1, 1], [1]], [[6, 1], [1, 7]],
];

function unary(op: string, run: (x: Tensor) => Tensor, f: (x: number) => number,
  o: { lo?: number; hi?: number; avoid?: (x: number) => boolean; tol?: Tol; grad?: Tol | false } = {}): Spec {
  return {
    op, tol: o.tol ?? TRANS, grad: o.grad ?? GRAD,
    cases: (r) => unaryShapes(r).map((s) => ({ inputs: [r.arr(s, o.lo ?? -3, o.hi ?? 3, o.avoid)], args: [], label: `[${s}]` })),
    run: ([x]) => run(x!), ref: ([x]) => R.map(x!, f),
  };
}

function binary(op: string, run: (a: Tensor, b: Tensor | number) => Tensor, f: (a: number, b: number) => number,
  o: { avoid?: (a: number, b: number) => boolean; lo?: number; hi?: number; tol?: Tol; grad?: Tol | false; scalar?: boolean } = {}): Spec {
  return {
    op, tol: o.tol ?? F32, grad: o.grad ?? GRAD,
    cases: (r) => {
      const lo = o.lo ?? -3, hi = o.hi ?? 3;
      const cs: Case[] = [];
      for (const [sa, sb] of [r.pick(PAIRS), r.pick(PAIRS), r.pick(PAIRS), [BIG, [65]], [[4, 6], [4, 6]], [[64, 33], [64, 33]]] as Array<[number[], number[]]>) {
        // Redraw b until no pair of broadcast elements falls in the avoided region (ties, poles).
        const a = r.arr(sa, lo, hi);
        let b = r.arr(sb, lo, hi);
        for (let k = 0; k < 50 && o.avoid && R.zip([a, b], (x, y) => (o.avoid!(x, y) ? 1 : 0)).data.some((v) => v); k++) b = r.arr(sb, lo, hi);
        cs.push({ inputs: [a, b], args: [], label: `[${sa}] with [${sb}]` });
      }
      if (o.scalar !== false) {
        const a = r.arr(r.pick(SHAPES), lo, hi);
        let s = Math.fround(r.uniform(lo, hi));
        while (o.avoid && a.data.some((x) => o.avoid!(x, s))) s = Math.fround(r.uniform(lo, hi));
        cs.push({ inputs: [a], args: [s], label: `[${a.shape}] with scalar ${s}` });
      }
      return cs;
    },
    run: (xs, args) => run(xs[0]!, args.length ? (args[0] as number) : xs[1]!),
    ref: (xs, args) => (args.length ? R.map(xs[0]!, (x) => f(x, args[0] as number)) : R.zip(xs, f)),
  };
}

const near = (eps: number) => (a: number, b: number) => Math.abs(a - b) < eps;
const nearZero = (x: number) => Math.abs(x) < 0.05;
const cmpGrad = false as const;

function reduction(op: string, run: (x: Tensor, axes?: number | number[], keep?: boolean) => Tensor,
  ref: (x: Arr, axes?: number[], keep?: boolean) => Arr, tol: Tol = TRANS): Spec {
  const cases: Array<[number[], number[] | undefined, boolean]> = [
    [[7], undefined, false], [[3, 5], [1], false], [[3, 5], [0], true], [[2, 3, 4], [0, 2], false],
    [[2, 1, 5], [-1], true], [[1, 300], [1], false], [[300, 3], [0], true], [[4, 3, 2, 3], [1, 3], false], [[513], [0], false],
  ];
  return {
    op, tol, grad: GRAD,
    cases: (r) => cases.map(([s, axes, keep]) => ({ inputs: [r.arr(s)], args: [axes, keep], label: `[${s}] axes ${JSON.stringify(axes)} keepdims ${keep}` })),
    run: ([x], [axes, keep]) => run(x!, axes as number[] | undefined, keep as boolean),
    ref: ([x], [axes, keep]) => ref(x!, axes as number[] | undefined, keep as boolean),
  };
}

export const SPECS: Spec[] = [
  unary('neg', E.neg, (x) => -x, { tol: F32 }),
  unary('exp', E.exp, Math.exp),
  unary('log', E.log, Math.log, { lo: 0.1, hi: 5 }),
  unary('sqrt', E.sqrt, Math.sqrt, { lo: 0.1, hi: 5 }),
  unary('relu', E.relu, (x) => Math.max(x, 0), { avoid: nearZero, tol: F32 }),
  unary('sigmoid', E.sigmoid, (x) => 1 / (1 + Math.exp(-x)), { lo: -20, hi: 20 }),
  unary('tanh', E.tanh, Math.tanh, { lo: -10, hi: 10 }),
  unary('abs', E.abs, Math.abs, { avoid: nearZero, tol: F32 }),
  unary('sign', E.sign, Math.sign, { avoid: nearZero, tol: F32 }),
  unary('square', E.square, (x) => x * x),
  { ...unary('affine', (x) => E.affine(x, -1.5, 0.25), (x) => -1.5 * x + 0.25), op: 'affine' },
  { ...unary('pow', (x) => E.pow(x, 3), (x) => x ** 3), op: 'pow' },
  { ...unary('pow', (x) => E.pow(x, 0.5), (x) => x ** 0.5, { lo: 0.2, hi: 4 }), op: 'pow' },
  { ...unary('pow', (x) => E.pow(x, -2), (x) => x ** -2, { avoid: (x) => Math.abs(x) < 0.3 }), op: 'pow' },
  unary('clamp', (x) => E.clamp(x, -0.5, 1.25), (x) => Math.min(Math.max(x, -0.5), 1.25), { avoid: (x) => Math.abs(x + 0.5) < 0.02 || Math.abs(x - 1.25) < 0.02, tol: F32 }),
  binary('add', E.add, (a, b) => a + b),
  binary('sub', E.sub, (a, b) => a - b),
  binary('mul', E.mul, (a, b) => a * b),
  binary('div', E.div, (a, b) => a / b, { avoid: (_a, b) => Math.abs(b) < 0.3, tol: TRANS }),
  binary('minimum', E.minimum, Math.min, { avoid: near(0.02) }),
  binary('maximum', E.maximum, Math.max, { avoid: near(0.02) }),
  binary('eq', E.eq, (a, b) => +(a === b), { grad: cmpGrad, lo: -2, hi: 2 }),
  binary('ne', E.ne, (a, b) => +(a !== b), { grad: cmpGrad }),
  binary('lt', E.lt, (a, b) => +(a < b), { grad: cmpGrad }),
  binary('le', E.le, (a, b) => +(a <= b), { grad: cmpGrad }),
  binary('gt', E.gt, (a, b) => +(a > b), { grad: cmpGrad }),
  binary('ge', E.ge, (a, b) => +(a >= b), { grad: cmpGrad }),
  {
    op: 'where', tol: F32, grad: GRAD, gradInputs: [1, 2],
    cases: (r) => [[[3, 5], [3, 5], [3, 5]], [[3, 1], [1, 5], [5]], [[1], [2, 3], [2, 1]], [[4, 1, 2], [3, 1], [1]]].map((ss) => {
      const c = R.map(r.arr(ss[0]!), (v) => +(v > 0));
      return { inputs: [c, r.arr(ss[1]!), r.arr(ss[2]!)], args: [], label: ss.map((s) => `[${s}]`).join(' ') };
    }),
    run: ([c, a, b]) => E.where(c!, a!, b!), ref: (xs) => R.zip(xs, (c, a, b) => (c !== 0 ? a : b)),
  },
  reduction('sum', E.sum, R.sum),
  reduction('mean', E.mean, R.mean),
  reduction('max', E.max, R.max, F32),
  reduction('min', E.min, R.min, F32),
  ...(['argmax', 'argmin'] as const).map((op): Spec => ({
    op, tol: { atol: 0, rtol: 0 }, grad: false,
    cases: (r) => ([[[7], 0], [[3, 5], 1], [[3, 5], 0], [[2, 3, 4], -1], [[1, 300], 1], [[300, 2], 1]] as Array<[number[], number]>)
      .map(([s, axis]) => ({ inputs: [r.arr(s)], args: [axis], label: `[${s}] axis ${axis}` })),
    run: ([x], [axis]) => (op === 'argmax' ? E.argmax : E.argmin)(x!, axis as number),
    ref: ([x], [axis]) => R.argExt(x!, axis as number, false, op === 'argmax' ? (a, b) => a > b : (a, b) => a < b),
  })),
  {
    op: 'reshape', tol: F32, grad: GRAD,
    cases: (r) => [[[3, 5], [5, 3]], [[2, 1, 4], [-1]], [[6], [1, 2, 3, 1]]].map(([s, t]) => ({ inputs: [r.arr(s!)], args: [t], label: `[${s}] to [${t}]` })),
    run: ([x], [t]) => E.mul(E.reshape(x!, t as number[]), 1),
    ref: ([x], [t]) => ({ shape: (t as number[]).map((d) => (d === -1 ? x!.data.length : d)), data: x!.data.slice() }),
  },
  {
    op: 'permute', tol: F32, grad: GRAD,
    cases: (r) => ([[[3, 5], [1, 0]], [[2, 3, 4], [2, 0, 1]], [[1, 3, 1, 5], [3, 1, 0, 2]], [[33, 65], [1, 0]], [[3, 17, 20], [0, 2, 1]], [[2, 3, 4, 5], [0, 1, 3, 2]]] as Array<[number[], number[]]>)
      .map(([s, p]) => ({ inputs: [r.arr(s)], args: [p], label: `[${s}] by [${p}]` })),
    run: ([x], [p]) => E.permute(x!, p as number[]), ref: ([x], [p]) => R.permute(x!, p as number[]),
  },
  {
    op: 'broadcastTo', tol: F32, grad: GRAD,
    cases: (r) => ([[[3, 1], [3, 5]], [[5], [2, 3, 5]], [[1], [4]], [[2, 1, 3], [2, 4, 3]]] as Array<[number[], number[]]>)
      .map(([s, t]) => ({ inputs: [r.arr(s)], args: [t], label: `[${s}] to [${t}]` })),
    run: ([x], [t]) => E.broadcastTo(x!, t as number[]), ref: ([x], [t]) => R.broadcastTo(x!, t as number[]),
  },
  {
    op: 'slice', tol: F32, grad: GRAD,
    cases: (r) => ([[[7], [2], [5]], [[3, 5], [1, 0], [3, 4]], [[2, 3, 4], [0, 1, 1], [1, 3, 4]], [[5, 6], [-3, 1], [5, -1]]] as Array<[number[], number[], number[]]>)
      .map(([s, b, e]) => ({ inputs: [r.arr(s)], args: [b, e], label: `[${s}] [${b}]:[${e}]` })),
    run: ([x], [b, e]) => E.slice(x!, b as number[], e as number[]),
    ref: ([x], [b, e]) => {
      const norm = (v: number, d: number) => (v < 0 ? v + d : v);
      return R.slice(x!, (b as number[]).map((v, i) => norm(v, x!.shape[i]!)), (e as number[]).map((v, i) => norm(v, x!.shape[i]!)));
    },
  },
  {
    op: 'pad', tol: F32, grad: GRAD,
    cases: (r) => ([[[3], [[1, 2]], 0], [[3, 5], [[0, 1], [2, 0]], -1.5], [[2, 1, 3], [[1, 1], [0, 0], [3, 1]], 0.25]] as Array<[number[], [number, number][], number]>)
      .map(([s, p, v]) => ({ inputs: [r.arr(s)], args: [p, v], label: `[${s}] pad ${JSON.stringify(p)} with ${v}` })),
    run: ([x], [p, v]) => E.pad(x!, p as [number, number][], v as number),
    ref: ([x], [p, v]) => R.pad(x!, p as [number, number][], v as number),
  },
  {
    op: 'concat', tol: F32, grad: GRAD,
    cases: (r) => ([[[[3, 2], [3, 5], [3, 1]], 1], [[[1, 4], [2, 4]], 0], [[[2, 3, 1], [2, 3, 2]], -1]] as Array<[number[][], number]>)
      .map(([ss, axis]) => ({ inputs: ss.map((s) => r.arr(s)), args: [axis], label: `${ss.map((s) => `[${s}]`).join(' ')} axis ${axis}` })),
    run: (xs, [axis]) => E.concat(xs, axis as number),
    ref: (xs, [axis]) => R.concat(xs, (axis as number) < 0 ? (axis as number) + xs[0]!.shape.length : (axis as number)),
  },
  {
    op: 'matmul', tol: { atol: 2e-5, rtol: 1e-5 }, grad: { atol: 5e-5, rtol: 2e-4 },
    cases: (r) => ([[[3, 5], [5, 2]], [[1, 7], [7, 1]], [[2, 65, 5], [2, 5, 67]], [[4, 3, 5], [5, 6]], [[5, 3], [2, 3, 4]],
      [[2, 1, 3, 4], [3, 4, 2]], [[7], [7, 3]], [[3, 7], [7]], [[66, 9], [9, 67]], [[7, 12], [12, 20]], [[3, 9, 13], [13, 36]], [[1, 5], [5, 4]], [[2, 3, 6], [1, 6, 8]]] as Array<[number[], number[]]>)
      .map(([sa, sb]) => ({ inputs: [r.arr(sa, -1, 1), r.arr(sb, -1, 1)], args: [], label: `[${sa}] x [${sb}]` })),
    run: ([a, b]) => E.matmul(a!, b!),
    ref: ([a, b]) => {
      const A = a!.shape.length === 1 ? { ...a!, shape: [1, a!.shape[0]!] } : a!;
      const B = b!.shape.length === 1 ? { ...b!, shape: [b!.shape[0]!, 1] } : b!;
      const c = R.matmul(A, B);
      const shape = c.shape.filter((_, i) => !((a!.shape.length === 1 && i === c.shape.length - 2) || (b!.shape.length === 1 && i === c.shape.length - 1)));
      return { shape, data: c.data };
    },
  },
  ...(['softmax', 'logSoftmax'] as const).map((op): Spec => ({
    op, tol: TRANS, grad: GRAD,
    cases: (r) => ([[[1, 2], -1], [[4, 7], -1], [[3, 5], 0], [[2, 3, 4], 1], [[2, 300], 1]] as Array<[number[], number]>)
      .map(([s, axis]) => ({ inputs: [r.arr(s, -5, 5)], args: [axis], label: `[${s}] axis ${axis}` })),
    run: ([x], [axis]) => E[op](x!, axis as number),
    ref: ([x], [axis]) => {
      const ax = (axis as number) < 0 ? (axis as number) + x!.shape.length : (axis as number);
      const p = x!.shape.map((_, i) => i); p[ax] = p.length - 1; p[p.length - 1] = ax;
      return R.permute(R.softmax(R.permute(x!, p), op === 'logSoftmax'), p);
    },
  })),
  {
    op: 'crossEntropy', tol: TRANS, grad: GRAD,
    cases: (r) => [[1, 2], [5, 3], [8, 10], [3, 130]].map(([n, c]) => {
      const labels = Array.from({ length: n! }, () => r.int(0, c! - 1));
      return { inputs: [r.arr([n!, c!], -4, 4)], args: [labels], label: `[${n}, ${c}]` };
    }),
    run: ([x], [labels]) => E.crossEntropyPerSample(x!, E.tensor(Int32Array.from(labels as number[]), [(labels as number[]).length])),
    ref: ([x], [labels]) => R.crossEntropy(x!, labels as number[]),
  },
  {
    op: 'conv2d', tol: { atol: 2e-5, rtol: 1e-5 }, grad: { atol: 5e-5, rtol: 2e-4 },
    cases: (r) => ([
      [[1, 3, 7, 6], [4, 3, 3, 3], 1, 'valid', true], [[2, 2, 6, 7], [3, 2, 3, 3], 2, 'same', false], [[2, 3, 5, 5], [2, 3, 1, 1], 2, 'same', true],
      [[1, 2, 9, 8], [3, 2, 3, 2], [2, 1], [1, 0, 2, 1], true], [[3, 1, 8, 8], [2, 1, 7, 7], 1, 'same', false],
    ] as Array<[number[], number[], number | [number, number], E.Padding, boolean]>).map(([xs, ws, stride, padding, bias]) => ({
      inputs: [r.arr(xs, -1, 1), r.arr(ws, -1, 1), ...(bias ? [r.arr([ws[0]!], -1, 1)] : [])], args: [stride, padding],
      label: `[${xs}] * [${ws}] stride ${JSON.stringify(stride)} padding ${JSON.stringify(padding)}${bias ? ' +bias' : ''}`,
    })),
    run: ([x, w, b], [stride, padding]) => E.conv2d(x!, w!, b, { stride: stride as number, padding: padding as E.Padding }),
    ref: ([x, w, b], [stride, padding]) => {
      const [sh, sw] = typeof stride === 'number' ? [stride, stride] : (stride as [number, number]);
      const pads = padding === 'same' ? R.tfSamePads(x!.shape[2]!, x!.shape[3]!, w!.shape[2]!, w!.shape[3]!, sh, sw)
        : padding === 'valid' ? [0, 0, 0, 0] : (padding as [number, number, number, number]);
      return R.conv2d(x!, w!, b ?? null, sh, sw, pads as [number, number, number, number]);
    },
  },
  ...([true, false] as const).map((training): Spec => ({
    op: 'batchNorm2d', tol: TRANS, grad: { atol: 5e-5, rtol: 5e-4 }, gradInputs: [0, 1, 2],
    cases: (r) => [[2, 3, 4, 5], [1, 2, 3, 3], [3, 1, 1, 2]].map((xs) => ({
      inputs: [r.arr(xs, -2, 3), r.arr([xs[1]!], 0.5, 1.5), r.arr([xs[1]!], -1, 1), r.arr([xs[1]!], -0.5, 0.5), r.arr([xs[1]!], 0.5, 2)],
      args: [training], label: `[${xs}] ${training ? 'training' : 'inference'}`,
    })),
    run: ([x, g, b, m, v], [tr]) => E.batchNorm2d(x!, g!, b!, m!, v!, { training: tr as boolean, eps: 1e-3 }),
    ref: ([x, g, b, m, v], [tr]) => R.batchNorm(x!, g!, b!, 1e-3, tr ? undefined : { mean: m!, var: v! }).y,
  })),
  ...(['max', 'avg'] as const).map((kind): Spec => ({
    op: kind === 'max' ? 'maxPool2d' : 'avgPool2d', tol: TRANS, grad: GRAD,
    cases: (r) => ([[[1, 2, 7, 7], 3, 2, 'valid'], [[2, 1, 6, 5], 2, 2, 'same'], [[1, 2, 5, 6], 3, 2, 'same'], [[2, 2, 4, 4], 2, 1, 'valid'], [[1, 1, 8, 8], 8, 8, 'valid']] as Array<[number[], number, number, E.Padding]>)
      .map(([xs, k, st, pad]) => ({ inputs: [r.arr(xs)], args: [k, st, pad], label: `[${xs}] k${k} s${st} ${pad}` })),
    run: ([x], [k, st, pad]) => (kind === 'max' ? E.maxPool2d : E.avgPool2d)(x!, k as number, { stride: st as number, padding: pad as E.Padding }),
    ref: ([x], [k, st, pad]) => R.pool2d(x!, kind, k as number, k as number, st as number, st as number,
      pad === 'same' ? R.tfSamePads(x!.shape[2]!, x!.shape[3]!, k as number, k as number, st as number, st as number) : [0, 0, 0, 0]),
  })),
  {
    op: 'crossEntropy', tol: TRANS, grad: GRAD, gradInputs: [0],
    cases: (r) => [[1, 2], [4, 3], [3, 9]].map(([n, c]) => {
      const t = R.map(r.arr([n!, c!], 0, 1), (v) => v);
      return { inputs: [r.arr([n!, c!], -4, 4), t], args: [], label: `[${n}, ${c}] soft targets` };
    }),
    run: ([x, t]) => E.crossEntropyPerSample(x!, t!),
    ref: ([x, t]) => {
      const ls = R.softmax(x!, true);
      const C = x!.shape[1]!;
      return R.arr([x!.shape[0]!], Array.from({ length: x!.shape[0]! }, (_, i) => -Array.from({ length: C }, (_, k) => t!.data[i * C + k]! * ls.data[i * C + k]!).reduce((a, b) => a + b, 0)));
    },
  },
  {
    op: 'cast', tol: { atol: 0, rtol: 0 }, grad: false,
    cases: (r) => [[7], [3, 5], [33, 65]].map((sh) => ({ inputs: [r.arr(sh, -50, 50)], args: [], label: `[${sh}] float -> int -> float` })),
    run: ([x]) => E.cast(E.cast(x!, 'int32'), 'float32'),
    ref: ([x]) => R.map(x!, Math.trunc),
  },
];
