// The kernel-variant registry. A kernel (one job, e.g. "conv2d.forward") declares its variants:
// each names a WGSL entry point and its override constants, what it needs from the adapter
// (features, limits) and which shapes it serves. A policy picks one variant per call: a
// measured choice from the adapter's tune cache where `medgrad tune` filled one for the shape's
// bucket, otherwise the kernel's own table rule (the lavapipe-tuned defaults).
// A choice may also be a whole algorithm of several passes (Winograd against direct convolution):
// such a kernel's variants are `Choice`s carrying what the op runs, and the op asks the policy
// for one with pick(); the same rules hold (requirements, serves, forcing, tuning by sample()).
import type { SubgroupMatrixConfig } from '../device/device.js';

export interface Requirements {
  /** Adapter features the variant's shader enables (e.g. 'subgroups', 'shader-f16'). */
  features?: readonly string[];
  /** Minimum device limits (e.g. { maxComputeInvocationsPerWorkgroup: 256 }). */
  limits?: Readonly<Record<string, number>>;
  /** Any further condition on the adapter (e.g. a subgroup-matrix configuration it must offer). */
  adapter?(caps: Capabilities): boolean;
}

/** What the policy needs of a variant: its name, what it needs from the adapter, the shapes it serves. */
export interface Choice<S> {
  readonly name: string;
  /** What the variant needs from the adapter (for an algorithm: what its passes' shaders need). */
  readonly requires?: Requirements;
  /** Whether the variant computes this shape (default: every shape). */
  serves?(shape: S): boolean;
  /**
   * Whether the variant also runs on float16 storage (its family compiled as FAMILY@f16, see
   * shaders.ts; an algorithm: all its passes do). A shape with `half: true` is only ever given
   * such a variant; float32-only ones (Winograd, the tiled kernels) are never picked for it.
   */
  readonly half?: boolean;
}

/** A shape that may carry float16 storage (kernels whose shapes say nothing are float32). */
export const isHalf = (shape: unknown): boolean => (shape as { half?: boolean } | null)?.half === true;
const HALF_FEATURE = 'shader-f16';

/** A variant that is one WGSL entry point, compiled and dispatched by the runtime. */
export interface Variant<S> extends Choice<S> {
  readonly family: string;
  readonly entry: string;
  /** WGSL override constants of this variant (tile sizes, unrolls). */
  readonly constants?: Readonly<Record<string, number>>;
  /** The tensor-core tiling on WGSL subgroup matrices, or its emulation on plain arrays (see matmul-subgroup-matrix.ts). */
  readonly subgroupMatrix?: 'real' | 'emulated';
}

export interface KernelDef<S, V extends Choice<S> = Variant<S>> {
  readonly name: string;
  readonly variants: ReadonlyArray<V>;
  /** The table rule among the variants that can run the shape (default: the first); `caps` says which adapter it is. */
  prefer?(shape: S, candidates: ReadonlyArray<V>, caps: Capabilities): V;
  /** Shapes that share a tuned choice; kernels without a bucket are never tuned. */
  bucket?(shape: S): string;
  /** Sets up one dispatch of this kernel for `shape` on fresh inputs, for the tuner to time. */
  sample?(shape: S): Sample;
}

/** A timed unit of work: run() records the kernel's dispatch; dispose() frees its inputs. */
export interface Sample { run(): void; dispose(): void }

/** Any declared kernel, as the tuner and the policy handle it. */
export type AnyKernel = KernelDef<unknown, Choice<unknown>>;

const registry = new Map<string, AnyKernel>();

/** Declares a kernel and its variants (names are unique: a second declaration is a bug). */
export function defineKernel<S, V extends Choice<S> = Variant<S>>(def: KernelDef<S, V>): KernelDef<S, V> {
  if (registry.has(def.name)) throw new Error(`medgrad: kernel '${def.name}' is declared twice`);
  const names = new Set(def.variants.map((v) => v.name));
  if (names.size !== def.variants.length || names.size === 0) throw new Error(`medgrad: kernel '${def.name}' needs variants with distinct names`);
  registry.set(def.name, def as unknown as AnyKernel);
  return def;
}

/** Every declared kernel, in declaration order. */
export function kernels(): ReadonlyArray<AnyKernel> { return [...registry.values()]; }

/** Every adapter feature some declared variant can use (init() requests those the adapter has). */
export function variantFeatures(): string[] {
  return [...new Set(kernels().flatMap((k) => k.variants.flatMap((v) => v.requires?.features ?? [])))];
}

/** Who made the adapter (WebGPU's GPUAdapterInfo, as far as the table rules look at it). */
export interface AdapterIdentity { vendor: string; architecture: string; description?: string; isFallbackAdapter?: boolean }

/** The adapter's capabilities, as the policy sees them. */
export interface Capabilities {
  features: ReadonlySet<string>;
  limits: Readonly<Record<string, number>>;
  adapter?: AdapterIdentity;
  /** The subgroup-matrix configurations (tensor cores) and largest subgroup, where the device has the feature. */
  subgroupMatrix?: { configs: ReadonlyArray<SubgroupMatrixConfig>; subgroupMaxSize: number };
}

/**
 * Whether the table rules should treat the adapter as a GPU: the GPU-shaped variants (coalesced
 * tiles, subgroup reductions) are its defaults. Software adapters (lavapipe/llvmpipe,
 * SwiftShader, WARP), fallback adapters and an adapter the policy was not told about keep the
 * lavapipe-tuned defaults; `medgrad tune` can still pick anything on any adapter.
 */
export function isHardwareGpu(caps: Capabilities): boolean {
  const a = caps.adapter;
  if (!a || a.isFallbackAdapter) return false;
  const id = `${a.vendor} ${a.architecture} ${a.description ?? ''}`.toLowerCase();
  return !/\b(cpu|software|mesa software|llvmpipe|lavapipe|swiftshader|warp|microsoft basic)\b/.test(id) && !(a.vendor === 'unknown' && a.architecture === 'unknown');
}

/** Measured choices: kernel name -> bucket -> variant name. */
export type TuneTable = Record<string, Record<string, string>>;

/** Whether an adapter with `caps` offers what the variant needs (features, limits, its own test). */
export function supportsVariant(v: Choice<unknown>, caps: Capabilities): boolean {
  const r = v.requires;
  if (!r) return true;
  if (r.features?.some((f) => !caps.features.has(f))) return false;
  if (!Object.entries(r.limits ?? {}).every(([k, min]) => (caps.limits[k] ?? 0) >= min)) return false;
  return r.adapter?.(caps) ?? true;
}

// Per capabilities object, the variants of each kernel it can run: fixed per adapter and
// settings, so computed once until a setting that requirements read changes.
let supportCache = new WeakMap<Capabilities, WeakMap<AnyKernel, ReadonlyArray<Choice<unknown>>>>();
/** Makes every policy re-check its variants' requirements: a setting their `adapter` tests read changed (the float32 matmul precision). */
export function invalidateVariantSupport(): void { supportCache = new WeakMap(); }

/** The variants of `k` an adapter with `caps` can run at all, in declaration order (cached; table rules may call it on every pick). */
export function supportedVariants<S, V extends Choice<S>>(k: KernelDef<S, V>, caps: Capabilities): ReadonlyArray<V> {
  let byKernel = supportCache.get(caps);
  if (!byKernel) supportCache.set(caps, (byKernel = new WeakMap()));
  const key = k as unknown as AnyKernel;
  let vs = byKernel.get(key) as ReadonlyArray<V> | undefined;
  if (!vs) byKernel.set(key, (vs = k.variants.filter((v) => supportsVariant(v as Choice<unknown>, caps))) as ReadonlyArray<Choice<unknown>>);
  return vs;
}

export class VariantPolicy {
  private forced = new Map<string, string>();
  /** While set, every pick is recorded here by kernel and bucket (the tuner's way to see a workload's shapes). */
  recording: Map<AnyKernel, Map<string, unknown>> | null = null;
  constructor(readonly caps: Capabilities, private table: TuneTable = {}) {}

  /** Whether the adapter offers what the variant needs. */
  supports(v: Choice<unknown>): boolean { return supportsVariant(v, this.caps); }

  private supported<S, V extends Choice<S>>(k: KernelDef<S, V>): ReadonlyArray<V> { return supportedVariants(k, this.caps); }

  /** The variants of `k` that this adapter can run for `shape`, in declaration order. */
  candidates<S, V extends Choice<S>>(k: KernelDef<S, V>, shape: S): V[] {
    const half = isHalf(shape);
    return this.supported(k).filter((v) => (v.serves?.(shape) ?? true) && (!half || v.half === true));
  }

  pick<S, V extends Choice<S>>(k: KernelDef<S, V>, shape: S): V {
    if (this.recording && k.bucket) {
      const key = k as unknown as AnyKernel;
      const seen = this.recording.get(key) ?? new Map<string, unknown>();
      this.recording.set(key, seen);
      if (!seen.has(k.bucket(shape))) seen.set(k.bucket(shape), shape);
    }
    // On the dispatch path: no allocation unless the kernel has a table rule to consult.
    const half = isHalf(shape);
    if (half && !this.caps.features.has(HALF_FEATURE)) throw new Error(`medgrad: kernel '${k.name}': float16 storage needs the adapter feature '${HALF_FEATURE}', which this adapter lacks`);
    const runs = (v: V) => (v.serves?.(shape) ?? true) && (!half || v.half === true);
    const vs = this.supported(k);
    const tuned = k.bucket ? this.table[k.name] : undefined;
    const forced = this.forced.get(k.name);
    if (half && forced !== undefined && vs.some((v) => v.name === forced && v.half !== true)) {
      throw new Error(`medgrad: kernel '${k.name}': variant '${forced}' is forced but runs only on float32 storage, and this call is float16`);
    }
    const want = forced ?? (tuned ? tuned[k.bucket!(shape)] : undefined);
    const hit = want === undefined ? undefined : vs.find((v) => v.name === want && runs(v));
    const chosen = hit ?? (k.prefer ? k.prefer(shape, vs.filter(runs), this.caps) : vs.find(runs));
    if (!chosen) throw new Error(`medgrad: no variant of kernel '${k.name}' runs on this adapter for ${JSON.stringify(shape)}`);
    return chosen;
  }

  /** Makes every pick of `kernel` return `variant` where it can run (the tuner's lever); null undoes. */
  force(kernel: string, variant: string | null): void {
    if (variant === null) this.forced.delete(kernel);
    else this.forced.set(kernel, variant);
  }

  /** Records a measured choice (kept in memory; the engine persists the table). */
  remember(kernel: string, bucket: string, variant: string): void {
    (this.table[kernel] ??= {})[bucket] = variant;
  }

  tuned(): TuneTable { return structuredClone(this.table); }
}

/** Size bucket: the next power of two, so shapes of one order of magnitude share a choice. */
export const pow2 = (n: number): number => 2 ** Math.ceil(Math.log2(Math.max(n, 1)));
