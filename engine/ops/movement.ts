// Shape and data-movement ops. reshape is a free view; everything else is one strided copy
// (copy.wgsl), so each forward is a stride computation and each backward is the inverse move.
import { empty, Tensor, tidy } from '../tensor.js';
import { broadcastShapes, broadcastStrides, checkShape, contiguousStrides, fmt, inferReshape, normAxis, sameShape, type Shape } from '../shape.js';
import { defineOp } from './define.js';
import { fillKernel, gridFor, packParams, stridedCopy } from './launch.js';
import { runtime } from '../context.js';
import type { DType } from '../tensor.js';
import { sum } from './reduce.js';

function tensorArg(x: unknown, op: string): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`medgrad: ${op}: expected a Tensor, got ${typeof x}`);
  return x;
}

export const reshape: (x: Tensor, shape: Shape) => Tensor = defineOp('reshape',
  (x: Tensor, shape: Shape) => tensorArg(x, 'reshape').view(inferReshape(x.shape, shape)),
  (g, _y, x) => [reshape(g, x.shape)]);

export const flatten = (x: Tensor, startDim = 0): Tensor => {
  const s = normAxis(startDim, x.rank, x.shape, 'flatten');
  return reshape(x, [...x.shape.slice(0, s), -1]);
};
export const unsqueeze = (x: Tensor, dim: number): Tensor => {
  const d = normAxis(dim, x.rank + 1, x.shape, 'unsqueeze');
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
};
export const squeeze = (x: Tensor, dim?: number): Tensor => {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normAxis(dim, x.rank, x.shape, 'squeeze');
  // Nothing to squeeze still gives a new tensor (a view), so disposing it leaves x alone.
  return reshape(x, x.shape[d] === 1 ? x.shape.filter((_, i) => i !== d) : x.shape);
};

function checkPerm(axes: readonly number[], x: Tensor): number[] {
  const p = axes.map((a) => normAxis(a, x.rank, x.shape, 'permute'));
  if (p.length !== x.rank || new Set(p).size !== p.length) {
    throw new Error(`medgrad: permute: axes ${JSON.stringify(axes)} are not a permutation of the ${x.rank} axes of shape ${fmt(x.shape)}`);
  }
  return p;
}

export const permute: (x: Tensor, axes: readonly number[]) => Tensor = defineOp('permute',
  (x: Tensor, axes: readonly number[]) => {
    const p = checkPerm(axes, tensorArg(x, 'permute'));
    if (p.every((a, i) => a === i)) return x.view(x.shape);
    const shape = p.map((a) => x.shape[a]!);
    const out = empty(shape, x.dtype);
    const xs = x.strides;
    stridedCopy(x, out, shape, p.map((a) => xs[a]!), 0, contiguousStrides(shape), 0, 'permute');
    return out;
  },
  (g, _y, x, axes) => {
    const p = checkPerm(axes, x);
    const inv = new Array<number>(p.length);
    p.forEach((a, i) => { inv[a] = i; });
    return [permute(g, inv)];
  });

/** Swaps two axes (the last two by default). */
export function transpose(x: Tensor, dim0 = -2, dim1 = -1): Tensor {
  const a = normAxis(dim0, x.rank, x.shape, 'transpose');
  const b = normAxis(dim1, x.rank, x.shape, 'transpose');
  const p = x.shape.map((_, i) => i);
  p[a] = b; p[b] = a;
  return permute(x, p);
}

export const broadcastTo: (x: Tensor, shape: Shape) => Tensor = defineOp('broadcastTo',
  (x: Tensor, shape: Shape) => {
    checkShape(shape, 'broadcastTo target');
    const s = broadcastShapes(tensorArg(x, 'broadcastTo').shape, shape, 'broadcastTo');
    if (!sameShape(s, shape)) throw new Error(`medgrad: broadcastTo: shape ${fmt(x.shape)} cannot be broadcast to ${fmt(shape)}`);
    if (sameShape(x.shape, shape)) return x.view(shape);
    const out = empty(shape, x.dtype);
    stridedCopy(x, out, shape, broadcastStrides(x.shape, shape), 0, contiguousStrides(shape), 0, 'broadcastTo');
    return out;
  },
  (g, _y, x) => [sumTo(g, x.shape)]);

/** Sums g over the axes along which `shape` was broadcast to g's shape: broadcasting's adjoint. */
export function sumTo(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  return tidy(() => {
    const lead = g.rank - shape.length;
    const axes: number[] = [];
    for (let i = 0; i < g.rank; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
    return reshape(sum(g, axes, true), shape);
  });
}

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

export const slice: (x: Tensor, starts: readonly number[], ends?: ReadonlyArray<number | null>) => Tensor = defineOp('slice',
  (x: Tensor, starts: readonly number[], ends?: ReadonlyArray<number | null>) => {
    const b = sliceBounds(tensorArg(x, 'slice'), starts, ends);
    const shape = b.map(([s, e]) => e - s);
    const xs = x.strides;
    const out = empty(shape, x.dtype);
    const offset = b.reduce((acc, [s], i) => acc + s * xs[i]!, 0);
    stridedCopy(x, out, shape, xs, offset, contiguousStrides(shape), 0, 'slice');
    return out;
  },
  (g, _y, x, starts, ends) => {
    const b = sliceBounds(x, starts, ends);
    return [pad(g, b.map(([s, e], i) => [s, x.shape[i]! - e] as [number, number]))];
  });

/** Pads each axis with `value`: pads[i] = [before, after] (missing axes unpadded). */
export const pad: (x: Tensor, pads: ReadonlyArray<readonly [number, number]>, value?: number) => Tensor = defineOp('pad',
  (x: Tensor, pads: ReadonlyArray<readonly [number, number]>, value = 0) => {
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
  (g, _y, x, pads) => {
    const p = x.shape.map((_, i) => pads[i] ?? [0, 0]);
    return [slice(g, p.map(([b]) => b), p.map(([b], i) => b + x.shape[i]!))];
  });

export const concat: (xs: readonly Tensor[], axis?: number) => Tensor = defineOp('concat',
  (xs: readonly Tensor[], axis = 0) => {
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
  (g, _y, xs, axis = 0) => {
    const ax = normAxis(axis, xs[0]!.rank, xs[0]!.shape, 'concat');
    let at = 0;
    return xs.map((t) => {
      const starts = t.shape.map((_, i) => (i === ax ? at : 0));
      const ends = t.shape.map((d, i) => (i === ax ? at + d : d));
      at += t.shape[ax]!;
      return slice(g, starts, ends);
    });
  });

export const stack = (xs: readonly Tensor[], axis = 0): Tensor => {
  if (xs.length === 0) throw new Error('medgrad: stack: needs a non-empty list of tensors');
  const ax = normAxis(axis, xs[0]!.rank + 1, xs[0]!.shape, 'stack');
  return concat(xs.map((t) => unsqueeze(t, ax)), ax);
};


/** The values converted to another dtype (float -> int truncates toward zero); no gradient. */
export const cast: (x: Tensor, dtype: DType) => Tensor = defineOp('cast', (x: Tensor, dtype: DType) => {
  tensorArg(x, 'cast');
  if (dtype !== 'float32' && dtype !== 'int32') throw new Error(`medgrad: cast: unknown dtype '${String(dtype)}' (float32 or int32)`);
  if (x.dtype === dtype) return x.view(x.shape);
  const out = empty(x.shape, dtype);
  if (x.size === 0) return out;
  const rt = runtime();
  rt.dispatch(rt.kernel('copy', 'convert', { OP: dtype === 'float32' ? 0 : 1 }), {
    op: 'cast', label: `cast ${fmt(x.shape)} ${x.dtype} -> ${dtype}`,
    params: packParams([x.size, 1, 0, 0]), buffers: { dst: out.buffer, src: x.buffer },
    workgroups: gridFor(x.size), bytes: 8 * x.size,
  });
  return out;
});
