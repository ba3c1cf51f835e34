// Winograd F(m x m, 3 x 3) convolution for stride-1 3 x 3 layers (winograd.wgsl), m = 2 or 4:
// transforms of the weights and of the input tiles, one batched GEMM per tile position over the
// channels (matmul.wgsl, alpha^2 = (m + 2)^2 products), and the output transform with the epilogue (bias, residual, ReLU).
// The weight gradient uses the same input transform and a transform of dy's m x m tiles.
// Multiplications per output: F(2x2) 16/4 = 4, F(4x4) 36/16 = 2.25, direct 9.
//
// float32 accuracy against the float64 reference (engine/reference/float64.ts), measured by
// test/winograd.test.ts's accuracy case on the study's ResNet layers (3x3 'same'; 16/32/64
// channels at 64/32/16 px and 28/14/7 px; batch 1 and 8; activations U(-1.7, 1.7), He-uniform
// weights, dy U(-0.01, 0.01)). Worst over the 12 layers: max abs error, max abs error / max |ref|,
// share of conv2d's op-test tolerance used (forward 2e-5 + 1e-5 |ref|, gradients 5e-5 + 2e-4 |ref|):
//              forward                 input gradient    weight gradient
//   direct     6.8e-6  1.1e-6  12%     4.0e-8  1.1e-6    1.4e-6  6.0e-7   2%
//   F(2x2)     2.2e-6  3.4e-7   9%     1.2e-8  3.9e-7    1.5e-5  3.1e-6  13%
//   F(4x4)     1.4e-5  2.3e-6  56%     8.8e-8  2.4e-6    2.4e-5  5.2e-6  34%
// (input gradients use under 1% of the tolerance). F(4x4) at the usual points 0, +-1, +-2 had
// forward errors up to 3.6e-5 (158% of the tolerance); see winograd.wgsl for the points used.
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor/tensor.js';
import { packParams } from '../kernels/launch.js';
import { matmulKernel } from './linalg.js';
import { convFlops, type Geometry, type WeightLayout } from './conv.js';
import { epilogueBias, epilogueCode, type Epilogue } from './conv-epilogue.js';

/** Output tile side m of F(m x m, 3 x 3). */
export type WinogradTile = 2 | 4;

/**
 * F(m x m, 3 x 3) computes stride-1 3 x 3 convolutions (any padding, any size) whose transformed
 * buffers (tiles, transformed weights, products) fit one storage binding of WebGPU's default
 * limit (128 MiB); larger layers stay direct.
 */
export function winogradServes(g: Geometry, m: WinogradTile): boolean {
  if (g.KH !== 3 || g.KW !== 3 || g.sh !== 1 || g.sw !== 1) return false;
  const t = tiling(g, m);
  // Every buffer of the passes: input / output tiles, transformed weights [al2, Cout, Cin], the
  // weight gradient's product [al2, Cout, Cp].
  const words = t.al2 * Math.max(Math.max(g.Cin + 3, g.Cout) * t.Pp, g.Cout * (g.Cin + 3));
  return 4 * words <= 2 ** 27;
}

interface Tiling { m: WinogradTile; al2: number; TH: number; TW: number; P: number; Pp: number }

function tiling(g: Geometry, m: WinogradTile): Tiling {
  const TH = Math.ceil(g.OH / m), TW = Math.ceil(g.OW / m);
  const P = g.N * TH * TW;
  // The tile count padded to a multiple of 4 (zero tiles) so that the GEMM's vec4 kernel serves it.
  return { m, al2: (m + 2) ** 2, TH, TW, P, Pp: Math.ceil(P / 4) * 4 };
}

interface Pass { N: number; C: number; H: number; W: number; K: number; Cp?: number; strides?: [number, number, number]; wl?: WeightLayout; epilogue?: number }

function params(g: Geometry, t: Tiling, s: Pass): ArrayBuffer {
  const [sPos, sC, sP] = s.strides ?? [0, 0, 0];
  const wl = s.wl ?? [0, 0, 0, 0, 0];
  return packParams([s.N, s.C, s.H, s.W, g.OH, g.OW, t.TH, t.TW, g.pt, g.pl, t.P, t.Pp, s.K, sPos, sC, sP, ...wl, s.epilogue ?? 0, s.Cp ?? s.C, 0]);
}

// Each pass counts as the op it serves (conv2d, conv2d.dx, conv2d.dw), and the GEMM reports the
// direct convolution's FLOPs (the transforms none), so profiles stay comparable with the direct kernels'.
function pass(entry: string, t: Tiling, op: string, p: ArrayBuffer, buffers: Record<string, GPUBuffer>, grid: [number, number]): void {
  const rt = runtime();
  const k = rt.kernel('winograd', entry, { M: t.m });
  rt.dispatch(k, { op, label: `${op} ${entry} F(${t.m}x${t.m},3x3)`, params: p, buffers, workgroups: [Math.ceil(grid[0] / k.workgroupSize[0]), grid[1]] });
}

/**
 * y = epilogue(x (*) w) (bias, residual, ReLU) with the weights read through layout `wl` (so the input gradient, a stride-1
 * convolution of dy with the transposed, flipped kernel, runs here too).
 */
export function winogradForward(x: Tensor, w: Tensor, e: Epilogue, g: Geometry, wl: WeightLayout, op: string, m: WinogradTile): Tensor {
  const t = tiling(g, m);
  return tidy(() => {
    const u = empty([t.al2, g.Cout, g.Cin]);
    pass('wino_weight', t, op, params(g, t, { N: 0, C: g.Cin, H: 0, W: 0, K: g.Cout, wl }), { src: w.buffer, dst: u.buffer }, [g.Cin, g.Cout]);
    const v = empty([t.al2, g.Cin, t.Pp]);
    const inPass: Pass = { N: g.N, C: g.Cin, H: g.H, W: g.W, K: g.Cout, strides: [g.Cin * t.Pp, t.Pp, 1] };
    pass('wino_input', t, op, params(g, t, inPass), { src: x.buffer, dst: v.buffer }, [t.Pp, g.Cin]);
    const prod = matmulKernel(u, v, false, false, { op, flops: convFlops(g) });
    const y = empty([g.N, g.Cout, g.OH, g.OW]);
    pass('wino_output', t, op, params(g, t, { N: g.N, C: g.Cin, H: g.H, W: g.W, K: g.Cout, epilogue: epilogueCode('winograd', e) }),
      { src: prod.buffer, bias: (epilogueBias(e) ?? prod).buffer, res: (e.residual ?? prod).buffer, dst: y.buffer }, [t.P, g.Cout]);
    return y;
  });
}

/** dw = sum over pixels of dy (x) the input windows, as G^T [(A E A^T) . (B^T D B)] G summed over tiles. */
export function winogradWeightGrad(dy: Tensor, x: Tensor, g: Geometry, op: string, m: WinogradTile): Tensor {
  const t = tiling(g, m);
  return tidy(() => {
    // Input tiles [alpha^2, Pp, Cp] (tile-major: the GEMM's right operand, rows contiguous, Cin
    // padded with zeros to a multiple of 4 for the vec4 GEMM kernel) and dy tiles
    // [alpha^2, Cout, Pp] (the left operand); their product sums over the tiles.
    const Cp = Math.ceil(g.Cin / 4) * 4;
    const v = empty([t.al2, t.Pp, Cp]);
    pass('wino_input', t, op, params(g, t, { N: g.N, C: g.Cin, H: g.H, W: g.W, K: g.Cout, Cp, strides: [t.Pp * Cp, 1, Cp] }), { src: x.buffer, dst: v.buffer }, [t.Pp, Cp]);
    const e = empty([t.al2, g.Cout, t.Pp]);
    pass('wino_grad_output', t, op, params(g, t, { N: g.N, C: g.Cout, H: 0, W: 0, K: g.Cin, strides: [g.Cout * t.Pp, t.Pp, 1] }), { src: dy.buffer, dst: e.buffer }, [t.Pp, g.Cout]);
    const prod = matmulKernel(e, v, false, false, { op, flops: convFlops(g) });
    const dw = empty([g.Cout, g.Cin, 3, 3]);
    pass('wino_grad_weight', t, op, params(g, t, { N: 0, C: g.Cin, H: 0, W: 0, K: g.Cout, Cp }), { src: prod.buffer, dst: dw.buffer }, [g.Cin, g.Cout]);
    return dw;
  });
}

/**
 * The table rule (lavapipe): F(4x4, 3x3) for layers of at least 8 input and output channels and
 * 20 MFLOP of direct work, the direct kernels otherwise. Measured (forward + both gradients, the
 * algorithms interleaved in one process, 5-7 repetitions, on a machine shared with other jobs):
 * F(4x4) was the fastest at batch 32 on the ResNet layers (16-64 channels, 7-64 px), median
 * 1.5-5.8x the direct kernels, and ahead of F(2x2) (0.9-2.8x); for 3 input channels (the stem)
 * and below ~10 MFLOP (batch 1-2 at 7-28 px) the direct kernels were as fast or faster, and
 * between 10 and 20 MFLOP the medians favoured F(4x4) but their spread did not exclude 1.
 */
export function preferAlgorithm(g: Geometry): 'direct' | 'winograd-f4' {
  const flops = 2 * g.N * g.OH * g.OW * g.Cin * g.Cout * 9;
  return winogradServes(g, 4) && g.Cin >= 8 && g.Cout >= 8 && flops >= 2e7 ? 'winograd-f4' : 'direct';
}
