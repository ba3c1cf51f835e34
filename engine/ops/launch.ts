// Kernel launchers: each packs a kernel's uniform parameters, allocates the output and
// records one dispatch. Ops call these; nothing above this file knows about bindings.
import { runtime } from '../context.js';
import { empty, Tensor, type DType } from '../tensor.js';
import { fmt, MAX_RANK, type Shape } from '../shape.js';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
export function f32bits(x: number): number { f32[0] = x; return u32[0]!; }

/** Packs scalar words then rank-8 dimension arrays (each 32 bytes, 16-byte aligned). */
export function packParams(scalars: number[], arrays: ReadonlyArray<readonly number[]> = []): ArrayBuffer {
  const head = Math.ceil(scalars.length / 4) * 4;
  const words = new Uint32Array(head + arrays.length * MAX_RANK);
  words.set(scalars.map((v) => v >>> 0));
  arrays.forEach((a, i) => words.set(a.map((v) => v >>> 0), head + i * MAX_RANK));
  return words.buffer;
}

/** Workgroups for a grid-stride loop over n elements with `wg` invocations per workgroup. */
export function gridFor(n: number, wg = 256): [number] { return [Math.max(1, Math.min(Math.ceil(n / wg), 8192))]; }
// elementwise.wgsl's workgroup size (WG there): gridFor must count workgroups of that width.
const EW = 256;

const label = (op: string, ...shapes: Shape[]) => `${op} ${shapes.map(fmt).join(' ')}`;

export const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, relu: 4, sigmoid: 5, tanh: 6, abs: 7, sign: 8, pow: 9, clamp: 10,
  affine: 11, gtS: 12, ltS: 13, geS: 14, leS: 15, eqS: 16, neS: 17, square: 19,
} as const;
export type UnaryCode = keyof typeof UNARY;

export const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, minimum: 4, maximum: 5, eq: 6, ne: 7, lt: 8, le: 9, gt: 10, ge: 11,
} as const;
export type BinaryCode = keyof typeof BINARY;

export function unaryKernel(x: Tensor, code: UnaryCode, alpha = 0, beta = 0): Tensor {
  const out = empty(x.shape);
  if (x.size === 0) return out;
  const rt = runtime();
  const v4 = x.size % 4 === 0;
  rt.dispatch(rt.kernel('elementwise', v4 ? 'unary4' : 'unary', { OP: UNARY[code] }), {
    op: code, label: label(code, x.shape),
    params: packParams([x.size, 0, f32bits(alpha), f32bits(beta)]),
    buffers: { out: out.buffer, a: x.buffer, out4: out.buffer, a4: x.buffer },
    workgroups: gridFor(v4 ? x.size / 4 : x.size, EW), flops: x.size, bytes: 8 * x.size,
  });
  return out;
}

export function broadcastKernel(entry: 'binary' | 'where_select', code: number, opName: string, outShape: Shape,
  operands: Array<{ t: Tensor; strides: number[] }>): Tensor {
  const out = empty(outShape);
  if (out.size === 0) return out;
  const rt = runtime();
  const same = entry === 'binary' && operands.every((o) => o.t.size === out.size);
  const strides = operands.map((o) => o.strides);
  while (strides.length < 3) strides.push([]);
  const [a, b, c] = [operands[0]!.t, operands[1]!.t, (operands[2] ?? operands[0]!).t];
  const v4 = same && out.size % 4 === 0;
  rt.dispatch(rt.kernel('elementwise', v4 ? 'binary_same4' : same ? 'binary_same' : entry, { OP: code }), {
    op: opName, label: label(opName, ...operands.map((o) => o.t.shape)),
    params: packParams([out.size, outShape.length, 0, 0], [outShape, ...strides]),
    buffers: { out: out.buffer, a: a.buffer, b: b.buffer, c: c.buffer, out4: out.buffer, a4: a.buffer, b4: b.buffer },
    workgroups: gridFor(v4 ? out.size / 4 : out.size, EW), flops: out.size, bytes: 4 * (out.size + operands.reduce((s, o) => s + o.t.size, 0)),
  });
  return out;
}

export function fillKernel(t: Tensor, value: number): Tensor {
  if (t.size === 0) return t;
  const rt = runtime();
  rt.dispatch(rt.kernel('copy', 'fill'), {
    op: 'fill', label: label('fill', t.shape),
    params: packParams([t.size, 0, t.dtype === 'int32' ? value | 0 : f32bits(value), 0]),
    buffers: { dst: t.buffer },
    workgroups: gridFor(t.size), bytes: 4 * t.size,
  });
  return t;
}

/**
 * Merges adjacent axes that are contiguous in both source and destination and drops size-1
 * axes: a permute of [N, C, H, W] that keeps H, W together becomes a rank-3 copy, and a plain
 * contiguous copy becomes rank 1, so the kernel does less index arithmetic per element.
 */
export function coalesce(shape: readonly number[], src: readonly number[], dst: readonly number[]): [number[], number[], number[]] {
  const s: number[] = [], a: number[] = [], b: number[] = [];
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue;
    const k = s.length - 1;
    if (k >= 0 && a[k] === src[i]! * shape[i]! && b[k] === dst[i]! * shape[i]!) {
      s[k] = s[k]! * shape[i]!; a[k] = src[i]!; b[k] = dst[i]!;
    } else {
      s.push(shape[i]!); a.push(src[i]!); b.push(dst[i]!);
    }
  }
  return s.length ? [s, a, b] : [[1], [1], [1]];
}

/** dst[dstOffset + idx . dstStrides] = src[srcOffset + idx . srcStrides] for idx over shape. */
export function stridedCopy(src: Tensor, dst: Tensor, shape: Shape, srcStrides: readonly number[], srcOffset: number,
  dstStrides: readonly number[], dstOffset: number, opName: string): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  const rt = runtime();
  const [s, a, b] = coalesce(shape, srcStrides, dstStrides);
  const common = { op: opName, label: label(opName, src.shape, dst.shape), buffers: { dst: dst.buffer, src: src.buffer }, bytes: 8 * n };
  // A (batched) swap of two axes, both sides otherwise contiguous: the tiled transpose kernel.
  const r = s.length;
  const batchOk = r === 2 || (r === 3 && a[0] === s[1]! * s[2]! && b[0] === s[1]! * s[2]!);
  if (r >= 2 && batchOk && a[r - 2] === 1 && a[r - 1] === s[r - 2] && b[r - 1] === 1 && b[r - 2] === s[r - 1]) {
    const rows = s[r - 1]!, cols = s[r - 2]!, batch = r === 3 ? s[0]! : 1;
    rt.dispatch(rt.kernel('copy', 'transpose'), {
      ...common, params: packParams([n, 3, srcOffset, dstOffset], [[rows, cols, batch]]),
      workgroups: [Math.ceil(cols / 16), Math.ceil(rows / 16), batch],
    });
    return;
  }
  rt.dispatch(rt.kernel('copy', 'strided'), {
    ...common, params: packParams([n, s.length, srcOffset, dstOffset], [s, a, b]), workgroups: gridFor(n),
  });
}

export const REDUCE = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4 } as const;

/** Reduces each row of a contiguous [rows, len] view of x; the output has `outShape`. */
export function reduceRowsKernel(x: Tensor, rows: number, len: number, code: keyof typeof REDUCE, outShape: Shape): Tensor {
  const dtype: DType = code === 'argmax' || code === 'argmin' ? 'int32' : 'float32';
  const out = empty(outShape, dtype);
  if (rows === 0) return out;
  const rt = runtime();
  // One workgroup per row pays off once rows are long, or too few to fill the device;
  // otherwise each invocation sums a row of its own.
  const wide = len >= 2048 || rows < 256;
  rt.dispatch(rt.kernel('reduce', wide ? 'reduce_rows' : 'reduce_short', { OP: REDUCE[code] }), {
    op: code, label: label(code, x.shape),
    params: packParams([rows, len]),
    buffers: { out: out.buffer, x: x.buffer },
    workgroups: wide ? [Math.min(rows, 65535)] : gridFor(rows), flops: rows * len, bytes: 4 * (rows * len + rows),
  });
  return out;
}
