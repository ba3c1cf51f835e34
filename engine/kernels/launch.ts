// Launchers shared by many ops: each packs a kernel's uniform parameters, allocates the output,
// picks the variant and records one dispatch. Grids are computed from the compiled kernel's
// workgroup size and the device's limits, never from numbers repeated here.
import { runtime } from '../context.js';
import { empty, Tensor, type DType } from '../tensor/tensor.js';
import { fmt, MAX_RANK, type Shape } from '../shape.js';
import { defineKernel, isHardwareGpu, pow2 } from './variants.js';
import type { Kernel } from './compile.js';
import { toHalfBits } from '../half.js';

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

/** Grid-stride loops use at most this many workgroups: enough to fill any device. */
const GRID_CAP = 8192;

/** Workgroups for a grid-stride loop of `k` over n elements. */
export function gridFor(n: number, k: Kernel): [number] {
  return [Math.max(1, Math.min(Math.ceil(n / k.workgroupSize[0]), GRID_CAP, runtime().maxWorkgroups))];
}

export const label = (op: string, ...shapes: Shape[]) => `${op} ${shapes.map(fmt).join(' ')}`;

/** `half`: the operands are float16 storage (the kernel's float16 form runs). */
interface Flat { n: number; half?: boolean }

export const UNARY = defineKernel<Flat>({
  name: 'elementwise.unary',
  variants: [
    { name: 'vec4', family: 'elementwise', entry: 'unary4', serves: (s) => s.n % 4 === 0, half: true },
    { name: 'scalar', family: 'elementwise', entry: 'unary', half: true },
  ],
});

/** One unary kernel of elementwise.wgsl's generated table: out = f(x; alpha, beta), of x's dtype. */
export function unaryKernel(x: Tensor, code: number, op: string, alpha = 0, beta = 0): Tensor {
  const out = empty(x.shape, x.dtype);
  if (x.size === 0) return out;
  runtime().launch(UNARY, { n: x.size, half: x.dtype === 'float16' }, (k, v) => ({
    op, label: label(op, x.shape),
    params: packParams([x.size, 0, f32bits(alpha), f32bits(beta)]),
    buffers: { out: out.buffer, a: x.buffer, out4: out.buffer, a4: x.buffer },
    workgroups: gridFor(v.name === 'vec4' ? x.size / 4 : x.size, k), flops: x.size, bytes: x.nbytes + out.nbytes,
  }), { OP: code });
  return out;
}

interface Broadcast { n: number; same: boolean; half?: boolean }

export const BINARY = defineKernel<Broadcast>({
  name: 'elementwise.binary',
  variants: [
    { name: 'same4', family: 'elementwise', entry: 'binary_same4', serves: (s) => s.same && s.n % 4 === 0, half: true },
    { name: 'same', family: 'elementwise', entry: 'binary_same', serves: (s) => s.same, half: true },
    { name: 'broadcast', family: 'elementwise', entry: 'binary', half: true },
  ],
});
export const WHERE = defineKernel<Broadcast>({ name: 'elementwise.where', variants: [{ name: 'broadcast', family: 'elementwise', entry: 'where_select' }] });

export interface Operand { t: Tensor; strides: number[] }

/**
 * A binary (BINARY, with its op code) or ternary (WHERE) kernel over broadcast operands. Operands
 * all float16 give a float16 result (computed in f32, rounded once); callers promote mixed ones.
 */
export function broadcastKernel(kernel: typeof BINARY, code: number | null, opName: string, outShape: Shape, operands: Operand[]): Tensor {
  const half = operands.every((o) => o.t.dtype === 'float16');
  const out = empty(outShape, half ? 'float16' : 'float32');
  if (out.size === 0) return out;
  const same = operands.every((o) => o.t.size === out.size);
  const strides = operands.map((o) => o.strides);
  while (strides.length < 3) strides.push([]);
  const [a, b, c] = [operands[0]!.t, operands[1]!.t, (operands[2] ?? operands[0]!).t];
  runtime().launch(kernel, { n: out.size, same, half }, (k, v) => ({
    op: opName, label: label(opName, ...operands.map((o) => o.t.shape)),
    params: packParams([out.size, outShape.length, 0, 0], [outShape, ...strides]),
    buffers: { out: out.buffer, a: a.buffer, b: b.buffer, c: c.buffer, out4: out.buffer, a4: a.buffer, b4: b.buffer },
    workgroups: gridFor(v.name === 'same4' ? out.size / 4 : out.size, k), flops: out.size,
    bytes: out.nbytes + operands.reduce((s, o) => s + o.t.nbytes, 0),
  }), code === null ? {} : { OP: code });
  return out;
}

export const ACCUMULATE = defineKernel<Flat>({
  name: 'elementwise.accumulate',
  variants: [
    { name: 'vec4', family: 'elementwise', entry: 'accumulate4', serves: (s) => s.n % 4 === 0, half: true },
    { name: 'scalar', family: 'elementwise', entry: 'accumulate', half: true },
  ],
});

/** a + b for two float tensors of one shape and dtype: the gradient sum autograd needs, without the op table. */
export function accumulateKernel(a: Tensor, b: Tensor): Tensor {
  if (a.dtype !== b.dtype) throw new Error(`medgrad: accumulate: gradients of shape ${fmt(a.shape)} have dtypes ${a.dtype} and ${b.dtype}`);
  const out = empty(a.shape, a.dtype);
  if (a.size === 0) return out;
  runtime().launch(ACCUMULATE, { n: a.size, half: a.dtype === 'float16' }, (k, v) => ({
    op: 'accumulate', label: label('accumulate', a.shape),
    params: packParams([a.size, 0, 0, 0]),
    buffers: { out: out.buffer, a: a.buffer, b: b.buffer, out4: out.buffer, a4: a.buffer, b4: b.buffer },
    workgroups: gridFor(v.name === 'vec4' ? a.size / 4 : a.size, k), flops: a.size, bytes: 3 * a.nbytes,
  }));
  return out;
}

export const FILL = defineKernel<Flat>({ name: 'copy.fill', variants: [{ name: 'grid', family: 'copy', entry: 'fill' }] });

export function fillKernel(t: Tensor, value: number): Tensor {
  if (t.size === 0) return t;
  // The kernel fills 32-bit words: a float16 tensor's word holds its value twice.
  const half = t.dtype === 'float16' ? toHalfBits(value) : 0;
  const n = t.dtype === 'float16' ? Math.ceil(t.size / 2) : t.size;
  runtime().launch(FILL, { n }, (k) => ({
    op: 'fill', label: label('fill', t.shape),
    params: packParams([n, 0, t.dtype === 'int32' ? value | 0 : t.dtype === 'float16' ? (half | (half << 16)) >>> 0 : f32bits(value), 0]),
    buffers: { dst: t.buffer },
    workgroups: gridFor(n, k), bytes: t.nbytes,
  }));
  return t;
}

/** A tensor of `shape` filled with `value`. */
export const filled = (shape: Shape, value: number, dtype: DType = 'float32'): Tensor => fillKernel(empty(shape, dtype), value);

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

interface Copy { shape: number[]; src: number[]; dst: number[]; half?: boolean }

/** A (batched) swap of the last two axes, both sides otherwise contiguous. */
function isTranspose({ shape: s, src: a, dst: b }: Copy): boolean {
  const r = s.length;
  const batchOk = r === 2 || (r === 3 && a[0] === s[1]! * s[2]! && b[0] === s[1]! * s[2]!);
  return r >= 2 && batchOk && a[r - 2] === 1 && a[r - 1] === s[r - 2] && b[r - 1] === 1 && b[r - 2] === s[r - 1];
}

export const COPY = defineKernel<Copy>({
  name: 'copy.strided',
  variants: [
    { name: 'transpose', family: 'copy', entry: 'transpose', serves: isTranspose, half: true },
    { name: 'strided', family: 'copy', entry: 'strided', half: true },
  ],
});

/** dst[dstOffset + idx . dstStrides] = src[srcOffset + idx . srcStrides] for idx over shape. */
export function stridedCopy(src: Tensor, dst: Tensor, shape: Shape, srcStrides: readonly number[], srcOffset: number,
  dstStrides: readonly number[], dstOffset: number, opName: string): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n === 0) return;
  if (src.dtype !== dst.dtype && (src.dtype === 'float16' || dst.dtype === 'float16')) {
    throw new Error(`medgrad: ${opName}: a copy from ${src.dtype} (shape ${fmt(src.shape)}) to ${dst.dtype} (shape ${fmt(dst.shape)}) changes the element size; cast first`);
  }
  const [s, a, b] = coalesce(shape, srcStrides, dstStrides);
  const bytes = n * (src.dtypeInfo.bytes + dst.dtypeInfo.bytes);
  runtime().launch(COPY, { shape: s, src: a, dst: b, half: src.dtype === 'float16' }, (k, v) => {
    const common = { op: opName, label: label(opName, src.shape, dst.shape), buffers: { dst: dst.buffer, src: src.buffer }, bytes };
    if (v.name === 'strided') return { ...common, params: packParams([n, s.length, srcOffset, dstOffset], [s, a, b]), workgroups: gridFor(n, k) };
    const r = s.length;
    const rows = s[r - 1]!, cols = s[r - 2]!, batch = r === 3 ? s[0]! : 1;
    const [tx, ty] = k.workgroupSize;
    return { ...common, params: packParams([n, 3, srcOffset, dstOffset], [[rows, cols, batch]]), workgroups: [Math.ceil(cols / tx), Math.ceil(rows / ty), batch] };
  });
}

export type ReduceCode = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';
interface Rows { rows: number; len: number; half?: boolean }

const SUBGROUPS = { features: ['subgroups'] } as const;

export const REDUCE_ROWS = defineKernel<Rows>({
  name: 'reduce.rows',
  variants: [
    { name: 'workgroup-per-row', family: 'reduce', entry: 'reduce_rows', half: true },
    { name: 'invocation-per-row', family: 'reduce', entry: 'reduce_short', half: true },
    // Subgroup folds (reduce-subgroup.wgsl): one workgroup per row, or, for long rows, many
    // workgroups per row and a second pass over their partials.
    { name: 'subgroup-row', family: 'reduce-subgroup', entry: 'reduce_rows_sg', requires: SUBGROUPS },
    { name: 'subgroup-split', family: 'reduce-subgroup', entry: 'reduce_split_sg', requires: SUBGROUPS, serves: (s) => s.len > SPLIT_MIN && s.len <= SPLIT_MAX },
  ],
  // One workgroup per row pays off once rows are long, or too few to fill the device;
  // otherwise each invocation folds a row of its own. A GPU with subgroups folds in subgroups,
  // splitting long rows when there are too few of them to fill it.
  prefer: (s, c, caps) => {
    const want = isHardwareGpu(caps) && c.some((v) => v.name === 'subgroup-row')
      ? (s.len > SPLIT_MIN && s.rows < 512 ? 'subgroup-split' : s.len >= 64 || s.rows < 256 ? 'subgroup-row' : 'invocation-per-row')
      : s.len >= 2048 || s.rows < 256 ? 'workgroup-per-row' : 'invocation-per-row';
    return c.find((v) => v.name === want) ?? c[0]!;
  },
  bucket: (s) => `rows${pow2(s.rows)}.len${pow2(s.len)}`,
  sample: (s) => {
    const x = filled([s.rows, s.len], 0.5);
    return { run: () => reduceRowsKernel(x, s.rows, s.len, 'sum', [s.rows]).dispose(), dispose: () => x.dispose() };
  },
});

/** Rows longer than this may be split over several workgroups (twice reduce-subgroup.wgsl's CHUNK). */
const SPLIT_MIN = 8192;
/** Rows up to this long fit one grid dimension of chunks (WebGPU's default 65535 workgroups). */
const SPLIT_MAX = 4096 * 65535;

/** Reduces each row of a contiguous [rows, len] view of x; the output has `outShape` (float32 values, also from float16). */
export function reduceRowsKernel(x: Tensor, rows: number, len: number, code: ReduceCode, outShape: Shape): Tensor {
  const out = empty(outShape, code === 'argmax' || code === 'argmin' ? 'int32' : 'float32');
  if (rows === 0) return out;
  const rt = runtime();
  const OP = rt.shaderCode('reduce', code.toUpperCase());
  const { variant, kernel: k } = rt.select(REDUCE_ROWS, { rows, len, ...(x.dtype === 'float16' && { half: true }) }, { OP });
  const common = { op: code, label: label(code, x.shape), flops: rows * len, bytes: x.nbytes + out.nbytes };
  if (variant.name === 'subgroup-split') {
    // Pass 1: grid x = chunks of CHUNK elements, y = rows; pass 2 folds each row's chunks.
    const chunks = Math.ceil(len / k.consts.CHUNK!);
    const part = empty([rows, chunks, 2], 'int32');
    rt.dispatch(k, { ...common, params: packParams([rows, len]), buffers: { x: x.buffer, part: part.buffer }, workgroups: [chunks, Math.min(rows, rt.maxWorkgroups)] });
    const fold = rt.kernel('reduce-subgroup', 'reduce_partials_sg', { OP });
    rt.dispatch(fold, { ...common, label: `${common.label} (${chunks} partials)`, params: packParams([rows, chunks]), buffers: { out: out.buffer, part: part.buffer, x: x.buffer }, workgroups: [Math.min(rows, rt.maxWorkgroups)], flops: rows * chunks, bytes: part.nbytes + out.nbytes });
    part.dispose();
    return out;
  }
  const perRow = variant.name !== 'invocation-per-row';
  rt.dispatch(k, {
    ...common, params: packParams([rows, len]),
    buffers: { out: out.buffer, x: x.buffer },
    workgroups: perRow ? [Math.min(rows, rt.maxWorkgroups)] : gridFor(rows, k),
  });
  return out;
}
