// GEMMs on the adapter's subgroup matrices (tensor cores, through Dawn's
// `chromium-experimental-subgroup-matrix`): f16 inputs, f32 accumulation, one tiling
// (shaders/gemm-tile.wgsl) for matmul and for the convolution's implicit GEMM. The variants are
// declared with each op's own (linalg.ts, conv.ts); this file says which adapter they need,
// which fragment shape they compile with, and when the table rules take them.
import type { Device, SubgroupMatrixConfig } from '../device/device.js';
import type { Kernel } from '../kernels/compile.js';
import { registerGenerated } from '../kernels/shaders.js';
import { invalidateVariantSupport, isHardwareGpu, type Capabilities, type Variant } from '../kernels/variants.js';

/** matmul's tensor-core family; conv2d's is CONV_SM_FAMILY; `-emulated` names each one's test form. */
export const SM_FAMILY = 'matmul-subgroup-matrix';
export const CONV_SM_FAMILY = 'conv2d-subgroup-matrix';
/** The fragments' family (subgroup-matrix.wgsl), where the fragment shape is generated. */
export const SM_FRAGMENTS = 'subgroup-matrix';
export const SM_ENTRY = 'gemm_subgroup_matrix';
const EMULATED = '-emulated';
export const SM_FEATURE = 'chromium-experimental-subgroup-matrix';
export const SM_VARIANT = 'subgroup-matrix-f16';
export const SM_VARIANT_SMALL = 'subgroup-matrix-f16-small';

/**
 * The tile shapes: FM x FN fragments of C per subgroup, KF k-fragments per staged slice, SG_ROWS x
 * SG_COLS subgroups; the shader pads staged rows by PAD f16 (a test reads it back from the WGSL).
 * The large tile (128 x 128 for 16 x 16 fragments) for large products, the small one (64 x 64,
 * twice as deep) to give every multiprocessor work on middling ones.
 */
export interface SmTile { FM: number; FN: number; KF: number; SG_ROWS: number; SG_COLS: number }
export const SM_TILES: Readonly<Record<string, SmTile>> = {
  [SM_VARIANT]: { FM: 4, FN: 4, KF: 1, SG_ROWS: 2, SG_COLS: 2 },
  [SM_VARIANT_SMALL]: { FM: 2, FN: 2, KF: 2, SG_ROWS: 2, SG_COLS: 2 },
};
export const SM_PAD = 8;
const LARGE = SM_TILES[SM_VARIANT]!;

/** Workgroup memory the tile shader declares for a fragment shape and tile: the f16 A and B slices and one f32 fragment per subgroup. */
export function workgroupBytes(c: Pick<SubgroupMatrixConfig, 'M' | 'N' | 'K'>, t: SmTile = LARGE): number {
  const tileM = t.SG_ROWS * t.FM * c.M, tileN = t.SG_COLS * t.FN * c.N, tileK = t.KF * c.K;
  return 2 * tileM * (tileK + SM_PAD) + 2 * tileK * (tileN + SM_PAD) + 4 * t.SG_ROWS * t.SG_COLS * c.M * c.N;
}

/**
 * The configuration the shader compiles with (one for all its tile shapes): the adapter's first
 * (its preferred) with f16 inputs and f32 results whose rows the shader keeps 16-byte aligned
 * (N and K multiples of 8) and whose large tile fits the device's workgroup memory and
 * invocation limits; undefined where none does.
 */
export function chooseSubgroupMatrixConfig(caps: Pick<Capabilities, 'subgroupMatrix' | 'limits'>): SubgroupMatrixConfig | undefined {
  const sm = caps.subgroupMatrix;
  if (!sm || sm.subgroupMaxSize <= 0) return undefined;
  return sm.configs.find((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.N % 8 === 0 && c.K % 8 === 0 && fits(caps, c, LARGE));
}

function fits(caps: Pick<Capabilities, 'subgroupMatrix' | 'limits'>, c: SubgroupMatrixConfig, t: SmTile): boolean {
  const invocations = t.SG_ROWS * t.SG_COLS * (caps.subgroupMatrix?.subgroupMaxSize ?? 0);
  return invocations <= (caps.limits.maxComputeInvocationsPerWorkgroup ?? 256) && invocations <= (caps.limits.maxComputeWorkgroupSizeX ?? 256)
    && workgroupBytes(c, t) <= (caps.limits.maxComputeWorkgroupStorageSize ?? 16384);
}

interface SmShape { M: number; N: number; K: number }

/**
 * How float32 matmuls may trade precision for speed, named as PyTorch's
 * torch.set_float32_matmul_precision: 'highest' (the default) keeps float32 inputs; 'medium'
 * lets products run on tensor cores with float16 inputs (10-bit mantissa, and Infinity past
 * 65504) and float32 accumulation. 'high' is accepted and means 'highest' here (no TF32 path).
 * The variants are offered, picked and tuned only under 'medium'. Node reads an initial value
 * from MEDGRAD_MATMUL_PRECISION.
 */
export type MatmulPrecision = 'highest' | 'high' | 'medium';
const PRECISIONS: readonly MatmulPrecision[] = ['highest', 'high', 'medium'];
let matmulPrecision: MatmulPrecision = 'highest';

export function setFloat32MatmulPrecision(p: MatmulPrecision): void {
  if (!PRECISIONS.includes(p)) throw new Error(`medgrad: setFloat32MatmulPrecision: '${String(p)}' is not one of ${PRECISIONS.join(', ')}`);
  matmulPrecision = p;
  invalidateVariantSupport(); // the tensor-core variants' requirements read it
}
export const getFloat32MatmulPrecision = (): MatmulPrecision => matmulPrecision;
const fromEnv = typeof process === 'undefined' ? undefined : process.env?.MEDGRAD_MATMUL_PRECISION;
if (fromEnv) {
  if (!PRECISIONS.includes(fromEnv as MatmulPrecision)) throw new Error(`medgrad: MEDGRAD_MATMUL_PRECISION must be one of ${PRECISIONS.join(', ')}, got '${fromEnv}'`);
  matmulPrecision = fromEnv as MatmulPrecision;
}

/** The tensor-core variants of a family (one per tile shape), where the adapter has a usable configuration. */
export function subgroupMatrixVariants<S>(family = SM_FAMILY, serves?: (s: S) => boolean): Array<Variant<S>> {
  return Object.entries(SM_TILES).map(([name, t]) => ({
    name, family, entry: SM_ENTRY, constants: { ...t }, subgroupMatrix: 'real' as const, ...(serves && { serves }),
    requires: {
      features: [SM_FEATURE, 'subgroups', 'shader-f16'],
      adapter: (caps: Capabilities) => {
        if (matmulPrecision !== 'medium') return false;
        const c = chooseSubgroupMatrixConfig(caps);
        return c !== undefined && fits(caps, c, t);
      },
    },
  }));
}

/**
 * Its tiling on plain arrays, on any adapter with f16: the variant of a test kernel of its own, so
 * that neither a table rule nor the tuner ever picks it (slow, and f16 where matmul is f32).
 */
export function emulatedSubgroupMatrixVariant<S>(family = SM_FAMILY): Variant<S> {
  // The small tile: two k-fragments per slice, so the k loop is exercised too.
  return { name: 'subgroup-matrix-emulated', family: family + EMULATED, entry: SM_ENTRY, constants: { ...SM_TILES[SM_VARIANT_SMALL]!, SG_SIZE: 1 }, subgroupMatrix: 'emulated', requires: { features: ['shader-f16'] } };
}

/** Whether a variant runs the tensor-core tiling (real or emulated). */
export const isSubgroupMatrix = (v: Variant<unknown>): boolean => v.subgroupMatrix !== undefined;

/** Columns and rows of C one workgroup of a tensor-core kernel computes. */
export const subgroupMatrixTile = (k: Kernel): [number, number] => [k.consts.SG_COLS! * k.consts.FN! * k.consts.SM_N!, k.consts.SG_ROWS! * k.consts.FM! * k.consts.SM_M!];

/**
 * The extra override a selection needs: the adapter's largest subgroup for a real tensor-core
 * variant (also registering the fragment shape its shader compiles with), nothing for others.
 * Undefined where the device has no subgroup matrices (no variant needs anything then).
 */
export function subgroupMatrixConstants(device: Device): ((v: Variant<unknown>) => Readonly<Record<string, number>>) | undefined {
  if (device.subgroupMatrix.configs.length === 0) return undefined;
  // Called on every matmul and convolution dispatch: one function per device, which registers
  // the fragment shape (prepareSubgroupMatrix) only when a real tensor-core variant is picked.
  let f = constantsOf.get(device);
  if (f === undefined) {
    const none = {};
    f = (v) => (v.subgroupMatrix === 'real' ? prepareSubgroupMatrix(device) ?? none : none);
    constantsOf.set(device, f);
  }
  return f;
}
const constantsOf = new WeakMap<Device, (v: Variant<unknown>) => Readonly<Record<string, number>>>();

/**
 * The table rule's part: tensor cores for products of at least 256 in every dimension, on a GPU
 * that has them; the large tile from 2048 x 2048 outputs on (a guess until a GPU measures it:
 * smaller products give a 100-multiprocessor card too few 128 x 128 tiles).
 */
export function preferSubgroupMatrix<S extends SmShape & { batch: number }, V extends { name: string }>(s: S, c: ReadonlyArray<V>, caps: Capabilities): V | undefined {
  if (!isHardwareGpu(caps) || Math.min(s.M, s.N, s.K) < 256) return undefined;
  return pickTile(c, s.M * s.N * s.batch >= 2048 * 2048);
}

/** The large or the small tile's variant, whichever is offered. */
export function pickTile<V extends { name: string }>(c: ReadonlyArray<V>, large: boolean): V | undefined {
  const want = large ? SM_VARIANT : SM_VARIANT_SMALL;
  return c.find((v) => v.name === want) ?? c.find((v) => v.name === SM_VARIANT || v.name === SM_VARIANT_SMALL);
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
  registerGenerated(SM_FRAGMENTS, 'config', p.code);
  return { SG_SIZE: device.subgroupMatrix.subgroupMaxSize };
}
