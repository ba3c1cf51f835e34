// The ops layer's public surface: every op function, and the Tensor method table generated
// from the op records (each record that declares `method` gives x.name(...) === name(x, ...)).
import type { Tensor } from '../tensor/tensor.js';
import { backward as runBackward, type BackwardOptions } from '../autograd/backward.js';
import { composite, methodTable } from './record.js';
import * as elementwise from './elementwise.js';
import * as movement from './movement.js';
import * as slicing from './slicing.js';
import * as reduce from './reduce.js';
import * as linalg from './linalg.js';
import * as softmax from './softmax.js';
import * as conv from './conv.js';
import * as norm from './norm.js';
import * as pool from './pool.js';

export * from './elementwise.js';
export * from './movement.js';
export * from './slicing.js';
export * from './reduce.js';
export * from './linalg.js';
export * from './softmax.js';
export * from './conv.js';
export * from './norm.js';
export { convBatchNorm2d, type ConvBatchNormOptions } from './conv-fused.js';
export * from './pool.js';
export * from './creation.js';
export { signStep } from './attack.js';
export { adamUpdate } from './optim.js';
export { getFloat32MatmulPrecision, setFloat32MatmulPrecision, type MatmulPrecision } from './matmul-subgroup-matrix.js';
export type { Padding, Pair } from './window.js';
export { OPS, type OpKind, type RegisteredOp } from './record.js';

const autograd: { backward: ((t: Tensor, gradient?: Tensor, options?: BackwardOptions) => void) & { readonly methodName: 'backward' } } = {
  backward: composite('backward', (t: Tensor, gradient?: Tensor, options?: BackwardOptions): void => runBackward(t, gradient, options)),
};

const namespaces = [elementwise, movement, slicing, reduce, linalg, softmax, conv, norm, pool, autograd] as const;

/** name -> op function (first argument the tensor), generated from the records, for Tensor.defineMethods. */
export const METHODS = methodTable(...namespaces);

// The methods' static types. TypeScript cannot derive an interface's base from the records'
// inferred types (the records' types mention Tensor), so the names are spelled here; a test
// checks that this list and the generated METHODS table agree.
const e = elementwise, m = movement, s = slicing, r = reduce;
const TYPED = {
  neg: e.neg, exp: e.exp, log: e.log, sqrt: e.sqrt, relu: e.relu, sigmoid: e.sigmoid, tanh: e.tanh, abs: e.abs, sign: e.sign, square: e.square,
  affine: e.affine, pow: e.pow, clamp: e.clamp, clip: e.clip, add: e.add, sub: e.sub, mul: e.mul, div: e.div, minimum: e.minimum, maximum: e.maximum,
  eq: e.eq, ne: e.ne, lt: e.lt, le: e.le, gt: e.gt, ge: e.ge,
  reshape: m.reshape, flatten: m.flatten, squeeze: m.squeeze, unsqueeze: m.unsqueeze, permute: m.permute, transpose: m.transpose, broadcastTo: m.broadcastTo, detach: m.detach,
  cast: s.cast, slice: s.slice, pad: s.pad,
  sum: r.sum, mean: r.mean, max: r.max, min: r.min, argmax: r.argmax, argmin: r.argmin,
  matmul: linalg.matmul, softmax: softmax.softmax, logSoftmax: softmax.logSoftmax,
  conv2d: conv.conv2d, batchNorm2d: norm.batchNorm2d, maxPool2d: pool.maxPool2d, avgPool2d: pool.avgPool2d, globalAvgPool2d: pool.globalAvgPool2d,
  backward: autograd.backward,
};
/** The method names in the typed list (for the test that compares it with METHODS). */
export const TYPED_METHOD_NAMES: readonly string[] = Object.keys(TYPED);

type Bound<F> = F extends (self: Tensor, ...args: infer A) => infer R ? (...args: A) => R : never;
export type TensorMethods = { [K in keyof typeof TYPED]: Bound<(typeof TYPED)[K]> };

declare module '../tensor/tensor.js' {
  // eslint-disable-next-line @typescript-eslint/no-empty-object-type
  interface Tensor extends TensorMethods {}
}
