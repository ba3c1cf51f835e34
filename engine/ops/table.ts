// The op table: every op of the engine in one place. The functional API exports these, and
// Tensor's methods are installed from METHODS (x.add(y) === add(x, y)), so an op is defined once.
import { Tensor } from '../tensor.js';
import * as ew from './elementwise.js';
import * as mv from './movement.js';
import * as rd from './reduce.js';
import * as la from './linalg.js';
import * as sm from './softmax.js';
import * as cv from './conv.js';
import * as nm from './norm.js';
import * as pl from './pool.js';
import { backward as runBackward, type BackwardOptions } from '../autograd/backward.js';

export * from './elementwise.js';
export * from './movement.js';
export * from './reduce.js';
export * from './linalg.js';
export * from './softmax.js';
export * from './conv.js';
export * from './norm.js';
export * from './pool.js';
export { adamUpdate } from './optim.js';
export type { Padding, Pair } from './window.js';
export * from './creation.js';
export { registry as opRegistry } from './define.js';

export const METHODS = {
  neg: ew.neg, exp: ew.exp, log: ew.log, sqrt: ew.sqrt, relu: ew.relu, sigmoid: ew.sigmoid, tanh: ew.tanh,
  abs: ew.abs, sign: ew.sign, square: ew.square, affine: ew.affine, pow: ew.pow, clamp: ew.clamp, clip: ew.clip,
  add: ew.add, sub: ew.sub, mul: ew.mul, div: ew.div, minimum: ew.minimum, maximum: ew.maximum,
  eq: ew.eq, ne: ew.ne, lt: ew.lt, le: ew.le, gt: ew.gt, ge: ew.ge,
  cast: mv.cast, reshape: mv.reshape, flatten: mv.flatten, squeeze: mv.squeeze, unsqueeze: mv.unsqueeze,
  permute: mv.permute, transpose: mv.transpose, broadcastTo: mv.broadcastTo, slice: mv.slice, pad: mv.pad,
  sum: rd.sum, mean: rd.mean, max: rd.max, min: rd.min, argmax: rd.argmax, argmin: rd.argmin,
  matmul: la.matmul, softmax: sm.softmax, logSoftmax: sm.logSoftmax,
  conv2d: cv.conv2d, batchNorm2d: nm.batchNorm2d, maxPool2d: pl.maxPool2d, avgPool2d: pl.avgPool2d, globalAvgPool2d: pl.globalAvgPool2d,
  backward: (t: Tensor, gradient?: Tensor, options?: BackwardOptions): void => runBackward(t, gradient, options),
} as const;

type Bound<F> = F extends (self: Tensor, ...args: infer A) => infer R ? (...args: A) => R : never;
export type TensorMethods = { [K in keyof typeof METHODS]: Bound<(typeof METHODS)[K]> };

declare module '../tensor.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface Tensor extends TensorMethods {}
}

for (const [name, fn] of Object.entries(METHODS)) {
  Object.defineProperty(Tensor.prototype, name, {
    value: function (this: Tensor, ...args: unknown[]) { return (fn as (...a: unknown[]) => unknown)(this, ...args); },
    writable: true, configurable: true,
  });
}

/** Returns a tensor with the same values, cut off from the graph (a free view). */
export function detach(x: Tensor): Tensor { return x.view(x.shape); }
