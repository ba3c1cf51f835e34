// What the convolution's forward kernels (conv2d.wgsl, conv2d-tiled.wgsl, winograd.wgsl) apply
// to each output after the sum, so that a layer's bias, residual add and ReLU cost no pass of
// their own. Its own module so that conv.ts and conv-winograd.ts share it without an import cycle.
import { runtime } from '../context.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * In this order: + bias[channel], + residual (shaped as the output), ReLU (NaN stays NaN).
 * Every forward algorithm (direct, tiled, Winograd) applies all three.
 */
export interface Epilogue { bias?: Tensor; residual?: Tensor | null; relu?: boolean }

/** p.epilogue's flags for a shader family (conv2d.wgsl and winograd.wgsl each declare EPI_*). */
export function epilogueCode(family: string, e: Epilogue): number {
  const rt = runtime();
  return (e.bias ? rt.shaderCode(family, 'EPI_BIAS') : 0) | (e.residual ? rt.shaderCode(family, 'EPI_RESIDUAL') : 0) | (e.relu ? rt.shaderCode(family, 'EPI_RELU') : 0);
}
