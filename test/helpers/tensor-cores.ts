// Adapters described as the registry sees them, for the tensor-core variants' tests: an H100
// with an f16 x f16 -> f32 subgroup-matrix configuration, and lavapipe.
import type { Capabilities } from '../../engine/kernels/variants.js';
import { SM_FEATURE } from '../../engine/ops/matmul-subgroup-matrix.js';

export const cfg16 = { componentType: 'f16', resultComponentType: 'f32', M: 16, N: 16, K: 16 };
export const limits = { maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024, maxComputeWorkgroupStorageSize: 49152 };
const nvidia = { vendor: 'nvidia', architecture: 'hopper', description: 'NVIDIA H100 80GB HBM3' };
export const h100: Capabilities = {
  features: new Set(['subgroups', 'shader-f16', SM_FEATURE]), limits, adapter: nvidia,
  subgroupMatrix: { configs: [{ ...cfg16, componentType: 'f32', K: 8 }, cfg16], subgroupMaxSize: 32 },
};
export const lavapipe: Capabilities = { features: new Set(['subgroups', 'shader-f16']), limits, adapter: { vendor: 'mesa', architecture: 'software', description: 'llvmpipe', isFallbackAdapter: true } };
