// Reductions over any set of axes. The reduced axes are moved last (a copy only when they are
// not already last), then reduce.wgsl folds each row. Backward broadcasts the gradient back;
// max/min split it evenly among tied maxima, which is what the derivative's average gives.
import { Tensor, tidy } from '../tensor.js';
import { normAxes, numel } from '../shape.js';
import { defineOp } from './define.js';
import { float } from './checks.js';
import { REDUCE, reduceRowsKernel } from './launch.js';
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

function reduceForward(code: keyof typeof REDUCE, x: Tensor, axes: Axes, keepdims: boolean): Tensor {
  const p = plan(float(x, code), axes, keepdims, code);
  const perm = [...p.kept, ...p.axes];
  if (perm.every((a, i) => a === i)) return reduceRowsKernel(x, p.rows, p.len, code, p.outShape);
  return tidy(() => reduceRowsKernel(permute(x, perm), p.rows, p.len, code, p.outShape));
}

/** The gradient of a reduction, broadcast back to the input's shape. */
function spread(g: Tensor, x: Tensor, axes: Axes): Tensor {
  return broadcastTo(reshape(g, plan(x, axes, true, 'sum').keepShape), x.shape);
}

export const sum: Reduce = defineOp('sum',
  (x: Tensor, axes?: Axes, keepdims = false) => reduceForward('sum', x, axes, keepdims),
  (g, _y, x, axes) => [spread(g, x, axes)]);

export const mean: Reduce = defineOp('mean',
  (x: Tensor, axes?: Axes, keepdims = false) => tidy(() => mul(reduceForward('sum', x, axes, keepdims), 1 / Math.max(plan(x, axes, keepdims, 'mean').len, 1))),
  (g, _y, x, axes) => [mul(spread(g, x, axes), 1 / Math.max(plan(x, axes, true, 'mean').len, 1))]);

const extremum = (code: 'max' | 'min'): Reduce => defineOp(code,
  (x: Tensor, axes?: Axes, keepdims = false) => reduceForward(code, x, axes, keepdims),
  (g, y, x, axes) => {
    const keep = plan(x, axes, true, code).keepShape;
    const mask = eq(x, reshape(y, keep));
    return [mul(div(mask, sum(mask, axes, true)), reshape(g, keep))];
  });

export const max = extremum('max');
export const min = extremum('min');

/** Index of the largest (smallest) value along one axis, as int32; ties take the first. */
export const argmax: (x: Tensor, axis?: number, keepdims?: boolean) => Tensor = defineOp('argmax', (x: Tensor, axis = -1, keepdims = false) => reduceForward('argmax', x, axis, keepdims));
export const argmin: (x: Tensor, axis?: number, keepdims?: boolean) => Tensor = defineOp('argmin', (x: Tensor, axis = -1, keepdims = false) => reduceForward('argmin', x, axis, keepdims));

