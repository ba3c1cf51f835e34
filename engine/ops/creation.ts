// Tensor creation: from host data, constants, ranges and seeded random streams.
import { runtime } from '../context.js';
import { empty, Tensor, type NestedArray } from '../tensor/tensor.js';
import { dtypeInfo, type DType } from '../dtype.js';
import { checkShape, fmt, numel, type Shape } from '../shape.js';
import { defaultGenerator, type Generator } from '../random.js';
import { fillKernel } from '../kernels/launch.js';
import { halfBits } from '../half.js';

export interface CreateOptions { dtype?: DType; requiresGrad?: boolean }

function finish(t: Tensor, o: CreateOptions): Tensor {
  if (o.requiresGrad) {
    if (!t.dtypeInfo.differentiable) throw new Error(`medgrad: only float tensors can require grad (shape ${fmt(t.shape)} is ${t.dtype})`);
    t.requiresGrad = true;
  }
  return t;
}

function inferShape(data: NestedArray): number[] {
  const shape: number[] = [];
  let d: NestedArray = data;
  while (Array.isArray(d)) { shape.push(d.length); d = d[0] as NestedArray; }
  return shape;
}

/** A tensor from host values: a typed array or plain array with a shape, or nested arrays. */
export function tensor(data: NestedArray | ArrayLike<number>, shape?: Shape, options: CreateOptions = {}): Tensor {
  const dtype = options.dtype ?? (data instanceof Int32Array ? 'int32' : 'float32');
  let flat: ArrayLike<number>;
  let s: number[];
  if (ArrayBuffer.isView(data) || (Array.isArray(data) && shape !== undefined)) {
    flat = Array.isArray(data) ? (data as unknown[]).flat(Infinity) as number[] : data as ArrayLike<number>;
    s = shape ? [...shape] : [flat.length];
  } else if (typeof data === 'number') {
    flat = [data];
    s = shape ? [...shape] : [];
  } else {
    s = inferShape(data as NestedArray);
    flat = (data as unknown[]).flat(Infinity) as number[];
  }
  checkShape(s);
  if (flat.length !== numel(s)) throw new Error(`medgrad: tensor: ${flat.length} values do not fill shape ${fmt(s)} (${numel(s)} elements; ragged nested arrays are not allowed)`);
  const host = dtype === 'float16' ? halfBits(flat) : dtypeInfo(dtype).array.from(flat);
  const t = empty(s, dtype, `tensor ${fmt(s)} (${dtype})`);
  if (host.length > 0) runtime().write(t.buffer, host);
  return finish(t, options);
}

/** A tensor from a flat array or typed array and a shape (tensor() also takes nested arrays). */
export const fromArray = (values: ArrayLike<number>, shape: Shape, options: CreateOptions = {}): Tensor => tensor(values, shape, options);
/** A tensor from a Float32Array (float32) or Int32Array (int32), dtype taken from the array. */
export const fromTypedArray = (values: Float32Array | Int32Array, shape: Shape, options: { requiresGrad?: boolean } = {}): Tensor =>
  tensor(values, shape, { ...options, dtype: values instanceof Int32Array ? 'int32' : 'float32' });

export function full(shape: Shape, value: number, options: CreateOptions = {}): Tensor {
  checkShape(shape);
  return finish(fillKernel(empty(shape, options.dtype ?? 'float32'), value), options);
}

export const zeros = (shape: Shape, options: CreateOptions = {}): Tensor => full(shape, 0, options);
export const ones = (shape: Shape, options: CreateOptions = {}): Tensor => full(shape, 1, options);
export const zerosLike = (t: Tensor): Tensor => full(t.shape, 0, { dtype: t.dtype });
export const onesLike = (t: Tensor): Tensor => full(t.shape, 1, { dtype: t.dtype });

/** Values start, start+step, ... below end (like torch.arange). */
export function arange(start: number, end?: number, step = 1, options: CreateOptions = {}): Tensor {
  if (end === undefined) { end = start; start = 0; }
  if (step === 0 || !Number.isFinite(step)) throw new Error(`medgrad: arange: step must be a non-zero number, got ${step}`);
  const n = Math.max(0, Math.ceil((end - start) / step));
  const v = Array.from({ length: n }, (_, i) => start + i * step);
  return tensor(v, [n], options);
}

export interface RandomOptions extends CreateOptions { generator?: Generator }

/** Uniform in [low, high), from a seeded generator (the default one unless given). */
export function rand(shape: Shape, options: RandomOptions & { low?: number; high?: number } = {}): Tensor {
  checkShape(shape);
  const g = options.generator ?? defaultGenerator;
  return tensor(g.uniform(numel(shape), options.low ?? 0, options.high ?? 1), shape, { ...options, dtype: 'float32' });
}

export function randn(shape: Shape, options: RandomOptions & { mean?: number; std?: number } = {}): Tensor {
  checkShape(shape);
  const g = options.generator ?? defaultGenerator;
  return tensor(g.normal(numel(shape), options.mean ?? 0, options.std ?? 1), shape, { ...options, dtype: 'float32' });
}

/** Integers uniform in [low, high) as int32. */
export function randint(low: number, high: number, shape: Shape, options: { generator?: Generator } = {}): Tensor {
  checkShape(shape);
  if (!(high > low)) throw new Error(`medgrad: randint: high (${high}) must exceed low (${low})`);
  const g = options.generator ?? defaultGenerator;
  const v = new Int32Array(numel(shape));
  for (let i = 0; i < v.length; i++) v[i] = low + g.int(high - low);
  return tensor(v, shape, { dtype: 'int32' });
}
