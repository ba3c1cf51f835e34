// Matrix multiplication: [..., M, K] x [..., K, N] with NumPy batch broadcasting, on the
// register-tiled kernels in matmul.wgsl (lavapipe's) and matmul-tiled.wgsl (GPU-shaped). Transposed operands are read through strides, so the
// backward products g x B^T and A^T x g need no transpose copies.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { broadcastShapes, fmt, numel } from '../shape.js';
import { filled, packParams } from '../kernels/launch.js';
import { defineKernel, isHardwareGpu, pow2, type KernelDef } from '../kernels/variants.js';
import { emulatedSubgroupMatrixVariant, isSubgroupMatrix, preferSubgroupMatrix, subgroupMatrixConstants, subgroupMatrixTile, subgroupMatrixVariants } from './matmul-subgroup-matrix.js';
import * as R from '../reference/float64.js';
import type { Grad } from './record.js';
import { op } from './record.js';
import { floating } from './checks.js';
import { cast } from './slicing.js';
import { broadcastTo, permute, reshape, sumTo } from './movement.js';

interface Operand { t: Tensor; batchStride: number; rowStride: number; colStride: number }

/** Operand view of a [..., R, C] tensor (read transposed when `trans`) for a given batch shape. */
function operand(t: Tensor, batch: number[], trans: boolean): Operand {
  const [r, c] = [t.shape[t.rank - 2]!, t.shape[t.rank - 1]!];
  let src = t;
  const own = numel(t.shape.slice(0, -2));
  if (own !== numel(batch) && own !== 1) src = broadcastTo(t, [...batch, r, c]);
  const batchStride = own === 1 && numel(batch) !== 1 ? 0 : r * c;
  return trans ? { t: src, batchStride, rowStride: 1, colStride: c } : { t: src, batchStride, rowStride: c, colStride: 1 };
}

/**
 * matmul-tiled.wgsl's tile shapes as [WX, WY, KT]: a (4 WY) x (4 WX) tile of C per workgroup,
 * KT-deep slices. Its staging loops need WX WY to be a multiple of KT and of 4 WX.
 */
const COALESCED_TILES: ReadonlyArray<readonly [number, number, number]> = [[8, 8, 16], [16, 8, 16], [16, 16, 16], [32, 8, 16]];
for (const [wx, wy, kt] of COALESCED_TILES) {
  if ((wx * wy) % kt !== 0 || wy % 4 !== 0 || wx * wy > 256) throw new Error(`medgrad: matmul tile [${wx}, ${wy}, ${kt}] breaks matmul-tiled.wgsl's staging`);
}

interface Product {
  half?: boolean; M: number; N: number; K: number; batch: number; bRowContiguous: boolean }

/**
 * matmul's kernels: `rows` keeps an 8 x 8 block of C in registers and reads B as vec4 rows (needs
 * N % 4 == 0, and B row-contiguous or a product big enough to pay for making it so); `tiled`
 * stages 64 x 64 tiles in workgroup memory and reads any strides.
 */
export const MATMUL = defineKernel<Product>({
  name: 'matmul',
  variants: [
    { name: 'rows', family: 'matmul', entry: 'matmul_rows', serves: (s) => s.N % 4 === 0 && (s.bRowContiguous || s.M * s.N * s.K >= 1 << 18), half: true },
    { name: 'tiled', family: 'matmul', entry: 'matmul', half: true },
    ...COALESCED_TILES.map(([wx, wy, kt]) => ({
      name: `coalesced-${4 * wy}x${4 * wx}`, family: 'matmul-tiled', entry: 'matmul_coalesced', constants: { WX: wx, WY: wy, KT: kt },
    })),
    // Tensor cores (f16 inputs, f32 accumulation; matmul-subgroup-matrix.ts).
    ...subgroupMatrixVariants<Product>(),
  ],
  // lavapipe's defaults stay (the first that runs). On a GPU, products too small to give every
  // multiprocessor a 64 x 64 tile get 32 x 32 tiles (a guess until a GPU session measures it;
  // `medgrad tune` replaces it with a measurement).
  // Large products go to the tensor cores where the adapter has them.
  prefer: (s, c, caps) => preferSubgroupMatrix(s, c, caps) ?? (isHardwareGpu(caps) && s.M * s.N * s.batch < 768 * 768 ? c.find((v) => v.name === 'coalesced-32x32') : undefined) ?? c[0]!,
  bucket: (s) => `m${pow2(s.M)}.n${pow2(s.N)}.k${pow2(s.K)}.b${pow2(s.batch)}${s.bRowContiguous ? '' : '.bT'}`,
  sample: (s) => {
    const a = filled([s.batch, s.M, s.K], 0.5);
    const b = filled(s.bRowContiguous ? [s.batch, s.K, s.N] : [s.batch, s.N, s.K], 0.25);
    return { run: () => matmulKernel(a, b, false, !s.bRowContiguous).dispose(), dispose: () => { a.dispose(); b.dispose(); } };
  },
});

/** The tensor-core tiling on plain arrays: a test kernel (no bucket, so never tuned; no op runs it unless asked). */
export const MATMUL_SM_EMULATED = defineKernel<Product>({ name: 'matmul.subgroupMatrixEmulated', variants: [emulatedSubgroupMatrixVariant<Product>()] });

export interface MatmulLaunch { op?: string; flops?: number; kernel?: KernelDef<Product> }

/**
 * C = op(A) x op(B), op = transpose when flagged; A, B at least 2-D. `op` is what the profiler
 * counts it as, and `flops` what it reports (default: the product's 2 M N K per batch; a
 * Winograd convolution's GEMM reports the direct convolution's count); `kernel` is matmul's
 * unless a test runs another with the same launch.
 */
export function matmulKernel(a: Tensor, b: Tensor, transA = false, transB = false, { op: opName = 'matmul', flops, kernel = MATMUL }: MatmulLaunch = {}): Tensor {
  const M = transA ? a.shape[a.rank - 1]! : a.shape[a.rank - 2]!;
  const K = transA ? a.shape[a.rank - 2]! : a.shape[a.rank - 1]!;
  const Kb = transB ? b.shape[b.rank - 1]! : b.shape[b.rank - 2]!;
  const N = transB ? b.shape[b.rank - 2]! : b.shape[b.rank - 1]!;
  if (K !== Kb) throw new Error(`medgrad: matmul: inner dimensions differ: ${fmt(a.shape)}${transA ? '^T' : ''} x ${fmt(b.shape)}${transB ? '^T' : ''} (${K} vs ${Kb})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul (batch dimensions)');
  return tidy(() => {
    const A = operand(a, batch, transA);
    const B = operand(b, batch, transB);
    if (a.dtype !== b.dtype) throw new Error(`medgrad: ${opName}: operands ${fmt(a.shape)} (${a.dtype}) and ${fmt(b.shape)} (${b.dtype}) differ in dtype`);
    const out = empty([...batch, M, N], a.dtype);
    const nb = numel(batch);
    if (out.size === 0) return out;
    const rt = runtime();
    const shape: Product = { M, N, K, batch: nb, bRowContiguous: B.colStride === 1, ...(a.dtype === 'float16' && { half: true }) };
    // The tensor-core shader is compiled for the adapter's fragment shape and largest subgroup.
    const { variant, kernel: k } = rt.select(kernel, shape, subgroupMatrixConstants(rt.device));
    // The row kernel needs B's rows contiguous and vec4-aligned: a transposed B is copied into
    // that layout first (the variant serves such shapes only when they are large enough to pay).
    const Bv = variant.name === 'rows' && B.colStride !== 1
      ? { t: permute(B.t, B.t.shape.map((_, i, all) => (i === all.length - 2 ? i + 1 : i === all.length - 1 ? i - 1 : i))), batchStride: B.batchStride, rowStride: N, colStride: 1 }
      : B;
    const label = `${opName} ${fmt(a.shape)}${transA ? '^T' : ''} x ${fmt(b.shape)}${transB ? '^T' : ''}`;
    const [wx, wy] = k.workgroupSize;
    // Output elements per workgroup along N and M: the rows kernel's register block (RV vec4
    // columns x RM rows per invocation) or the tiled kernel's BN x BM tile.
    const [perX, perY] = variant.name === 'rows' ? [4 * k.consts.RV! * wx, k.consts.RM! * wy]
      : isSubgroupMatrix(variant) ? subgroupMatrixTile(k)
      : variant.family === 'matmul-tiled' ? [k.consts.GN! * wx, k.consts.GM! * wy] : [k.consts.BN!, k.consts.BM!];
    rt.dispatch(k, {
      op: opName, label,
      params: packParams([M, N, K, nb, A.batchStride, A.rowStride, A.colStride, 0, Bv.batchStride, Bv.rowStride, Bv.colStride, 0]),
      buffers: { c: out.buffer, a: A.t.buffer, b: Bv.t.buffer, c4: out.buffer, b4: Bv.t.buffer },
      workgroups: [Math.ceil(N / perX), Math.ceil(M / perY), nb],
      flops: flops ?? 2 * nb * M * N * K, bytes: a.nbytes + b.nbytes + out.nbytes,
    });
    return out;
  });
}

function check2d(x: Tensor, which: string): void {
  floating(x, 'matmul', which);
  if (x.rank < 1) throw new Error(`medgrad: matmul: ${which} is a scalar (shape ${fmt(x.shape)}); it needs at least 1 dimension`);
}

export const matmul: (a: Tensor, b: Tensor) => Tensor = op({
  name: 'matmul', kind: 'linalg', method: true,
  check: {
    tol: { atol: 2e-5, rtol: 1e-5 }, grad: { atol: 5e-5, rtol: 2e-4 },
    cases: (r) => ([[[3, 5], [5, 2]], [[1, 7], [7, 1]], [[2, 65, 5], [2, 5, 67]], [[4, 3, 5], [5, 6]], [[5, 3], [2, 3, 4]],
      [[2, 1, 3, 4], [3, 4, 2]], [[7], [7, 3]], [[3, 7], [7]], [[66, 9], [9, 67]], [[7, 12], [12, 20]], [[3, 9, 13], [13, 36]], [[1, 5], [5, 4]], [[2, 3, 6], [1, 6, 8]]] as Array<[number[], number[]]>)
      .map(([sa, sb]) => ({ inputs: [r.arr(sa, -1, 1), r.arr(sb, -1, 1)], args: [], label: `[${sa}] x [${sb}]` })),
    ref: ([a, b]) => {
      const A = a!.shape.length === 1 ? { ...a!, shape: [1, a!.shape[0]!] } : a!;
      const B = b!.shape.length === 1 ? { ...b!, shape: [b!.shape[0]!, 1] } : b!;
      const c = R.matmul(A, B);
      const shape = c.shape.filter((_, i) => !((a!.shape.length === 1 && i === c.shape.length - 2) || (b!.shape.length === 1 && i === c.shape.length - 1)));
      return { shape, data: c.data };
    },
  },
  forward: (a: Tensor, b: Tensor): Tensor => {
    check2d(a, 'first operand'); check2d(b, 'second operand');
    // float16 with float32 computes in float32, as PyTorch promotes.
    if (a.dtype !== b.dtype) return tidy(() => matmul(cast(a, 'float32'), cast(b, 'float32')));
    if (a.rank >= 2 && b.rank >= 2) return matmulKernel(a, b);
    // Vectors as in NumPy: a 1-D left operand is a row, a 1-D right operand a column, dropped after.
    return tidy(() => {
      const A = a.rank === 1 ? reshape(a, [1, a.shape[0]!]) : a;
      const B = b.rank === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
      const c = matmulKernel(A, B);
      const shape = c.shape.filter((_, i) => !((a.rank === 1 && i === c.rank - 2) || (b.rank === 1 && i === c.rank - 1)));
      return reshape(c, shape);
    });
  },
  backward: (g: Tensor, _y: Tensor, a: Tensor, b: Tensor): Grad => tidy(() => {
    // The gradient products run in the forward's dtype (float32 for promoted mixed operands).
    // dA reads only b and dB only a: an operand that needs no gradient leaves the other unread.
    const dt = a.dtype === b.dtype ? a.dtype : 'float32';
    const aShape = a.rank === 1 ? [1, a.shape[0]!] : a.shape, bShape = b.rank === 1 ? [b.shape[0]!, 1] : b.shape;
    const G = reshape(cast(g, dt), [...g.shape.slice(0, g.rank - (a.rank === 1 ? 0 : 1) - (b.rank === 1 ? 0 : 1)), aShape[aShape.length - 2]!, bShape[bShape.length - 1]!]);
    const ga = a.requiresGrad ? matmulKernel(G, reshape(cast(b, dt), bShape), false, true) : null;
    const gb = b.requiresGrad ? matmulKernel(reshape(cast(a, dt), aShape), G, true, false) : null;
    return [ga && reshape(sumTo(ga, aShape), a.shape), gb && reshape(sumTo(gb, bShape), b.shape)];
  }),
});
