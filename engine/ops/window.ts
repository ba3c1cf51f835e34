// Sliding-window geometry shared by convolution and pooling: strides, and padding as 'valid',
// 'same' (TensorFlow/Keras: output ceil(size / stride), the odd extra row and column of padding
// at the bottom and right) or explicit.
import { fmt, type Shape } from '../shape.js';

/** 'valid' | 'same' | p (all sides) | [vertical, horizontal] | [top, bottom, left, right]. */
export type Padding = 'valid' | 'same' | number | readonly [number, number] | readonly [number, number, number, number];
export type Pair = number | readonly [number, number];

export interface Window { OH: number; OW: number; sh: number; sw: number; pt: number; pb: number; pl: number; pr: number }

export function pair(v: Pair, what: string, op: string): [number, number] {
  const [a, b] = typeof v === 'number' ? [v, v] : v;
  if (!Number.isInteger(a) || !Number.isInteger(b) || a! < 1 || b! < 1) throw new Error(`medgrad: ${op}: ${what} must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
  return [a!, b!];
}

function samePad(size: number, k: number, s: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + k - size, 0);
  return [Math.floor(total / 2), total - Math.floor(total / 2)];
}

export function windowGeometry(inShape: Shape, KH: number, KW: number, stride: Pair, padding: Padding, op: string): Window {
  const [H, W] = [inShape[2]!, inShape[3]!];
  const [sh, sw] = pair(stride, 'stride', op);
  let pt = 0, pb = 0, pl = 0, pr = 0;
  if (padding === 'same') {
    [pt, pb] = samePad(H, KH, sh);
    [pl, pr] = samePad(W, KW, sw);
  } else if (padding !== 'valid') {
    const p = typeof padding === 'number' ? [padding, padding, padding, padding]
      : padding.length === 2 ? [padding[0], padding[0], padding[1], padding[1]] : [...padding];
    if (p.length !== 4 || p.some((v) => !Number.isInteger(v) || v < 0)) {
      throw new Error(`medgrad: ${op}: padding must be 'valid', 'same', a non-negative integer, [v, h] or [top, bottom, left, right]; got ${JSON.stringify(padding)}`);
    }
    [pt, pb, pl, pr] = p as [number, number, number, number];
  }
  const OH = Math.floor((H + pt + pb - KH) / sh) + 1;
  const OW = Math.floor((W + pl + pr - KW) / sw) + 1;
  if (OH < 1 || OW < 1) {
    throw new Error(`medgrad: ${op}: a ${KH}x${KW} window does not fit input ${fmt(inShape)} with padding ${JSON.stringify(padding)} (the input needs at least ${KH - pt - pb}x${KW - pl - pr} pixels)`);
  }
  return { OH, OW, sh, sw, pt, pb, pl, pr };
}

export function checkNCHW(x: { shape: Shape }, op: string, what = 'input'): void {
  if (x.shape.length !== 4) throw new Error(`medgrad: ${op}: ${what} must be NCHW (rank 4), got shape ${fmt(x.shape)}`);
}
