// Batch norm's kernels and their variants (batchnorm.wgsl, bnreduce.wgsl): the per-channel
// reductions (statistics; the backward's sums) and the two elementwise passes (normalise;
// input gradient). Each is a registry kernel whose table rule is the first variant that runs
// the shape, in the order measured fastest on lavapipe:
// - reductions: 'split4' / 'split' (two levels: chunk sums by several workgroups per channel,
//   then a combine per channel) before 'single4' / 'single' (one workgroup per channel);
// - elementwise: 'channel4' (workgroups by channel chunk, coefficients workgroup-uniform,
//   several vec4s per invocation) before 'vec4' (workgroups by plane); for planes whose H*W is
//   not a multiple of 4, 'channel1' (by channel chunk, lanes across plane boundaries: 9-11x the
//   per-plane 'scalar' on [32, 64, 7, 7], `medgrad tune` on lavapipe) before 'scalar'.
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { f32bits, filled, packParams } from '../kernels/launch.js';
import { defineKernel, pow2, type Sample, type Variant } from '../kernels/variants.js';

/** `half`: float16 activations (the kernels' float16 forms; statistics and sums stay float32). */
export type Planes = { N: number; C: number; HW: number; half?: boolean };
export interface BnOptions { training?: boolean; eps?: number; momentum?: number }
const vec4 = (s: Planes) => s.HW % 4 === 0;

// Tunable (`medgrad tune`): shapes share a measured choice by powers of two, and by what decides
// the candidates (vec4 alignment, storage dtype).
const bucket = (s: Planes) => `n${pow2(s.N)}.c${pow2(s.C)}.hw${pow2(s.HW)}${vec4(s) ? '' : '.odd'}${s.half ? '.f16' : ''}`;
interface PlaneInputs { x: Tensor; dy: Tensor; mean: Tensor; invstd: Tensor; gamma: Tensor; beta: Tensor; rm: Tensor; rv: Tensor; s1: Tensor; s2: Tensor }
/** The tuner's sample of one pass: fresh inputs of the shape (their values do not change the timing) and `pass` on them. */
function planeSample(s: Planes, pass: (t: PlaneInputs) => Tensor[]): Sample {
  const act = s.half ? 'float16' : 'float32';
  const [x, dy] = [0.5, 0.25].map((v) => filled([s.N, s.C, s.HW, 1], v, act)) as [Tensor, Tensor];
  // Separate tensors throughout: a pass may not bind one buffer for reading and writing.
  const [mean, invstd, gamma, beta, rm, rv, s1, s2] = [0.1, 1.2, 1, 0, 0, 1, 0.3, -0.2].map((v) => filled([s.C], v)) as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
  const t = { x, dy, mean, invstd, gamma, beta, rm, rv, s1, s2 };
  return { run: () => { for (const out of pass(t)) out.dispose(); }, dispose: () => { for (const v of Object.values(t)) v.dispose(); } };
}

const STATS = defineKernel<Planes>({
  name: 'batchnorm.stats',
  variants: [
    { name: 'split4', family: 'bnreduce', entry: 'bn_partial4', serves: vec4, half: true },
    { name: 'split', family: 'bnreduce', entry: 'bn_partial', half: true },
    { name: 'single4', family: 'batchnorm', entry: 'bn_stats4', serves: vec4, half: true },
    { name: 'single', family: 'batchnorm', entry: 'bn_stats', half: true },
  ],
  bucket,
  sample: (s) => planeSample(s, (t) => Object.values(statistics(t.x, t.rm, t.rv, { training: true }))),
});
const SUMS = defineKernel<Planes>({
  name: 'batchnorm.sums',
  variants: [
    { name: 'split4', family: 'bnreduce', entry: 'bn_partial4', serves: vec4, half: true },
    { name: 'split', family: 'bnreduce', entry: 'bn_partial', half: true },
    { name: 'single', family: 'batchnorm', entry: 'channel_sums', half: true },
  ],
  bucket,
  // The backward's form (with x-hat), the one a training step runs most.
  sample: (s) => planeSample(s, (t) => { const r = gradientSums(t.dy, t); return [r.s1, r.s2]; }),
});
const COMBINE_STATS = defineKernel<Planes>({ name: 'batchnorm.combineStats', variants: [{ name: 'default', family: 'bnreduce', entry: 'bn_combine_stats', half: true }] });
const COMBINE_SUMS = defineKernel<Planes>({ name: 'batchnorm.combineSums', variants: [{ name: 'default', family: 'bnreduce', entry: 'bn_combine_sums', half: true }] });
const planeKernel = (name: string, entry: string, pass: (t: PlaneInputs) => Tensor) => defineKernel<Planes>({
  name: `batchnorm.${name}`,
  variants: [
    { name: 'channel4', family: 'batchnorm', entry: `${entry}4c`, serves: vec4, half: true },
    { name: 'vec4', family: 'batchnorm', entry: `${entry}4`, serves: vec4, half: true },
    { name: 'channel1', family: 'batchnorm', entry: `${entry}1c`, half: true },
    { name: 'scalar', family: 'batchnorm', entry, half: true },
  ],
  bucket,
  sample: (s) => planeSample(s, (t) => [pass(t)]),
});
const APPLY = planeKernel('apply', 'bn_apply', (t) => applyPass(t.x, t, t.gamma, t.beta, { training: true }, true));
const BACKWARD = planeKernel('backward', 'bn_bwd', (t) => backwardPass(t.x, t.dy, t, t.gamma, t, { training: true }));

export function dims(x: Tensor): Planes {
  return { N: x.shape[0]!, C: x.shape[1]!, HW: x.shape[2]! * x.shape[3]!, ...(x.dtype === 'float16' && { half: true }) };
}

/**
 * Values (or vec4s) each invocation of a by-channel kernel handles, about: enough to amortise
 * its set-up, and more for the reductions, whose per-invocation partial sums the combine adds
 * one by one (on lavapipe at [32, 32, 56, 56], on a shared machine, the statistics pass took
 * 4.6 ms at 4 and 2.2 ms at 64; the elementwise passes showed no clear trend between 1 and 16).
 */
const UNITS_PER_INVOCATION = { elementwise: 8, reduction: 32 };
/** Most chunks per channel (the combine adds them serially). */
const MAX_CHUNKS = 64;

/** Chunks per channel for a by-channel kernel of workgroup size wg over units of `unit` values. */
function chunksFor(s: Planes, wg: number, unit: number, kind: keyof typeof UNITS_PER_INVOCATION): number {
  return Math.max(1, Math.min(MAX_CHUNKS, Math.ceil((s.N * s.HW) / unit / (wg * UNITS_PER_INVOCATION[kind]))));
}

function bnParams(s: Planes, o: BnOptions, chunks = 0): ArrayBuffer {
  return packParams([s.N, s.C, s.HW, o.training ? 1 : 0, f32bits(o.eps ?? 1e-5), f32bits(o.momentum ?? 0.1), f32bits(s.N * s.HW), chunks]);
}

/** Grid for the per-plane elementwise passes: x over a plane's H*W values, y over planes. */
function planeGrid(s: Planes, wg: number, perInvocation: number): [number, number] {
  return [Math.max(1, Math.min(Math.ceil(s.HW / perInvocation / wg), 64)), Math.min(s.N * s.C, runtime().maxWorkgroups)];
}

const unitOf = (v: Variant<Planes>) => (v.name.endsWith('4') ? 4 : 1);

/** Grid and chunk count of an elementwise pass's variant. */
function elementwiseGrid(s: Planes, v: Variant<Planes>, wg: number): { workgroups: [number, number]; chunks: number } {
  if (v.name.startsWith('channel')) { const chunks = chunksFor(s, wg, unitOf(v), 'elementwise'); return { workgroups: [chunks, s.C], chunks }; }
  return { workgroups: planeGrid(s, wg, unitOf(v)), chunks: 0 };
}

/** mean and invstd of x per channel; in training the running statistics are updated in place. */
export function statistics(x: Tensor, rm: Tensor, rv: Tensor, o: BnOptions): { mean: Tensor; invstd: Tensor } {
  const s = dims(x);
  const rt = runtime();
  const mean = empty([s.C]), invstd = empty([s.C]);
  const label = `batchNorm2d.stats ${fmt(x.shape)}`;
  if (rt.policy.pick(STATS, s).family === 'batchnorm') {
    rt.launch(STATS, s, () => ({
      op: 'batchNorm2d.stats', label, params: bnParams(s, o),
      buffers: { x: x.buffer, x4: x.buffer, mean: mean.buffer, invstd: invstd.buffer, run_mean: rm.buffer, run_var: rv.buffer },
      workgroups: [s.C], bytes: x.nbytes,
    }));
  } else {
    // Buffers the STATS reduction does not read are bound to x (every binding needs one).
    twoLevel(STATS, s, { OP: rt.shaderCode('bnreduce', 'STATS') }, 'batchNorm2d.stats', label, o, x.nbytes,
      { x: x.buffer, x4: x.buffer, dy: x.buffer, dy4: x.buffer, yo: x.buffer, yo4: x.buffer, gm: mean.buffer, gm4: mean.buffer, m_in: x.buffer },
      { x: x.buffer, out1: mean.buffer, out2: invstd.buffer, run_mean: rm.buffer, run_var: rv.buffer });
  }
  rm.markChanged(); rv.markChanged();
  return { mean, invstd };
}

/**
 * Per-channel sums of the gradient dy: s1 = sum(dy) and, given x with its mean and invstd,
 * s2 = sum(dy * (x - mean) * invstd). With reluOut, dy is first masked by reluOut > 0 and the
 * masked gradient returned too (ReLU's and the residual's gradient, from the same pass).
 */
export function gradientSums(dy: Tensor, withX?: { x: Tensor; mean: Tensor; invstd: Tensor }, reluOut?: Tensor): { s1: Tensor; s2: Tensor; masked: Tensor | null } {
  const s = dims(dy);
  const rt = runtime();
  const s1 = empty([s.C]);
  const s2 = empty([s.C]); // written only with withX, but never aliased with s1
  // Without the ReLU fusion gm is not written; it still needs a buffer of its own (no aliasing).
  const masked = empty(reluOut ? dy.shape : [1], dy.dtype);
  const op = reluOut ? 'batchNorm2d.relu.sums' : 'channelSums', label = `channelSums ${fmt(dy.shape)}`;
  const bytes = dy.nbytes * (withX ? 2 : 1) + (reluOut ? 2 * dy.nbytes : 0);
  const x = (withX?.x ?? dy).buffer, mean = (withX?.mean ?? dy).buffer, invstd = (withX?.invstd ?? dy).buffer, yo = (reluOut ?? dy).buffer;
  if (rt.policy.pick(SUMS, s).family === 'batchnorm') {
    rt.launch(SUMS, s, () => ({
      op, label, params: bnParams(s, {}), bytes, workgroups: [s.C],
      buffers: { dy: dy.buffer, x, m_in: mean, s_in: invstd, s1: s1.buffer, s2: s2.buffer, yo, gm: masked.buffer },
    }), { OP: rt.shaderCode('batchnorm', withX ? 'WITH_XHAT' : 'SUMS_ONLY'), RELU: reluOut ? 1 : 0 });
  } else {
    twoLevel(SUMS, s, { OP: rt.shaderCode('bnreduce', withX ? 'GRAD' : 'SUMS'), RELU: reluOut ? 1 : 0 }, op, label, {}, bytes,
      { x, x4: x, dy: dy.buffer, dy4: dy.buffer, yo, yo4: yo, gm: masked.buffer, gm4: masked.buffer, m_in: mean },
      { s_in: invstd, out1: s1.buffer, out2: s2.buffer });
  }
  if (reluOut) return { s1, s2, masked };
  masked.dispose();
  return { s1, s2, masked: null };
}

/** y = (x - mean) * invstd * gamma + beta, then + residual, then ReLU, as asked. */
export function applyPass(x: Tensor, saved: { mean: Tensor; invstd: Tensor }, gamma: Tensor, beta: Tensor, o: BnOptions, relu: boolean, residual?: Tensor | null): Tensor {
  const s = dims(x);
  const y = empty(x.shape, x.dtype);
  const op = relu ? 'batchNorm2d.relu' : 'batchNorm2d';
  const res = (residual ?? x).buffer;
  runtime().launch(APPLY, s, (k, v) => {
    const { workgroups, chunks } = elementwiseGrid(s, v, k.workgroupSize[0]);
    return {
      op, label: `${op} ${fmt(x.shape)}${residual ? ' +residual' : ''}`, params: bnParams(s, o, chunks), workgroups, flops: 2 * x.size, bytes: (residual ? 3 : 2) * x.nbytes,
      buffers: { x: x.buffer, m_in: saved.mean.buffer, s_in: saved.invstd.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer, res, x4: x.buffer, y4: y.buffer, res4: res },
    };
  }, { RELU: relu ? 1 : 0, RESIDUAL: residual ? 1 : 0 });
  return y;
}

/** dx from dy and the channel sums (training), or dy alone (inference). */
export function backwardPass(x: Tensor, dy: Tensor, saved: { mean: Tensor; invstd: Tensor }, gamma: Tensor, sums: { s1: Tensor; s2: Tensor }, o: BnOptions): Tensor {
  const s = dims(x);
  const dx = empty(x.shape, x.dtype);
  const rt = runtime();
  rt.launch(BACKWARD, s, (k, v) => {
    const { workgroups, chunks } = elementwiseGrid(s, v, k.workgroupSize[0]);
    return {
      op: 'batchNorm2d.backward', label: `batchNorm2d.backward ${fmt(x.shape)}`, params: bnParams(s, o, chunks), workgroups, flops: 4 * x.size, bytes: 3 * x.nbytes,
      buffers: { x: x.buffer, dy: dy.buffer, m_in: saved.mean.buffer, s_in: saved.invstd.buffer, gamma: gamma.buffer, s1: sums.s1.buffer, s2: sums.s2.buffer, y: dx.buffer, x4: x.buffer, dy4: dy.buffer, y4: dx.buffer },
    };
  }, { OP: rt.shaderCode('batchnorm', o.training ? 'TRAINING' : 'INFERENCE') });
  return dx;
}

/** Chunk sums (workgroup (k, c) for chunk k of channel c), then their combine per channel. */
function twoLevel(k: typeof STATS, s: Planes, constants: Record<string, number>, op: string, label: string, o: BnOptions,
  bytes: number, partBuffers: Record<string, GPUBuffer>, combineBuffers: Record<string, GPUBuffer>): void {
  const rt = runtime();
  const { variant, kernel } = rt.select(k, s, constants);
  const chunks = chunksFor(s, kernel.workgroupSize[0], unitOf(variant), 'reduction');
  const part = empty([s.C * chunks * kernel.workgroupSize[0] * 2]); // a partial (sum, sum) per invocation
  rt.dispatch(kernel, { op, label: `${label} chunks ${chunks}`, params: bnParams(s, o, chunks), buffers: { ...partBuffers, part: part.buffer }, workgroups: [chunks, s.C], bytes });
  const combine = k === STATS ? rt.select(COMBINE_STATS, s).kernel : rt.select(COMBINE_SUMS, s, { OP: constants.OP! }).kernel;
  rt.dispatch(combine, {
    op, label: `${label} combine`, params: bnParams(s, o, chunks), buffers: { ...combineBuffers, part_in: part.buffer },
    workgroups: [Math.ceil(s.C / combine.workgroupSize[0])], bytes: 8 * s.C * chunks,
  });
  part.dispose();
}
