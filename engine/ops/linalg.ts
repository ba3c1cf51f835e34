// Matrix multiplication: [..., M, K] x [..., K, N] with NumPy batch broadcasting, on the
// register-tiled kernel in matmul.wgsl. Transposed operands are read through strides, so the
// backward products g x B^T and A^T x g need no transpose copies.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor.js';
import { broadcastShapes, fmt, numel } from '../shape.js';
import { defineOp } from './define.js';
import { float } from './checks.js';
import { packParams } from './launch.js';
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

/** C = op(A) x op(B), op = transpose when flagged; A, B at least 2-D. */
export function matmulKernel(a: Tensor, b: Tensor, transA = false, transB = false): Tensor {
  const M = transA ? a.shape[a.rank - 1]! : a.shape[a.rank - 2]!;
  const K = transA ? a.shape[a.rank - 2]! : a.shape[a.rank - 1]!;
  const Kb = transB ? b.shape[b.rank - 1]! : b.shape[b.rank - 2]!;
  const N = transB ? b.shape[b.rank - 2]! : b.shape[b.rank - 1]!;
  if (K !== Kb) throw new Error(`medgrad: matmul: inner dimensions differ: ${fmt(a.shape)}${transA ? '^T' : ''} x ${fmt(b.shape)}${transB ? '^T' : ''} (${K} vs ${Kb})`);
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul (batch dimensions)');
  return tidy(() => {
    const A = operand(a, batch, transA);
    const B = operand(b, batch, transB);
    const out = empty([...batch, M, N]);
    const nb = numel(batch);
    if (out.size === 0) return out;
    const rt = runtime();
    // The row kernel needs B's rows contiguous and vec4-aligned; a transposed B is worth a
    // copy into that layout once the product is large enough to amortise it.
    let Bv = B;
    if (N % 4 === 0 && B.colStride !== 1 && M * N * K >= 1 << 18) {
      const swapLast = B.t.shape.map((_, i, all) => (i === all.length - 2 ? i + 1 : i === all.length - 1 ? i - 1 : i));
      Bv = { t: permute(B.t, swapLast), batchStride: B.batchStride, rowStride: N, colStride: 1 };
    }
    const rows = N % 4 === 0 && Bv.colStride === 1;
    const label = `matmul ${fmt(a.shape)}${transA ? '^T' : ''} x ${fmt(b.shape)}${transB ? '^T' : ''}`;
    rt.dispatch(rt.kernel('matmul', rows ? 'matmul_rows' : 'matmul'), {
      op: 'matmul', label,
      params: packParams([M, N, K, nb, A.batchStride, A.rowStride, A.colStride, 0, Bv.batchStride, Bv.rowStride, Bv.colStride, 0]),
      buffers: { c: out.buffer, a: A.t.buffer, b: Bv.t.buffer, c4: out.buffer, b4: Bv.t.buffer },
      workgroups: rows ? [Math.ceil(N / 4 / 2 / 8), Math.ceil(M / 8 / 4), nb] : [Math.ceil(N / 64), Math.ceil(M / 64), nb],
      flops: 2 * nb * M * N * K, bytes: 4 * (nb * (M * K + K * N + M * N)),
    });
    return out;
  });
}

function check2d(x: Tensor, which: string): void {
  float(x, 'matmul', which);
  if (x.rank < 1) throw new Error(`medgrad: matmul: ${which} is a scalar (shape ${fmt(x.shape)}); it needs at least 1 dimension`);
}

export const matmul: (a: Tensor, b: Tensor) => Tensor = defineOp('matmul',
  (a: Tensor, b: Tensor) => {
    check2d(a, 'first operand'); check2d(b, 'second operand');
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
  (g, _y, a, b) => tidy(() => {
    const A = a.rank === 1 ? reshape(a, [1, a.shape[0]!]) : a;
    const B = b.rank === 1 ? reshape(b, [b.shape[0]!, 1]) : b;
    const G = reshape(g, [...g.shape.slice(0, g.rank - (a.rank === 1 ? 0 : 1) - (b.rank === 1 ? 0 : 1)),
      a.rank === 1 ? 1 : A.shape[A.rank - 2]!, b.rank === 1 ? 1 : B.shape[B.rank - 1]!]);
    const ga = matmulKernel(G, B, false, true);
    const gb = matmulKernel(A, G, true, false);
    return [reshape(sumTo(ga, A.shape), a.shape), reshape(sumTo(gb, B.shape), b.shape)];
  }));
