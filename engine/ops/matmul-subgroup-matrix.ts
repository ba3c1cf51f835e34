// matmul on the adapter's subgroup matrices (tensor cores, through Dawn's
// `chromium-experimental-subgroup-matrix`): f16 inputs, f32 accumulation. The variants are
// declared with matmul's (linalg.ts); this file says which adapter they need, which fragment
// shape they compile with, and when the table rule takes them.
import type { Device, SubgroupMatrixConfig } from '../device/device.js';
import { registerGenerated } from '../kernels/shaders.js';
import { isHardwareGpu, type Capabilities, type Variant } from '../kernels/variants.js';

export const SM_FAMILY = 'matmul-subgroup-matrix';
export const SM_FEATURE = 'chromium-experimental-subgroup-matrix';
export const SM_VARIANT = 'subgroup-matrix-f16';

/** The real shader's layout: FM x FN fragments per subgroup, SG_ROWS x SG_COLS subgroups, rows padded by PAD f16 (a test reads the WGSL's values back). */
export const SM_TILE = { FM: 4, FN: 4, SG_ROWS: 2, SG_COLS: 2, PAD: 8 } as const;
const { FM, FN, SG_ROWS, SG_COLS, PAD } = SM_TILE;

/** Workgroup memory the tile shader declares for a fragment shape: the f16 A and B slices and one f32 fragment per subgroup. */
export function workgroupBytes(c: Pick<SubgroupMatrixConfig, 'M' | 'N' | 'K'>): number {
  const tileM = SG_ROWS * FM * c.M, tileN = SG_COLS * FN * c.N;
  return 2 * tileM * (c.K + PAD) + 2 * c.K * (tileN + PAD) + 4 * SG_ROWS * SG_COLS * c.M * c.N;
}

/**
 * The configuration the variant compiles with: the adapter's first (its preferred) with f16 inputs
 * and f32 results whose rows the shader keeps 16-byte aligned (N and K multiples of 8) and whose
 * tiles fit the device's workgroup memory and invocation limits; undefined where none does.
 */
export function chooseSubgroupMatrixConfig(caps: Pick<Capabilities, 'subgroupMatrix' | 'limits'>): SubgroupMatrixConfig | undefined {
  const sm = caps.subgroupMatrix;
  if (!sm || sm.subgroupMaxSize <= 0) return undefined;
  const invocations = SG_ROWS * SG_COLS * sm.subgroupMaxSize;
  if (invocations > (caps.limits.maxComputeInvocationsPerWorkgroup ?? 256) || invocations > (caps.limits.maxComputeWorkgroupSizeX ?? 256)) return undefined;
  const storage = caps.limits.maxComputeWorkgroupStorageSize ?? 16384;
  return sm.configs.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.N % 8 === 0 && c.K % 8 === 0 && workgroupBytes(c) <= storage);
}

interface SmShape { M: number; N: number; K: number }

/** The tensor-core variant, where the adapter has a usable configuration. */
export function subgroupMatrixVariant<S extends SmShape>(): Variant<S> {
  return {
    name: SM_VARIANT, family: SM_FAMILY, entry: 'matmul_subgroup_matrix', constants: { SG_ROWS, SG_COLS },
    requires: { features: [SM_FEATURE, 'subgroups', 'shader-f16'], adapter: (caps) => chooseSubgroupMatrixConfig(caps) !== undefined },
  };
}

/**
 * Its tiling on plain arrays, on any adapter with f16: the variant of a test kernel of its own, so
 * that neither a table rule nor the tuner ever picks it (slow, and f16 where matmul is f32).
 */
export function emulatedSubgroupMatrixVariant<S extends SmShape>(): Variant<S> {
  return { name: 'subgroup-matrix-emulated', family: `${SM_FAMILY}-emulated`, entry: 'matmul_subgroup_matrix', constants: { SG_ROWS, SG_COLS, SG_SIZE: 1 }, requires: { features: ['shader-f16'] } };
}

/** The table rule's part: tensor cores for products of at least 256 in every dimension, on a GPU that has them. */
export function preferSubgroupMatrix<S extends SmShape, V extends { name: string }>(s: S, c: ReadonlyArray<V>, caps: Capabilities): V | undefined {
  if (!isHardwareGpu(caps) || Math.min(s.M, s.N, s.K) < 256) return undefined;
  return c.find((v) => v.name === SM_VARIANT);
}

const prepared = new WeakMap<Device, { cfg: SubgroupMatrixConfig; code: string } | null>();

/**
 * Registers the fragment shape for this device's shader (WGSL needs it as constants; registered
 * on every call, so the family always compiles for the device in use); returns the extra override
 * the real variant needs (the adapter's largest subgroup, which sizes its workgroup), or
 * undefined where the device has no usable configuration.
 */
export function prepareSubgroupMatrix(device: Device): { SG_SIZE: number } | undefined {
  let p = prepared.get(device);
  if (p === undefined) {
    const caps = { subgroupMatrix: device.subgroupMatrix, limits: device.limits as unknown as Record<string, number> };
    const cfg = device.features.has(SM_FEATURE) ? chooseSubgroupMatrixConfig(caps) : undefined;
    p = cfg ? { cfg, code: `const SM_M: u32 = ${cfg.M}u;\nconst SM_N: u32 = ${cfg.N}u;\nconst SM_K: u32 = ${cfg.K}u;` } : null;
    prepared.set(device, p);
  }
  if (!p) return undefined;
  registerGenerated(SM_FAMILY, 'config', p.code);
  return { SG_SIZE: device.subgroupMatrix.subgroupMaxSize };
}
