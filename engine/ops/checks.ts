// Argument checks shared by ops; each throws before any GPU work, naming op and shapes.
import { Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';

export function float(x: unknown, op: string, what = 'input'): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`medgrad: ${op}: ${what} must be a Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new Error(`medgrad: ${op}: ${what} of shape ${fmt(x.shape)} has dtype ${x.dtype}; float32 is required`);
  return x;
}

/** A float32 or float16 tensor: for ops whose kernels have a float16 storage form. */
export function floating(x: unknown, op: string, what = 'input'): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`medgrad: ${op}: ${what} must be a Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float16') throw new Error(`medgrad: ${op}: ${what} of shape ${fmt(x.shape)} has dtype ${x.dtype}; float32 is required (or float16)`);
  return x;
}

/** A finite number (no NaN, no ±Infinity), for parameters where anything else is a mistake. */
export function finite(v: number, op: string, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`medgrad: ${op}: ${what} must be a finite number, got ${String(v)}`);
  return v;
}

/** Any number, NaN and ±Infinity included (x + Infinity is legal in PyTorch); not a string or undefined. */
export function scalar(v: number, op: string, what: string): number {
  if (typeof v !== 'number') throw new Error(`medgrad: ${op}: ${what} must be a Tensor or a number, got ${typeof v} ${String(v)}`);
  return v;
}
