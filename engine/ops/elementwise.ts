// Elementwise ops. Each op: its forward (a kernel launch) and its backward (other ops),
// side by side. Binary ops broadcast like NumPy; a number as second operand becomes a scalar
// op (no upload, no broadcast). Comparisons return float32 0/1 and carry no gradient.
import { Tensor } from '../tensor.js';
import { broadcastShapes, broadcastStrides, fmt } from '../shape.js';
import { defineOp, type Binary, type Unary } from './define.js';
import { float, finite, scalar } from './checks.js';
import { BINARY, broadcastKernel, unaryKernel, type BinaryCode } from './launch.js';
import { sumTo } from './movement.js';
import { zerosLike } from './creation.js';

type Operand = Tensor | number;

function binaryForward(code: BinaryCode, a: Tensor, b: Tensor): Tensor {
  float(a, code, 'first operand');
  float(b, code, 'second operand');
  const shape = broadcastShapes(a.shape, b.shape, code);
  return broadcastKernel('binary', BINARY[code], code, shape, [
    { t: a, strides: broadcastStrides(a.shape, shape) },
    { t: b, strides: broadcastStrides(b.shape, shape) },
  ]);
}

const u = (code: Parameters<typeof unaryKernel>[1], alpha = 0, beta = 0) => (x: Tensor) => unaryKernel(float(x, code), code, alpha, beta);

// ---- unary ----
export const neg: Unary = defineOp('neg', u('neg'), (g) => [neg(g)]);
export const exp: Unary = defineOp('exp', u('exp'), (g, y) => [mul(g, y)]);
export const log: Unary = defineOp('log', u('log'), (g, _y, x) => [div(g, x)]);
export const sqrt: Unary = defineOp('sqrt', u('sqrt'), (g, y) => [div(g, mul(y, 2))]);
export const relu: Unary = defineOp('relu', u('relu'), (g, y) => [mul(g, gt(y, 0))]);
export const sigmoid: Unary = defineOp('sigmoid', u('sigmoid'), (g, y) => [mul(g, mul(y, affine(y, -1, 1)))]);
export const tanh: Unary = defineOp('tanh', u('tanh'), (g, y) => [mul(g, affine(square(y), -1, 1))]);
export const abs: Unary = defineOp('abs', u('abs'), (g, _y, x) => [mul(g, sign(x))]);
export const sign: Unary = defineOp('sign', u('sign'), () => [null]);
export const square: Unary = defineOp('square', u('square'), (g, _y, x) => [mul(g, mul(x, 2))]);

/** alpha * x + beta. */
export const affine: (x: Tensor, alpha: number, beta?: number) => Tensor = defineOp('affine',
  (x: Tensor, alpha: number, beta = 0) => unaryKernel(float(x, 'affine'), 'affine', finite(alpha, 'affine', 'alpha'), finite(beta, 'affine', 'beta')),
  (g, _y, _x, alpha) => [mul(g, alpha)]);

/** x ** e for a finite number e (WGSL's pow is undefined for infinite exponents, so they are refused). */
export const pow: (x: Tensor, e: number) => Tensor = defineOp('pow',
  (x: Tensor, e: number) => unaryKernel(float(x, 'pow'), 'pow', finite(e, 'pow', 'exponent')),
  (g, _y, x, e) => [mul(g, mul(pow(x, e - 1), e))]);

/** Limits x to [min, max]; the gradient passes where x is inside (bounds included). */
export const clamp: (x: Tensor, min?: number, max?: number) => Tensor = defineOp('clamp',
  (x: Tensor, min = -Infinity, max = Infinity) => {
    scalar(min, 'clamp', 'min'); scalar(max, 'clamp', 'max');
    if (min > max) throw new Error(`medgrad: clamp: min (${min}) exceeds max (${max}) for tensor of shape ${fmt(x.shape)}`);
    return unaryKernel(float(x, 'clamp'), 'clamp', min, max);
  },
  (g, _y, x, min = -Infinity, max = Infinity) => [mul(g, mul(ge(x, min), le(x, max)))]);

/** NumPy's name for clamp. */
export const clip = (x: Tensor, min?: number, max?: number): Tensor => clamp(x, min, max);

// ---- binary ----
export const add: Binary = defineOp('add',
  (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, 'add'), 'affine', 1, scalar(b, 'add', 'second operand')) : binaryForward('add', a, b)),
  (g, _y, a, b) => [sumTo(g, a.shape), typeof b === 'number' ? null : sumTo(g, b.shape)]);

export const sub: Binary = defineOp('sub',
  (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, 'sub'), 'affine', 1, -scalar(b, 'sub', 'second operand')) : binaryForward('sub', a, b)),
  (g, _y, a, b) => [sumTo(g, a.shape), typeof b === 'number' ? null : sumTo(neg(g), b.shape)]);

export const mul: Binary = defineOp('mul',
  (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, 'mul'), 'affine', scalar(b, 'mul', 'second operand'), 0) : binaryForward('mul', a, b)),
  (g, _y, a, b) => typeof b === 'number' ? [mul(g, b)] : [sumTo(mul(g, b), a.shape), sumTo(mul(g, a), b.shape)]);

export const div: Binary = defineOp('div',
  (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, 'div'), 'affine', 1 / scalar(b, 'div', 'second operand'), 0) : binaryForward('div', a, b)),
  (g, y, a, b) => typeof b === 'number' ? [div(g, b)] : [sumTo(div(g, b), a.shape), sumTo(neg(div(mul(g, y), b)), b.shape)]);

/** Where a and b tie, each receives half of the gradient (as the derivative's average). */
function tieSplit(first: Tensor, second: Tensor, firstWins: (a: Tensor, b: Tensor) => Tensor): Tensor {
  return add(firstWins(first, second), mul(eq(first, second), 0.5));
}

export const minimum: Binary = defineOp('minimum',
  (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, 'minimum'), 'clamp', -Infinity, scalar(b, 'minimum', 'second operand')) : binaryForward('minimum', a, b)),
  (g, _y, a, b) => typeof b === 'number'
    ? [mul(g, add(lt(a, b), mul(eq(a, b), 0.5)))]
    : [sumTo(mul(g, tieSplit(a, b, lt)), a.shape), sumTo(mul(g, tieSplit(b, a, lt)), b.shape)]);

export const maximum: Binary = defineOp('maximum',
  (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, 'maximum'), 'clamp', scalar(b, 'maximum', 'second operand'), Infinity) : binaryForward('maximum', a, b)),
  (g, _y, a, b) => typeof b === 'number'
    ? [mul(g, add(gt(a, b), mul(eq(a, b), 0.5)))]
    : [sumTo(mul(g, tieSplit(a, b, gt)), a.shape), sumTo(mul(g, tieSplit(b, a, gt)), b.shape)]);

// ---- comparisons: float32 0/1, no gradient ----
const compare = (code: BinaryCode, op: 'gtS' | 'ltS' | 'geS' | 'leS' | 'eqS' | 'neS'): Binary =>
  defineOp(code, (a: Tensor, b: Operand) => (typeof b !== 'object' ? unaryKernel(float(a, code), op, scalar(b, code, 'second operand')) : binaryForward(code, a, b)));

export const eq = compare('eq', 'eqS');
export const ne = compare('ne', 'neS');
export const lt = compare('lt', 'ltS');
export const le = compare('le', 'leS');
export const gt = compare('gt', 'gtS');
export const ge = compare('ge', 'geS');

/**
 * Elementwise cond ? a : b, all three broadcast together. PyTorch requires a bool condition;
 * this engine has no bool dtype and its comparisons return float32 0/1 masks, so the condition
 * must be such a float32 mask (any non-zero value, NaN included, counts as true). An int32
 * condition is refused rather than silently reinterpreted: its bits are not float values.
 */
export const where: (cond: Tensor, a: Tensor, b: Tensor) => Tensor = defineOp('where',
  (cond: Tensor, a: Tensor, b: Tensor) => {
    if (cond instanceof Tensor && cond.dtype !== 'float32') {
      throw new Error(`medgrad: where: condition of shape ${fmt(cond.shape)} has dtype ${cond.dtype}; a condition is a float32 0/1 mask as comparisons (gt, eq, ...) return (this engine has no bool dtype): use ne(cast(cond, 'float32'), 0)`);
    }
    float(cond, 'where', 'condition'); float(a, 'where', 'first value'); float(b, 'where', 'second value');
    const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
    return broadcastKernel('where_select', 0, 'where', shape, [cond, a, b].map((t) => ({ t, strides: broadcastStrides(t.shape, shape) })));
  },
  (g, _y, cond, a, b) => {
    const zero = zerosLike(g);
    return [null, sumTo(where(cond, g, zero), a.shape), sumTo(where(cond, zero, g), b.shape)];
  });

