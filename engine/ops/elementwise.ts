// Elementwise ops, one record each: the WGSL expression (in x, and y for binary ops), the
// backward, the Tensor method and the float64 check. elementwise.wgsl's op switch is generated
// from these records (see the end of this file); each op's code is its position here.
// Binary ops broadcast like NumPy; a number as second operand runs the op's scalar form (y is
// the uniform alpha: no upload, no broadcast). Comparisons return float32 0/1 and carry no gradient.
import { Tensor } from '../tensor/tensor.js';
import { broadcastShapes, broadcastStrides, fmt } from '../shape.js';
import { registerGenerated } from '../kernels/shaders.js';
import { BINARY, broadcastKernel, unaryKernel, WHERE } from '../kernels/launch.js';
import { binaryCheck, F32, near, nearZero, unaryCheck, type OpCheck } from '../reference/check.js';
import * as R from '../reference/float64.js';
import { composite, op, type Grad, type OpKind } from './record.js';
import { float, finite, floating, scalar } from './checks.js';
import { cast } from './slicing.js';
import { sumTo } from './movement.js';
import { zerosLike } from './creation.js';

type Operand = Tensor | number;
export type Unary = (x: Tensor) => Tensor;
export type Binary = (a: Tensor, b: Tensor | number) => Tensor;

// The generated tables: unary ops (with alpha, beta), then the scalar forms of binary ops.
const unaryCases: string[] = [];
const binaryCases: string[] = [];
/** Adds a case to the unary switch; returns its code. */
const unaryCase = (wgsl: string, prelude = ''): number => unaryCases.push(`    case ${unaryCases.length}u: { ${prelude}return ${wgsl}; }`) - 1;

function unaryOp(name: string, wgsl: string, check: OpCheck, backward: ((g: Tensor, y: Tensor, x: Tensor) => Grad) | null): Unary {
  const code = unaryCase(wgsl);
  return op({
    name, kind: 'unary', method: true, wgsl, check,
    forward: (x: Tensor): Tensor => unaryKernel(floating(x, name), code, name),
    ...(backward && { backward: (g: Tensor, y: Tensor, x: Tensor): Grad => backward(g, y, x) }),
  });
}

function binaryOp(name: string, kind: OpKind, wgsl: string, check: OpCheck,
  backward?: (g: Tensor, y: Tensor, a: Tensor, b: Operand) => Grad): Binary {
  const code = binaryCases.push(`    case ${binaryCases.length}u: { return ${wgsl}; }`) - 1;
  const scalarCode = unaryCase(wgsl, 'let y = p.alpha; ');
  return op({
    name, kind, method: true, wgsl, check, backward,
    forward: (a: Tensor, b: Operand): Tensor => {
      floating(a, name, 'first operand');
      if (typeof b !== 'object') return unaryKernel(a, scalarCode, name, scalar(b, name, 'second operand'));
      floating(b, name, 'second operand');
      const shape = broadcastShapes(a.shape, b.shape, name);
      const run = (x: Tensor, y: Tensor) => broadcastKernel(BINARY, code, name, shape, [x, y].map((t) => ({ t, strides: broadcastStrides(t.shape, shape) })));
      if (a.dtype === b.dtype) return run(a, b);
      // float16 with float32 computes in float32, as PyTorch promotes.
      const [pa, pb] = [cast(a, 'float32'), cast(b, 'float32')];
      const y = run(pa, pb);
      pa.dispose(); pb.dispose();
      return y;
    },
  });
}

const number = (b: Operand): b is number => typeof b === 'number';

// ---- unary ----
export const neg: Unary = unaryOp('neg', '-x', unaryCheck((x) => -x, { tol: F32 }), (g: Tensor): Grad => [neg(g)]);
export const exp: Unary = unaryOp('exp', 'exp(x)', unaryCheck(Math.exp), (g: Tensor, y: Tensor): Grad => [mul(g, y)]);
export const log: Unary = unaryOp('log', 'log(x)', unaryCheck(Math.log, { lo: 0.1, hi: 5 }), (g: Tensor, _y: Tensor, x: Tensor): Grad => [div(g, x)]);
export const sqrt: Unary = unaryOp('sqrt', 'sqrt(x)', unaryCheck(Math.sqrt, { lo: 0.1, hi: 5 }), (g: Tensor, y: Tensor): Grad => [div(g, mul(y, 2))]);
// NaN stays NaN, as in PyTorch (WGSL's max may return either operand for NaN).
export const relu: Unary = unaryOp('relu', 'select(max(x, 0.0), x, is_nan(x))', unaryCheck((x) => Math.max(x, 0), { avoid: nearZero, tol: F32 }), (g: Tensor, y: Tensor): Grad => [mul(g, gt(y, 0))]);
export const sigmoid: Unary = unaryOp('sigmoid', 'sigmoid_stable(x)', unaryCheck((x) => 1 / (1 + Math.exp(-x)), { lo: -20, hi: 20 }), (g: Tensor, y: Tensor): Grad => [mul(g, mul(y, affine(y, -1, 1)))]);
export const tanh: Unary = unaryOp('tanh', 'tanh_stable(x)', unaryCheck(Math.tanh, { lo: -10, hi: 10 }), (g: Tensor, y: Tensor): Grad => [mul(g, affine(square(y), -1, 1))]);
export const abs: Unary = unaryOp('abs', 'abs(x)', unaryCheck(Math.abs, { avoid: nearZero, tol: F32 }), (g: Tensor, _y: Tensor, x: Tensor): Grad => [mul(g, sign(x))]);
export const sign: Unary = unaryOp('sign', 'sign(x)', unaryCheck(Math.sign, { avoid: nearZero, tol: F32 }), (): Grad => [null]);
export const square: Unary = unaryOp('square', 'x * x', unaryCheck((x) => x * x), (g: Tensor, _y: Tensor, x: Tensor): Grad => [mul(g, mul(x, 2))]);

// Unary ops with scalar parameters (the uniform's alpha and beta).
const AFFINE_WGSL = 'p.alpha * x + p.beta';
const AFFINE = unaryCase(AFFINE_WGSL);
/** alpha * x + beta. */
export const affine: (x: Tensor, alpha: number, beta?: number) => Tensor = op({
  name: 'affine', kind: 'unary', method: true, wgsl: AFFINE_WGSL,
  check: unaryCheck((x) => -1.5 * x + 0.25, { args: [-1.5, 0.25] }),
  forward: (x: Tensor, alpha: number, beta = 0): Tensor => unaryKernel(floating(x, 'affine'), AFFINE, 'affine', finite(alpha, 'affine', 'alpha'), finite(beta, 'affine', 'beta')),
  backward: (g: Tensor, _y: Tensor, _x: Tensor, alpha: number): Grad => [mul(g, alpha)],
});

const POW_WGSL = 'pow_scalar(x, p.alpha)';
const POW = unaryCase(POW_WGSL);
/** x ** e for a finite number e (WGSL's pow is undefined for infinite exponents, so they are refused). */
export const pow: (x: Tensor, e: number) => Tensor = op({
  name: 'pow', kind: 'unary', method: true, wgsl: POW_WGSL,
  check: [unaryCheck((x) => x ** 3, { args: [3] }), unaryCheck((x) => x ** 0.5, { lo: 0.2, hi: 4, args: [0.5] }), unaryCheck((x) => x ** -2, { avoid: (x) => Math.abs(x) < 0.3, args: [-2] })],
  forward: (x: Tensor, e: number): Tensor => unaryKernel(floating(x, 'pow'), POW, 'pow', finite(e, 'pow', 'exponent')),
  backward: (g: Tensor, _y: Tensor, x: Tensor, e: number): Grad => [mul(g, mul(pow(x, e - 1), e))],
});

const CLAMP_WGSL = 'clamp_nan(x, p.alpha, p.beta)';
const CLAMP = unaryCase(CLAMP_WGSL);
/** Limits x to [min, max]; the gradient passes where x is inside (bounds included). */
export const clamp: (x: Tensor, min?: number, max?: number) => Tensor = op({
  name: 'clamp', kind: 'unary', method: true, wgsl: CLAMP_WGSL,
  check: unaryCheck((x) => Math.min(Math.max(x, -0.5), 1.25), { avoid: (x) => Math.abs(x + 0.5) < 0.02 || Math.abs(x - 1.25) < 0.02, tol: F32, args: [-0.5, 1.25] }),
  forward: (x: Tensor, min = -Infinity, max = Infinity): Tensor => {
    scalar(min, 'clamp', 'min'); scalar(max, 'clamp', 'max');
    if (min > max) throw new Error(`medgrad: clamp: min (${min}) exceeds max (${max}) for tensor of shape ${fmt(x.shape)}`);
    return unaryKernel(floating(x, 'clamp'), CLAMP, 'clamp', min, max);
  },
  backward: (g: Tensor, _y: Tensor, x: Tensor, min = -Infinity, max = Infinity): Grad => [mul(g, mul(ge(x, min), le(x, max)))],
});

// ---- binary ----
export const add: Binary = binaryOp('add', 'binary', 'x + y', binaryCheck((a, b) => a + b),
  (g: Tensor, _y: Tensor, a: Tensor, b: Operand): Grad => [sumTo(g, a.shape), number(b) ? null : sumTo(g, b.shape)]);
export const sub: Binary = binaryOp('sub', 'binary', 'x - y', binaryCheck((a, b) => a - b),
  (g: Tensor, _y: Tensor, a: Tensor, b: Operand): Grad => [sumTo(g, a.shape), number(b) ? null : sumTo(neg(g), b.shape)]);
// Products read the other operand: an input that needs no gradient gets none computed, so its
// partner's values are not read (nor refused if changed in place since, as in PyTorch).
const ifGrad = (t: Tensor, f: () => Tensor): Tensor | null => (t.requiresGrad ? f() : null);
export const mul: Binary = binaryOp('mul', 'binary', 'x * y', binaryCheck((a, b) => a * b),
  (g: Tensor, _y: Tensor, a: Tensor, b: Operand): Grad => number(b) ? [mul(g, b)] : [ifGrad(a, () => sumTo(mul(g, b), a.shape)), ifGrad(b, () => sumTo(mul(g, a), b.shape))]);
export const div: Binary = binaryOp('div', 'binary', 'x / y', binaryCheck((a, b) => a / b, { avoid: (_a, b) => Math.abs(b) < 0.3, tol: { atol: 1e-5, rtol: 1e-5 } }),
  (g: Tensor, y: Tensor, a: Tensor, b: Operand): Grad => number(b) ? [div(g, b)] : [ifGrad(a, () => sumTo(div(g, b), a.shape)), ifGrad(b, () => sumTo(neg(div(mul(g, y), b)), b.shape))]);

/** Where a and b tie, each receives half of the gradient (as the derivative's average). */
const tieSplit = (first: Tensor, second: Operand, firstWins: (a: Tensor, b: Operand) => Tensor): Tensor =>
  add(firstWins(first, second), mul(eq(first, second), 0.5));
const extremumGrad = (wins: (a: Tensor, b: Operand) => Tensor) => (g: Tensor, _y: Tensor, a: Tensor, b: Operand): Grad =>
  number(b) ? [mul(g, tieSplit(a, b, wins))] : [ifGrad(a, () => sumTo(mul(g, tieSplit(a, b, wins)), a.shape)), ifGrad(b, () => sumTo(mul(g, tieSplit(b, a, wins)), b.shape))];

export const minimum: Binary = binaryOp('minimum', 'binary', 'min_nan(x, y)', binaryCheck(Math.min, { avoid: near(0.02) }), extremumGrad((a: Tensor, b: Operand): Tensor => lt(a, b)));
export const maximum: Binary = binaryOp('maximum', 'binary', 'max_nan(x, y)', binaryCheck(Math.max, { avoid: near(0.02) }), extremumGrad((a: Tensor, b: Operand): Tensor => gt(a, b)));

// ---- comparisons: float32 0/1, no gradient ----
const compare = (name: string, cmp: string, f: (a: number, b: number) => boolean) =>
  binaryOp(name, 'compare', `select(0.0, 1.0, x ${cmp} y)`, binaryCheck((a, b) => +f(a, b), { grad: false, lo: -2, hi: 2 }));

export const eq: Binary = compare('eq', '==', (a, b) => a === b);
export const ne: Binary = compare('ne', '!=', (a, b) => a !== b);
export const lt: Binary = compare('lt', '<', (a, b) => a < b);
export const le: Binary = compare('le', '<=', (a, b) => a <= b);
export const gt: Binary = compare('gt', '>', (a, b) => a > b);
export const ge: Binary = compare('ge', '>=', (a, b) => a >= b);

/**
 * Elementwise cond ? a : b, all three broadcast together. PyTorch requires a bool condition;
 * this engine has no bool dtype and its comparisons return float32 0/1 masks, so the condition
 * must be such a float32 mask (any non-zero value, NaN included, counts as true). An int32
 * condition is refused rather than silently reinterpreted: its bits are not float values.
 */
export const where: (cond: Tensor, a: Tensor, b: Tensor) => Tensor = op({
  name: 'where', kind: 'select', method: false,
  check: {
    tol: F32, gradInputs: [1, 2],
    cases: (r) => [[[3, 5], [3, 5], [3, 5]], [[3, 1], [1, 5], [5]], [[1], [2, 3], [2, 1]], [[4, 1, 2], [3, 1], [1]]].map((ss) => {
      const c = R.map(r.arr(ss[0]!), (v) => +(v > 0));
      return { inputs: [c, r.arr(ss[1]!), r.arr(ss[2]!)], args: [], label: ss.map((s) => `[${s}]`).join(' ') };
    }),
    ref: (xs) => R.zip(xs, (c, a, b) => (c !== 0 ? a : b)),
  },
  forward: (cond: Tensor, a: Tensor, b: Tensor): Tensor => {
    if (cond instanceof Tensor && cond.dtype !== 'float32') {
      throw new Error(`medgrad: where: condition of shape ${fmt(cond.shape)} has dtype ${cond.dtype}; a condition is a float32 0/1 mask as comparisons (gt, eq, ...) return (this engine has no bool dtype): use ne(cast(cond, 'float32'), 0)`);
    }
    float(cond, 'where', 'condition'); float(a, 'where', 'first value'); float(b, 'where', 'second value');
    const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'where'), b.shape, 'where');
    return broadcastKernel(WHERE, null, 'where', shape, [cond, a, b].map((t) => ({ t, strides: broadcastStrides(t.shape, shape) })));
  },
  backward: (g: Tensor, _y: Tensor, cond: Tensor, a: Tensor, b: Tensor): Grad => {
    const zero = zerosLike(g);
    return [null, sumTo(where(cond, g, zero), a.shape), sumTo(where(cond, zero, g), b.shape)];
  },
});

/** NumPy's name for clamp. */
export const clip = composite('clip', (x: Tensor, min?: number, max?: number): Tensor => clamp(x, min, max));

// The op switch of elementwise.wgsl, from the records above.
registerGenerated('elementwise', 'unary-cases', unaryCases.join('\n'));
registerGenerated('elementwise', 'binary-cases', binaryCases.join('\n'));
