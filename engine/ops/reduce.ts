// Reductions over any set of axes. The reduced axes are moved last (a copy only when they are
// not already last), then reduce.wgsl folds each row. Backward broadcasts the gradient back;
// max/min split it evenly among tied maxima, which is what the derivative's average gives.
// float16 inputs are reduced in f32 and give float32 results (unlike PyTorch, which returns
// float16): a mixed-precision model's pooled features, head and loss then run in float32.
import { Tensor, tidy } from '../tensor/tensor.js';
import { normAxes, numel } from '../shape.js';
import { reduceRowsKernel, type ReduceCode } from '../kernels/launch.js';
import { EXACT, F32, reductionCheck } from '../reference/check.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { op } from './record.js';
import { floating } from './checks.js';
import { broadcastTo, permute, reshape } from './movement.js';
import { div, eq, mul } from './elementwise.js';

export type Axes = number | readonly number[] | undefined;
type Reduce = (x: Tensor, axes?: Axes, keepdims?: boolean) => Tensor;

interface Plan { axes: number[]; kept: number[]; keepShape: number[]; outShape: number[]; rows: number; len: number }

function plan(x: Tensor, axes: Axes, keepdims: boolean, op: string): Plan {
  const ax = normAxes(axes, x.shape, op);
  const kept = x.shape.map((_, i) => i).filter((i) => !ax.includes(i));
  const keepShape = x.shape.map((d, i) => (ax.includes(i) ? 1 : d));
  return {
    axes: ax, kept, keepShape,
    outShape: keepdims ? keepShape : kept.map((i) => x.shape[i]!),
    rows: numel(kept.map((i) => x.shape[i]!)),
    len: numel(ax.map((i) => x.shape[i]!)),
  };
}

function reduceForward(code: ReduceCode, x: Tensor, axes: Axes, keepdims: boolean): Tensor {
  const p = plan(floating(x, code), axes, keepdims, code);
  const perm = [...p.kept, ...p.axes];
  if (perm.every((a, i) => a === i)) return reduceRowsKernel(x, p.rows, p.len, code, p.outShape);
  return tidy(() => reduceRowsKernel(permute(x, perm), p.rows, p.len, code, p.outShape));
}

/** The gradient of a reduction, broadcast back to the input's shape. */
function spread(g: Tensor, x: Tensor, axes: Axes): Tensor {
  return broadcastTo(reshape(g, plan(x, axes, true, 'sum').keepShape), x.shape);
}

export const sum: Reduce = op({
  name: 'sum', kind: 'reduce', method: true, check: reductionCheck(R.sum),
  forward: (x: Tensor, axes?: Axes, keepdims = false): Tensor => reduceForward('sum', x, axes, keepdims),
  backward: (g: Tensor, _y: Tensor, x: Tensor, axes?: Axes): Grad => [spread(g, x, axes)],
});

export const mean: Reduce = op({
  name: 'mean', kind: 'reduce', method: true, check: reductionCheck(R.mean),
  forward: (x: Tensor, axes?: Axes, keepdims = false): Tensor => tidy(() => mul(reduceForward('sum', x, axes, keepdims), 1 / Math.max(plan(x, axes, keepdims, 'mean').len, 1))),
  backward: (g: Tensor, _y: Tensor, x: Tensor, axes?: Axes): Grad => [mul(spread(g, x, axes), 1 / Math.max(plan(x, axes, true, 'mean').len, 1))],
});

const extremum = (name: 'max' | 'min'): Reduce => op({
  name, kind: 'reduce', method: true, check: reductionCheck(name === 'max' ? R.max : R.min, F32),
  forward: (x: Tensor, axes?: Axes, keepdims = false): Tensor => reduceForward(name, x, axes, keepdims),
  backward: (g: Tensor, y: Tensor, x: Tensor, axes?: Axes): Grad => {
    const keep = plan(x, axes, true, name).keepShape;
    const mask = eq(x, reshape(y, keep));
    return [mul(div(mask, sum(mask, axes, true)), reshape(g, keep))];
  },
});

export const max = extremum('max');
export const min = extremum('min');

/** Index of the largest (smallest) value along one axis, as int32; ties take the first. */
const argExtremum = (name: 'argmax' | 'argmin'): (x: Tensor, axis?: number, keepdims?: boolean) => Tensor => op({
  name, kind: 'reduce', method: true,
  check: {
    tol: EXACT, grad: false,
    cases: (r) => ([[[7], 0], [[3, 5], 1], [[3, 5], 0], [[2, 3, 4], -1], [[1, 300], 1], [[300, 2], 1]] as Array<[number[], number]>)
      .map(([s, axis]) => ({ inputs: [r.arr(s)], args: [axis], label: `[${s}] axis ${axis}` })),
    ref: ([x], [axis]) => R.argExt(x!, axis as number, false, name === 'argmax' ? (a, b) => a > b : (a, b) => a < b),
  },
  forward: (x: Tensor, axis = -1, keepdims = false): Tensor => reduceForward(name, x, axis, keepdims),
});

export const argmax = argExtremum('argmax');
export const argmin = argExtremum('argmin');
