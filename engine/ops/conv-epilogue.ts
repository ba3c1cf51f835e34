// What the convolution's forward kernels (conv2d.wgsl, conv2d-tiled.wgsl, winograd.wgsl) apply
// to each output after the sum, so that a layer's bias, residual add and ReLU cost no pass of
// their own. Its own module so that conv.ts and conv-winograd.ts share it without an import cycle.
import { runtime } from '../context.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * In this order: * scale[channel], + bias[channel], + residual (shaped as the output), ReLU (NaN
 * stays NaN). `affine` [2, Cout] holds shifts then scales (an inference batch norm), in place
 * of `bias`. Every forward algorithm (direct, tiled, Winograd) applies all of them.
 */
export interface Epilogue { bias?: Tensor; affine?: Tensor; residual?: Tensor | null; relu?: boolean }

/** The buffer the kernels read as `bias`: the affine's (shifts, then scales) or the bias. */
export const epilogueBias = (e: Epilogue): Tensor | undefined => e.affine ?? e.bias;

/** p.epilogue's flags for a shader family (conv2d.wgsl and winograd.wgsl each declare EPI_*). */
export function epilogueCode(family: string, e: Epilogue): number {
  const rt = runtime();
  return (e.bias || e.affine ? rt.shaderCode(family, 'EPI_BIAS') : 0) | (e.affine ? rt.shaderCode(family, 'EPI_SCALE') : 0) | (e.residual ? rt.shaderCode(family, 'EPI_RESIDUAL') : 0) | (e.relu ? rt.shaderCode(family, 'EPI_RELU') : 0);
}
