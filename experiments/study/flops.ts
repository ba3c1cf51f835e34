// The work of a study, counted in FLOPs from the models' layer shapes. Only convolutions and
// the dense layer are counted (2 per multiply-add, as the kernels declare them to the profiler);
// batch norm, pooling and element-wise work are a few percent of a convolution network and are
// left out. Counted from nn/models.ts' definitions; test/plan.test.ts checks the count against a
// hand formula and against the profiler's per-dispatch count of one traced forward pass.
import type { ModelName } from '../../nn/models.js';

export interface ModelShape { model: ModelName; imageSize: number; channels: number; classes: number; smallInput: boolean }

const conv = (out: number, cin: number, cout: number, k: number) => 2 * out * out * cin * cout * k * k;

/** CBR-LargeT: five 7x7 convolutions (valid or same), 3x3/2 max pools after the first four, GAP, dense. */
function cbrFlops(s: ModelShape): number {
  const widths = [32, 64, 128, 256, 512];
  const valid = !s.smallInput;
  if (valid && s.imageSize < 217) throw new Error(`medgrad study: CBR-LargeT (valid padding) needs images of at least 217 px, got ${s.imageSize}; use smallInput for smaller images`);
  let side = s.imageSize, cin = s.channels, total = 0;
  widths.forEach((f, i) => {
    side = valid ? side - 6 : side;
    total += conv(side, cin, f, 7);
    cin = f;
    if (i < 4) side = valid ? Math.floor((side - 3) / 2) + 1 : Math.ceil(side / 2);
  });
  return total + 2 * 512 * s.classes;
}

/** Keras ResNet v1 (depth 6n+2): 3x3 'same' stem, three stages of n basic blocks, 1x1 stride-2 shortcuts, pool, dense. */
function resnetFlops(s: ModelShape, depth: number): number {
  const n = (depth - 2) / 6;
  const s1 = s.imageSize, s2 = Math.ceil(s1 / 2), s3 = Math.ceil(s2 / 2);
  if (!s.smallInput && s3 < 8) throw new Error(`medgrad study: ResNet-${depth} with the 8x8 pooling head needs images of at least 32 px, got ${s.imageSize}; use smallInput for smaller images`);
  let total = conv(s1, s.channels, 16, 3);
  for (const [side, cin, cout] of [[s1, 16, 16], [s2, 16, 32], [s3, 32, 64]] as const) {
    total += conv(side, cin, cout, 3) + conv(side, cout, cout, 3) + (cin !== cout ? conv(side, cin, cout, 1) : 0);
    total += (n - 1) * 2 * conv(side, cout, cout, 3);
  }
  const features = s.smallInput ? 64 : 64 * Math.floor(s3 / 8) ** 2;
  return total + 2 * features * s.classes;
}

/** Forward FLOPs of one image through a study model. */
export function forwardFlops(s: ModelShape): number {
  if (s.model === 'cbr-larget') return cbrFlops(s);
  const depth = Number(s.model.slice('resnet'.length));
  if (![8, 20, 32, 50].includes(depth)) throw new Error(`medgrad study: unknown model '${s.model}'`);
  return resnetFlops(s, depth);
}

/**
 * Cost units, in forward passes of one image. A training step is forward + the input and weight
 * gradients (3); an attack step is forward + the input gradient only, the weights being frozen
 * (2); a prediction is 1.
 */
export const TRAIN_STEP = 3;
export const ATTACK_STEP = 2;
