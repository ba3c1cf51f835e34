// Kernels of the channel-blocked layout (engine/ops/layout.ts): conversions (blocked.wgsl), the
// direct convolution (blocked-conv.wgsl) and batch norm + ReLU (blocked-bn.wgsl), each a
// registry kernel so that tests can force every variant and `medgrad tune` could time them.
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { f32bits, gridFor, packParams } from '../kernels/launch.js';
import { defineKernel, pow2 } from '../kernels/variants.js';
import type { Window } from './window.js';

export const blocksOf = (c: number): number => Math.ceil(c / 4);

interface Flat { n: number }
const flat = (name: string, entry: string) => defineKernel<Flat>({ name: `layout.${name}`, variants: [{ name: 'grid', family: 'blocked', entry }] });
const TO_BLOCKED = flat('toBlocked', 'to_blocked');
const FROM_BLOCKED = flat('fromBlocked', 'from_blocked');
const BLOCK_WEIGHTS = flat('blockWeights', 'block_weights');

function convert(k: typeof TO_BLOCKED, op: string, src: Tensor, outShape: number[], words: number[], vec4s: number): Tensor {
  const dst = empty(outShape);
  runtime().launch(k, { n: vec4s }, (kernel) => ({
    op, label: `${op} ${fmt(src.shape)}`, params: packParams(words),
    buffers: { src: src.buffer, src4: src.buffer, dst: dst.buffer, dst4: dst.buffer },
    workgroups: gridFor(vec4s, kernel), bytes: src.nbytes + dst.nbytes,
  }));
  return dst;
}

/** [N, C, H, W] -> [N, Cb, H, W, 4]. */
export function toBlockedKernel(x: Tensor): Tensor {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const Cb = blocksOf(C);
  return convert(TO_BLOCKED, 'toBlocked', x, [N, Cb, H, W, 4], [N, C, H * W, Cb, 0, 0, 0, 0], N * Cb * H * W);
}

/** [N, Cb, H, W, 4] -> [N, C, H, W]. */
export function fromBlockedKernel(x: Tensor, C: number): Tensor {
  const [N, Cb, H, W] = x.shape as [number, number, number, number, number];
  return convert(FROM_BLOCKED, 'fromBlocked', x, [N, C, H, W], [N, C, H * W, Cb, 0, 0, 0, 0], N * Cb * H * W);
}

/** [Cout, Cin, KH, KW] -> [Cob, Cinp, KH, KW, 4]. */
export function blockWeightsKernel(w: Tensor): Tensor {
  const [Co, Ci, KH, KW] = w.shape as [number, number, number, number];
  const Cob = blocksOf(Co), Cip = 4 * blocksOf(Ci);
  return convert(BLOCK_WEIGHTS, 'blockWeights', w, [Cob, Cip, KH, KW, 4], [0, Co, KH * KW, Cob, Ci, Cip, 0, 0], Cob * Cip * KH * KW);
}

/** A blocked convolution's geometry: channel blocks in and out, as in conv.ts's Geometry. */
export interface BlockedGeometry extends Window { N: number; Cib: number; H: number; W: number; Cob: number; KH: number; KW: number }

/**
 * The blocked direct convolution: 1, 2 or 4 output blocks (4, 8, 16 channels) x 8 or 4 pixels
 * per invocation (4 blocks x 4 pixels measured slowest, so not a variant);
 * the table rule takes the largest block the layer's channels fill.
 */
export const BLOCKED_CONV = defineKernel<BlockedGeometry>({
  name: 'layout.conv2d',
  variants: [[4, 8], [2, 8], [1, 8], [2, 4]].map(([ob, px]) => ({ name: `ob${ob}p${px}`, family: 'blocked-conv', entry: 'conv_blocked', constants: { OB: ob!, P: px! } })),
  prefer: (g, c) => c.find((v) => v.constants!.OB! <= g.Cob) ?? c[c.length - 1]!,
  bucket: (g) => `cob${pow2(g.Cob)}.k${g.KH}x${g.KW}.s${g.sh}.px${pow2(g.N * g.OH * g.OW)}`,
});

export function blockedConvKernel(xb: Tensor, wb: Tensor, g: BlockedGeometry): Tensor {
  const y = empty([g.N, g.Cob, g.OH, g.OW, 4]);
  runtime().launch(BLOCKED_CONV, g, (k) => {
    const rows = g.N * g.OH * Math.ceil(g.OW / k.consts.P!);
    return {
      op: 'blockedConv2d', label: `blockedConv2d ${fmt(xb.shape)} * ${fmt(wb.shape)} s${g.sh}x${g.sw} p${g.pt},${g.pb},${g.pl},${g.pr}`,
      params: packParams([g.N, g.Cib, g.H, g.W, g.Cob, g.OH, g.OW, g.KH, g.KW, g.sh, g.sw, g.pt, g.pl, 0, 0, 0]),
      buffers: { x4: xb.buffer, w4: wb.buffer, y4: y.buffer },
      workgroups: [Math.ceil(rows / k.workgroupSize[0]), Math.ceil(g.Cob / k.consts.OB!)],
      flops: 2 * g.N * g.OH * g.OW * 16 * g.Cob * g.Cib * g.KH * g.KW, bytes: xb.nbytes + wb.nbytes + y.nbytes,
    };
  });
  return y;
}

interface Blocks { N: number; Cb: number; HW: number }
const BN_PARTIAL = defineKernel<Blocks>({ name: 'layout.batchNorm.partial', variants: [{ name: 'split', family: 'blocked-bn', entry: 'bnb_partial' }] });
const BN_COMBINE = defineKernel<Blocks>({ name: 'layout.batchNorm.combine', variants: [{ name: 'default', family: 'blocked-bn', entry: 'bnb_combine' }] });
const BN_APPLY = defineKernel<Blocks>({ name: 'layout.batchNorm.apply', variants: [{ name: 'chunks', family: 'blocked-bn', entry: 'bnb_apply' }] });

/** vec4s per invocation, about, for the reduction and the elementwise pass (as norm-kernels.ts). */
const PER_INVOCATION = { reduction: 32, elementwise: 8 };
const chunksFor = (s: Blocks, wg: number, per: number) => Math.max(1, Math.min(64, Math.ceil((s.N * s.HW) / (wg * per))));

export interface BlockedBnOptions { eps?: number; momentum?: number; relu?: boolean }

/**
 * Training-mode batch norm (+ ReLU) of a blocked x over its C real channels: batch statistics,
 * running statistics updated in place. Returns y and the per-block mean and invstd ([Cb, 4]).
 */
export function blockedBatchNormKernel(xb: Tensor, C: number, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, o: BlockedBnOptions): { y: Tensor; mean: Tensor; invstd: Tensor } {
  const [N, Cb, H, W] = xb.shape as [number, number, number, number, number];
  const s: Blocks = { N, Cb, HW: H * W };
  const rt = runtime();
  const label = `blockedBatchNorm ${fmt(xb.shape)}`;
  const words = (chunks: number) => packParams([N, Cb, H * W, C, f32bits(o.eps ?? 1e-5), f32bits(o.momentum ?? 0.1), f32bits(N * H * W), chunks]);
  const mean = empty([Cb, 4]), invstd = empty([Cb, 4]), y = empty(xb.shape);
  const { kernel: pk } = rt.select(BN_PARTIAL, s);
  const chunks = chunksFor(s, pk.workgroupSize[0], PER_INVOCATION.reduction);
  const part = empty([Cb * chunks * 2, 4]);
  rt.dispatch(pk, { op: 'blockedBatchNorm.stats', label: `${label} chunks ${chunks}`, params: words(chunks), buffers: { x4: xb.buffer, part: part.buffer }, workgroups: [chunks, Cb], bytes: xb.nbytes });
  rt.launch(BN_COMBINE, s, (k) => ({
    op: 'blockedBatchNorm.stats', label: `${label} combine`, params: words(chunks),
    buffers: { x4: xb.buffer, part_in: part.buffer, mean4: mean.buffer, invstd4: invstd.buffer, run_mean: rm.buffer, run_var: rv.buffer },
    workgroups: [Math.ceil(Cb / k.workgroupSize[0])],
  }));
  rm.markChanged(); rv.markChanged();
  rt.launch(BN_APPLY, s, (k) => {
    const ch = chunksFor(s, k.workgroupSize[0], PER_INVOCATION.elementwise);
    return {
      op: o.relu ? 'blockedBatchNormRelu' : 'blockedBatchNorm', label, params: words(ch), flops: 2 * xb.size, bytes: 2 * xb.nbytes,
      buffers: { x4: xb.buffer, m_in: mean.buffer, s_in: invstd.buffer, gamma: gamma.buffer, beta: beta.buffer, y4: y.buffer },
      workgroups: [ch, Cb],
    };
  }, { RELU: o.relu ? 1 : 0 });
  part.dispose();
  return { y, mean, invstd };
}
