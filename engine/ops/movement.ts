// Shape and data-movement ops. reshape is a free view; everything else is one strided copy
// (copy.wgsl), so each forward is a stride computation and each backward is the inverse move.
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { broadcastShapes, broadcastStrides, checkShape, contiguousStrides, fmt, inferReshape, normAxis, sameShape, type Shape } from '../shape.js';
import { stridedCopy } from '../kernels/launch.js';
import { F32, GRAD } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { composite, op } from './record.js';
import { sum } from './reduce.js';

export function tensorArg(x: unknown, opName: string): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`medgrad: ${opName}: expected a Tensor, got ${typeof x}`);
  return x;
}

export const reshape: (x: Tensor, shape: Shape) => Tensor = op({
  name: 'reshape', kind: 'movement', method: true,
  check: {
    tol: F32, grad: GRAD,
    cases: (r) => [[[3, 5], [5, 3]], [[2, 1, 4], [-1]], [[6], [1, 2, 3, 1]]].map(([s, t]) => ({ inputs: [r.arr(s!)], args: [t], label: `[${s}] to [${t}]` })),
    ref: ([x], [t]) => ({ shape: (t as number[]).map((d) => (d === -1 ? x!.data.length : d)), data: x!.data.slice() }),
  },
  forward: (x: Tensor, shape: Shape): Tensor => tensorArg(x, 'reshape').view(inferReshape(x.shape, shape)),
  backward: (g: Tensor, _y: Tensor, x: Tensor): Grad => [reshape(g, x.shape)],
});

export const flatten = composite('flatten', (x: Tensor, startDim = 0): Tensor => {
  const s = normAxis(startDim, x.rank, x.shape, 'flatten');
  return reshape(x, [...x.shape.slice(0, s), -1]);
});
export const unsqueeze = composite('unsqueeze', (x: Tensor, dim: number): Tensor => {
  const d = normAxis(dim, x.rank + 1, x.shape, 'unsqueeze');
  return reshape(x, [...x.shape.slice(0, d), 1, ...x.shape.slice(d)]);
});
export const squeeze = composite('squeeze', (x: Tensor, dim?: number): Tensor => {
  if (dim === undefined) return reshape(x, x.shape.filter((d) => d !== 1));
  const d = normAxis(dim, x.rank, x.shape, 'squeeze');
  // Nothing to squeeze still gives a new tensor (a view), so disposing it leaves x alone.
  return reshape(x, x.shape[d] === 1 ? x.shape.filter((_, i) => i !== d) : x.shape);
});

function checkPerm(axes: readonly number[], x: Tensor): number[] {
  const p = axes.map((a) => normAxis(a, x.rank, x.shape, 'permute'));
  if (p.length !== x.rank || new Set(p).size !== p.length) {
    throw new Error(`medgrad: permute: axes ${JSON.stringify(axes)} are not a permutation of the ${x.rank} axes of shape ${fmt(x.shape)}`);
  }
  return p;
}

export const permute: (x: Tensor, axes: readonly number[]) => Tensor = op({
  name: 'permute', kind: 'movement', method: true,
  check: {
    tol: F32, grad: GRAD,
    cases: (r) => ([[[3, 5], [1, 0]], [[2, 3, 4], [2, 0, 1]], [[1, 3, 1, 5], [3, 1, 0, 2]], [[33, 65], [1, 0]], [[3, 17, 20], [0, 2, 1]], [[2, 3, 4, 5], [0, 1, 3, 2]]] as Array<[number[], number[]]>)
      .map(([s, p]) => ({ inputs: [r.arr(s)], args: [p], label: `[${s}] by [${p}]` })),
    ref: ([x], [p]) => R.permute(x!, p as number[]),
  },
  forward: (x: Tensor, axes: readonly number[]): Tensor => {
    const p = checkPerm(axes, tensorArg(x, 'permute'));
    if (p.every((a, i) => a === i)) return x.view(x.shape);
    const shape = p.map((a) => x.shape[a]!);
    const out = empty(shape, x.dtype);
    const xs = x.strides;
    stridedCopy(x, out, shape, p.map((a) => xs[a]!), 0, contiguousStrides(shape), 0, 'permute');
    return out;
  },
  backward: (g: Tensor, _y: Tensor, x: Tensor, axes: readonly number[]): Grad => {
    const p = checkPerm(axes, x);
    const inv = new Array<number>(p.length);
    p.forEach((a, i) => { inv[a] = i; });
    return [permute(g, inv)];
  },
});

/** Swaps two axes (the last two by default). */
export const transpose = composite('transpose', (x: Tensor, dim0 = -2, dim1 = -1): Tensor => {
  const a = normAxis(dim0, x.rank, x.shape, 'transpose');
  const b = normAxis(dim1, x.rank, x.shape, 'transpose');
  const p = x.shape.map((_, i) => i);
  p[a] = b; p[b] = a;
  return permute(x, p);
});

export const broadcastTo: (x: Tensor, shape: Shape) => Tensor = op({
  name: 'broadcastTo', kind: 'movement', method: true,
  check: {
    tol: F32, grad: GRAD,
    cases: (r) => ([[[3, 1], [3, 5]], [[5], [2, 3, 5]], [[1], [4]], [[2, 1, 3], [2, 4, 3]]] as Array<[number[], number[]]>)
      .map(([s, t]) => ({ inputs: [r.arr(s)], args: [t], label: `[${s}] to [${t}]` })),
    ref: ([x], [t]) => R.broadcastTo(x!, t as number[]),
  },
  forward: (x: Tensor, shape: Shape): Tensor => {
    checkShape(shape, 'broadcastTo target');
    const s = broadcastShapes(tensorArg(x, 'broadcastTo').shape, shape, 'broadcastTo');
    if (!sameShape(s, shape)) throw new Error(`medgrad: broadcastTo: shape ${fmt(x.shape)} cannot be broadcast to ${fmt(shape)}`);
    if (sameShape(x.shape, shape)) return x.view(shape);
    const out = empty(shape, x.dtype);
    stridedCopy(x, out, shape, broadcastStrides(x.shape, shape), 0, contiguousStrides(shape), 0, 'broadcastTo');
    return out;
  },
  backward: (g: Tensor, _y: Tensor, x: Tensor): Grad => [sumTo(g, x.shape)],
});

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

/** A tensor with the same values, cut off from the graph (a free view). */
export const detach = composite('detach', (x: Tensor): Tensor => tensorArg(x, 'detach').view(x.shape));
