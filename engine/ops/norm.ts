// Batch normalisation over the channels of NCHW tensors (batchnorm.wgsl). Training mode uses
// the batch's statistics and updates the running ones in place; inference mode uses the running
// statistics. Both modes are differentiable (attacks differentiate models in inference mode).
import { runtime } from '../context.js';
import { empty, Tensor, tidy } from '../tensor.js';
import { fmt } from '../shape.js';
import { defineSavedOp } from './define.js';
import { float } from './checks.js';
import { f32bits, packParams } from './launch.js';
import { checkNCHW } from './window.js';

export interface BatchNormOptions {
  training?: boolean;
  /** Weight of the new batch in the running statistics (PyTorch's convention, default 0.1). Keras' momentum 0.99 is 0.01 here. */
  momentum?: number;
  eps?: number;
}

/** Keras' BatchNormalization defaults (momentum 0.99, epsilon 1e-3) in this engine's convention. */
export const KERAS_BATCHNORM: Required<Omit<BatchNormOptions, 'training'>> = { momentum: 0.01, eps: 1e-3 };

function dims(x: Tensor): { N: number; C: number; HW: number } {
  return { N: x.shape[0]!, C: x.shape[1]!, HW: x.shape[2]! * x.shape[3]! };
}

/** Grid for the per-plane elementwise passes: x over a plane's H*W values, y over planes. */
function planeGrid(x: Tensor): [number, number] {
  const { N, C, HW } = dims(x);
  return [Math.max(1, Math.min(Math.ceil(HW / 256), 64)), Math.min(N * C, 65535)];
}

function bnParams(x: Tensor, o: { training?: boolean; eps?: number; momentum?: number }): ArrayBuffer {
  const { N, C, HW } = dims(x);
  return packParams([N, C, HW, o.training ? 1 : 0, f32bits(o.eps ?? 1e-5), f32bits(o.momentum ?? 0.1), f32bits(N * HW), 0]);
}

function sumsKernel(dy: Tensor, withX?: { x: Tensor; mean: Tensor; invstd: Tensor }): [Tensor, Tensor] {
  const s1 = empty([dy.shape[1]!]);
  const s2 = empty([dy.shape[1]!]); // written only with withX, but never aliased with s1
  const rt = runtime();
  rt.dispatch(rt.kernel('batchnorm', 'channel_sums', { OP: withX ? 1 : 0 }), {
    op: 'channelSums', label: `channelSums ${fmt(dy.shape)}`, params: bnParams(dy, {}),
    buffers: { dy: dy.buffer, x: (withX?.x ?? dy).buffer, m_in: (withX?.mean ?? dy).buffer, s_in: (withX?.invstd ?? dy).buffer, s1: s1.buffer, s2: s2.buffer },
    workgroups: [dy.shape[1]!], bytes: 4 * dy.size * (withX ? 2 : 1),
  });
  return [s1, s2];
}

/** Per-channel sum of an NCHW tensor over N, H and W: a convolution's bias gradient. */
export function channelSums(dy: Tensor): Tensor {
  const [s1, unused] = sumsKernel(dy);
  unused.dispose();
  return s1;
}

function check(x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor): void {
  float(x, 'batchNorm2d', 'input');
  checkNCHW(x, 'batchNorm2d');
  const C = x.shape[1]!;
  for (const [t, name] of [[gamma, 'weight'], [beta, 'bias'], [rm, 'running mean'], [rv, 'running variance']] as const) {
    if (float(t, 'batchNorm2d', name).rank !== 1 || t.shape[0] !== C) {
      throw new Error(`medgrad: batchNorm2d: ${name} of shape ${fmt(t.shape)} does not match the ${C} channels of input ${fmt(x.shape)}`);
    }
  }
}

interface Saved { mean: Tensor; invstd: Tensor }

/**
 * y = (x - mean) / sqrt(var + eps) * weight + bias per channel of x [N, C, H, W]. In training
 * the batch statistics are used and runningMean / runningVar are updated in place.
 */
export const batchNorm2d: (x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, options?: BatchNormOptions) => Tensor =
  defineSavedOp('batchNorm2d',
    (x: Tensor, gamma: Tensor, beta: Tensor, rm: Tensor, rv: Tensor, o: BatchNormOptions = {}): [Tensor, Saved] => {
      check(x, gamma, beta, rm, rv);
      const rt = runtime();
      const { C } = dims(x);
      let mean: Tensor, invstd: Tensor;
      if (o.training) {
        if (x.shape[0]! * x.shape[2]! * x.shape[3]! < 2) throw new Error(`medgrad: batchNorm2d: training needs more than one value per channel, got input ${fmt(x.shape)}`);
        mean = empty([C]); invstd = empty([C]);
        rt.dispatch(rt.kernel('batchnorm', 'bn_stats'), {
          op: 'batchNorm2d.stats', label: `batchNorm2d.stats ${fmt(x.shape)}`, params: bnParams(x, o),
          buffers: { x: x.buffer, mean: mean.buffer, invstd: invstd.buffer, run_mean: rm.buffer, run_var: rv.buffer },
          workgroups: [C], bytes: 8 * x.size,
        });
      } else {
        // Inference: mean = running mean, invstd = 1 / sqrt(running var + eps).
        mean = rm.view(rm.shape);
        invstd = tidy(() => rv.add(o.eps ?? 1e-5).sqrt().pow(-1));
      }
      const y = empty(x.shape);
      rt.dispatch(rt.kernel('batchnorm', 'bn_apply'), {
        op: 'batchNorm2d', label: `batchNorm2d ${fmt(x.shape)}`, params: bnParams(x, o),
        buffers: { x: x.buffer, m_in: mean.buffer, s_in: invstd.buffer, gamma: gamma.buffer, beta: beta.buffer, y: y.buffer },
        workgroups: planeGrid(x), flops: 2 * x.size, bytes: 8 * x.size,
      });
      return [y, { mean, invstd }];
    },
    (g, _y, { mean, invstd }, x, gamma, _beta, _rm, _rv, o = {}) => {
      const [s1, s2] = sumsKernel(g, { x, mean, invstd });
      const dx = empty(x.shape);
      const rt = runtime();
      rt.dispatch(rt.kernel('batchnorm', 'bn_bwd', { OP: o.training ? 0 : 1 }), {
        op: 'batchNorm2d.backward', label: `batchNorm2d.backward ${fmt(x.shape)}`, params: bnParams(x, o),
        buffers: { x: x.buffer, dy: g.buffer, m_in: mean.buffer, s_in: invstd.buffer, gamma: gamma.buffer, s1: s1.buffer, s2: s2.buffer, y: dx.buffer },
        workgroups: planeGrid(x), flops: 4 * x.size, bytes: 12 * x.size,
      });
      // d weight = sum(dy * xhat), d bias = sum(dy); running statistics get no gradient.
      return [dx, s2, s1, null, null];
    });
