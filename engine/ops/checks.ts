// Argument checks shared by ops; each throws before any GPU work, naming op and shapes.
import { Tensor } from '../tensor.js';
import { fmt } from '../shape.js';

export function float(x: unknown, op: string, what = 'input'): Tensor {
  if (!(x instanceof Tensor)) throw new Error(`medgrad: ${op}: ${what} must be a Tensor, got ${typeof x}`);
  if (x.dtype !== 'float32') throw new Error(`medgrad: ${op}: ${what} of shape ${fmt(x.shape)} has dtype ${x.dtype}; float32 is required`);
  return x;
}

export function finite(v: number, op: string, what: string): number {
  if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`medgrad: ${op}: ${what} must be a number, got ${String(v)}`);
  return v;
}
