// Slicing, padding, joining and dtype conversion: each forward is one or a few strided copies
// (copy.wgsl), each backward the inverse move.
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { contiguousStrides, fmt, normAxis } from '../shape.js';
import { fillKernel, gridFor, packParams, stridedCopy } from '../kernels/launch.js';
import { defineKernel } from '../kernels/variants.js';
import { DTYPES, type DType } from '../dtype.js';
import { EXACT, F32, GRAD } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { op } from './record.js';
import { tensorArg, unsqueeze } from './movement.js';

/** Per-axis [start, end) with negative indices from the end; missing axes are taken whole. */
function sliceBounds(x: Tensor, starts: readonly number[], ends?: ReadonlyArray<number | null>): Array<[number, number]> {
  if (starts.length > x.rank || (ends && ends.length > x.rank)) {
    throw new Error(`medgrad: slice: ${starts.length} starts for a tensor of shape ${fmt(x.shape)}`);
  }
  return x.shape.map((dim, i) => {
    const norm = (v: number) => (v < 0 ? v + dim : v);
    const s = norm(starts[i] ?? 0);
    const e = norm(ends?.[i] ?? dim);
    if (!Number.isInteger(s) || !Number.isInteger(e) || s < 0 || e > dim || s > e) {
      throw new Error(`medgrad: slice: range [${starts[i]}, ${ends?.[i] ?? dim}) is out of bounds for axis ${i} of shape ${fmt(x.shape)}`);
    }
    return [s, e];
  });
}

export const slice: (x: Tensor, starts: readonly number[], ends?: ReadonlyArray<number | null>) => Tensor = op({
  name: 'slice', kind: 'movement', method: true,
  check: {
    tol: F32, grad: GRAD,
    cases: (r) => ([[[7], [2], [5]], [[3, 5], [1, 0], [3, 4]], [[2, 3, 4], [0, 1, 1], [1, 3, 4]], [[5, 6], [-3, 1], [5, -1]]] as Array<[number[], number[], number[]]>)
      .map(([s, b, e]) => ({ inputs: [r.arr(s)], args: [b, e], label: `[${s}] [${b}]:[${e}]` })),
    ref: ([x], [b, e]) => {
      const norm = (v: number, d: number) => (v < 0 ? v + d : v);
      return R.slice(x!, (b as number[]).map((v, i) => norm(v, x!.shape[i]!)), (e as number[]).map((v, i) => norm(v, x!.shape[i]!)));
    },
  },
  forward: (x: Tensor, starts: readonly number[], ends?: ReadonlyArray<number | null>): Tensor => {
    const b = sliceBounds(tensorArg(x, 'slice'), starts, ends);
    const shape = b.map(([s, e]) => e - s);
    const xs = x.strides;
    const out = empty(shape, x.dtype);
    const offset = b.reduce((acc, [s], i) => acc + s * xs[i]!, 0);
    stridedCopy(x, out, shape, xs, offset, contiguousStrides(shape), 0, 'slice');
    return out;
  },
  backward: (g: Tensor, _y: Tensor, x: Tensor, starts: readonly number[], ends?: ReadonlyArray<number | null>): Grad => {
    const b = sliceBounds(x, starts, ends);
    return [pad(g, b.map(([s, e], i) => [s, x.shape[i]! - e] as [number, number]))];
  },
});

/** Pads each axis with `value`: pads[i] = [before, after] (missing axes unpadded). */
type Pads = ReadonlyArray<readonly [number, number]>;

export const pad: (x: Tensor, pads: Pads, value?: number) => Tensor = op({
  name: 'pad', kind: 'movement', method: true,
  check: {
    tol: F32, grad: GRAD,
    cases: (r) => ([[[3], [[1, 2]], 0], [[3, 5], [[0, 1], [2, 0]], -1.5], [[2, 1, 3], [[1, 1], [0, 0], [3, 1]], 0.25]] as Array<[number[], [number, number][], number]>)
      .map(([s, p, v]) => ({ inputs: [r.arr(s)], args: [p, v], label: `[${s}] pad ${JSON.stringify(p)} with ${v}` })),
    ref: ([x], [p, v]) => R.pad(x!, p as [number, number][], v as number),
  },
  forward: (x: Tensor, pads: Pads, value = 0): Tensor => {
    tensorArg(x, 'pad');
    if (pads.length > x.rank || pads.some(([a, b]) => !Number.isInteger(a) || !Number.isInteger(b) || a < 0 || b < 0)) {
      throw new Error(`medgrad: pad: bad padding ${JSON.stringify(pads)} for shape ${fmt(x.shape)} (non-negative integer [before, after] per axis)`);
    }
    const p = x.shape.map((_, i) => pads[i] ?? [0, 0]);
    const shape = x.shape.map((d, i) => d + p[i]![0] + p[i]![1]);
    const out = fillKernel(empty(shape, x.dtype), value);
    const os = contiguousStrides(shape);
    const offset = p.reduce((acc, [before], i) => acc + before * os[i]!, 0);
    stridedCopy(x, out, x.shape, x.strides, 0, os, offset, 'pad');
    return out;
  },
  backward: (g: Tensor, _y: Tensor, x: Tensor, pads: Pads): Grad => {
    const p = x.shape.map((_, i) => pads[i] ?? [0, 0]);
    return [slice(g, p.map(([b]) => b), p.map(([b], i) => b + x.shape[i]!))];
  },
});

export const concat: (xs: readonly Tensor[], axis?: number) => Tensor = op({
  name: 'concat', kind: 'movement',
  check: {
    tol: F32, grad: GRAD,
    cases: (r) => ([[[[3, 2], [3, 5], [3, 1]], 1], [[[1, 4], [2, 4]], 0], [[[2, 3, 1], [2, 3, 2]], -1]] as Array<[number[][], number]>)
      .map(([ss, axis]) => ({ inputs: ss.map((s) => r.arr(s)), args: [axis], label: `${ss.map((s) => `[${s}]`).join(' ')} axis ${axis}` })),
    run: (f, xs, [axis]) => f(xs, axis),
    ref: (xs, [axis]) => R.concat(xs, (axis as number) < 0 ? (axis as number) + xs[0]!.shape.length : (axis as number)),
  },
  forward: (xs: readonly Tensor[], axis = 0): Tensor => {
    if (!Array.isArray(xs as unknown) || xs.length === 0) throw new Error('medgrad: concat: needs a non-empty list of tensors');
    const first = tensorArg(xs[0], 'concat');
    const ax = normAxis(axis, first.rank, first.shape, 'concat');
    for (const t of xs) {
      tensorArg(t, 'concat');
      if (t.rank !== first.rank || t.dtype !== first.dtype || t.shape.some((d, i) => i !== ax && d !== first.shape[i])) {
        throw new Error(`medgrad: concat: shapes ${xs.map((q) => fmt(q.shape)).join(', ')} differ outside axis ${ax} (or in dtype)`);
      }
    }
    const shape = [...first.shape];
    shape[ax] = xs.reduce((s, t) => s + t.shape[ax]!, 0);
    const out = empty(shape, first.dtype);
    const os = contiguousStrides(shape);
    let at = 0;
    for (const t of xs) {
      stridedCopy(t, out, t.shape, t.strides, 0, os, at * os[ax]!, 'concat');
      at += t.shape[ax]!;
    }
    return out;
  },
  backward: (g: Tensor, _y: Tensor, xs: readonly Tensor[], axis = 0): Grad => {
    const ax = normAxis(axis, xs[0]!.rank, xs[0]!.shape, 'concat');
    let at = 0;
    return xs.map((t) => {
      const starts = t.shape.map((_, i) => (i === ax ? at : 0));
      const ends = t.shape.map((d, i) => (i === ax ? at + d : d));
      at += t.shape[ax]!;
      return slice(g, starts, ends);
    });
  },
});

export const stack = (xs: readonly Tensor[], axis = 0): Tensor => {
  if (xs.length === 0) throw new Error('medgrad: stack: needs a non-empty list of tensors');
  const ax = normAxis(axis, xs[0]!.rank + 1, xs[0]!.shape, 'stack');
  return concat(xs.map((t) => unsqueeze(t, ax)), ax);
};


const HALF_TOL = { atol: 3e-8, rtol: 2 ** -11 };

const CONVERT = defineKernel<{ n: number }>({ name: 'copy.convert', variants: [{ name: 'grid', family: 'copy', entry: 'convert' }] });
/** float32 <-> float16 by bit arithmetic (cast16.wgsl); listed with `shader-f16` since only then are there float16 tensors. */
const HALF = { features: ['shader-f16'] } as const;
const CONVERT_HALF = defineKernel<{ n: number; to: 'half' | 'float' }>({
  name: 'cast16.convert',
  variants: [
    { name: 'to-half', family: 'cast16', entry: 'to_half', requires: HALF, serves: (s) => s.to === 'half' },
    { name: 'to-float', family: 'cast16', entry: 'to_float', requires: HALF, serves: (s) => s.to === 'float' },
  ],
});

function convert(x: Tensor, dtype: DType): Tensor {
  const out = empty(x.shape, dtype, `cast ${fmt(x.shape)} ${x.dtype} -> ${dtype}`);
  if (x.size === 0) return out;
  const rt = runtime();
  const common = { op: 'cast', label: `cast ${fmt(x.shape)} ${x.dtype} -> ${dtype}`, buffers: { dst: out.buffer, src: x.buffer }, bytes: x.nbytes + out.nbytes };
  if (x.dtype === 'float16' || dtype === 'float16') {
    const to = dtype === 'float16' ? 'half' : 'float';
    rt.launch(CONVERT_HALF, { n: x.size, to }, (k) => ({ ...common, params: packParams([x.size]), workgroups: gridFor(to === 'half' ? Math.ceil(x.size / 2) : x.size, k) }));
    return out;
  }
  rt.launch(CONVERT, { n: x.size }, (k) => ({ ...common, params: packParams([x.size, 1, 0, 0]), workgroups: gridFor(x.size, k) }),
    { OP: rt.shaderCode('copy', dtype === 'float32' ? 'INT_TO_FLOAT' : 'FLOAT_TO_INT') });
  return out;
}

/**
 * The values converted to another dtype: float -> int truncates toward zero, float32 -> float16
 * rounds to nearest even (overflow to Infinity, as PyTorch's .half()). Between float dtypes the
 * gradient flows back, cast to the input's dtype (mixed precision casts float32 weights each step).
 */
export const cast: (x: Tensor, dtype: DType) => Tensor = op({
  name: 'cast', kind: 'movement', method: true,
  check: [{
    tol: EXACT, grad: false,
    cases: (r) => [[7], [3, 5], [33, 65]].map((sh) => ({ inputs: [r.arr(sh, -50, 50)], args: [], label: `[${sh}] float -> int -> float` })),
    run: (f, [x]) => f(f(x, 'int32'), 'float32'),
    ref: ([x]) => R.map(x!, Math.trunc),
  }, {
    // Through float16 and back: the identity within float16's rounding (2^-11 relative, 2^-25
    // absolute below its normal range), gradient included. test/half.test.ts checks it bit for bit.
    tol: HALF_TOL, grad: HALF_TOL,
    cases: (r) => [[7], [3, 5], [33, 65]].map((sh) => ({ inputs: [r.arr(sh)], args: [], label: `[${sh}] float32 -> float16 -> float32` })),
    run: (f, [x]) => {
      // An adapter without shader-f16 has no float16 tensors (the error is tested in half.test.ts).
      try { return f(f(x, 'float16'), 'float32'); } catch (e) { if (/shader-f16/.test(String(e))) return f(x, 'float32'); throw e; }
    },
    ref: ([x]) => x!,
  }],
  forward: (x: Tensor, dtype: DType): Tensor => {
    tensorArg(x, 'cast');
    if (!(dtype in DTYPES)) throw new Error(`medgrad: cast: unknown dtype '${String(dtype)}' (${Object.keys(DTYPES).join(' or ')})`);
    if (x.dtype === dtype) return x.view(x.shape);
    // int32 <-> float16 goes through float32 (exact for the integers float16 holds).
    if ((x.dtype === 'int32' && dtype === 'float16') || (x.dtype === 'float16' && dtype === 'int32')) {
      const mid = convert(x, 'float32');
      const out = convert(mid, dtype);
      mid.dispose();
      return out;
    }
    return convert(x, dtype);
  },
  backward: (g: Tensor, _out: Tensor, x: Tensor): Grad => [x.dtypeInfo.differentiable ? cast(g, x.dtype) : null],
});
