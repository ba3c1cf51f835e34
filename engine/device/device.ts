// The engine's device: a GPUDevice plus what the engine needs to know about it. Node and the
// browser differ only in how the adapter is found (node.ts, browser.ts); everything after that
// is shared. Errors from WebGPU are captured with error scopes and surfaced as JavaScript
// errors at the next synchronisation point; device loss is reported, never silent.

export interface AdapterDescription {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  backend: string;
  isFallbackAdapter: boolean;
}

/**
 * Features the engine itself uses when the adapter offers them: the profiler's GPU timestamps.
 * Kernel variants add the features they declare (init() passes them in); the variant policy only
 * picks a variant whose features the device has.
 */
export const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query'];

/**
 * The limits the engine raises to the adapter's maximum: the buffer sizes, which bound the largest
 * tensor and the pool's biggest size class. Every kernel fits WebGPU's defaults otherwise (at most
 * 8 storage buffers, as batch norm's backward pass binds, and 256 invocations per workgroup), so
 * no other limit is requested; a kernel that outgrows them fails validation in the tests.
 */
export const RAISED_LIMITS = ['maxBufferSize', 'maxStorageBufferBindingSize'] as const;

export class DeviceLostError extends Error {}

/**
 * One matrix shape the adapter's subgroup-matrix units (tensor cores) multiply: M x K (componentType)
 * times K x N (componentType) accumulated into M x N (resultComponentType). Dawn's extension to
 * GPUAdapterInfo (`chromium-experimental-subgroup-matrix`), in the adapter's order of preference.
 */
export interface SubgroupMatrixConfig { componentType: string; resultComponentType: string; M: number; N: number; K: number }

/** The adapter's subgroup-matrix configurations, where the device was given the feature (else none). */
function subgroupMatrixConfigs(info: GPUAdapterInfo, features: ReadonlySet<string>): SubgroupMatrixConfig[] {
  if (!features.has('chromium-experimental-subgroup-matrix')) return [];
  const list = (info as GPUAdapterInfo & { subgroupMatrixConfigs?: ReadonlyArray<SubgroupMatrixConfig> }).subgroupMatrixConfigs ?? [];
  return list.map((c) => ({ componentType: c.componentType, resultComponentType: c.resultComponentType, M: c.M, N: c.N, K: c.K }));
}

export class Device {
  readonly info: AdapterDescription;
  readonly features: ReadonlySet<string>;
  readonly limits: GPUSupportedLimits;
  /** What the subgroup-matrix variants need: the adapter's configurations and its largest subgroup. */
  readonly subgroupMatrix: { configs: readonly SubgroupMatrixConfig[]; subgroupMaxSize: number };
  private lostReason: string | null = null;
  private deferredError: Error | null = null;
  private destroyedByOwner = false;

  constructor(readonly gpu: GPUDevice, adapter: GPUAdapter, backend: string) {
    const i = adapter.info;
    this.info = {
      vendor: i.vendor || 'unknown',
      architecture: i.architecture || 'unknown',
      device: i.device || '',
      description: i.description || '',
      backend,
      isFallbackAdapter: Boolean((i as GPUAdapterInfo & { isFallbackAdapter?: boolean }).isFallbackAdapter),
    };
    this.features = new Set(gpu.features);
    this.limits = gpu.limits;
    const maxSize = (i as GPUAdapterInfo & { subgroupMaxSize?: number }).subgroupMaxSize ?? 0;
    this.subgroupMatrix = { configs: subgroupMatrixConfigs(i, this.features), subgroupMaxSize: maxSize };
    void gpu.lost.then((e) => {
      // destroy() through the engine is an orderly end; anything else (a driver reset, another
      // holder of the GPUDevice destroying it) is a loss the engine must report.
      if (this.destroyedByOwner) return;
      this.lostReason = `${e.reason}: ${e.message || 'no message'}`;
      if (e.reason !== 'destroyed') console.error(`medgrad: the GPU device was lost (${this.lostReason})`);
    });
  }

  get hasTimestamps(): boolean { return this.features.has('timestamp-query'); }

  /** Why the device was lost, or null while it works. */
  get lost(): string | null { return this.lostReason; }

  /** Throws if the device is gone or an earlier batch of GPU work failed validation. */
  check(): void {
    if (this.lostReason) throw new DeviceLostError(`medgrad: the GPU device was lost (${this.lostReason}); call init() again for a new one`);
    const e = this.deferredError;
    if (e) { this.deferredError = null; throw e; }
  }

  /** Opens error scopes around GPU work; `close(describe)` records any error for check(). */
  scope(): (describe: () => string) => Promise<void> {
    this.gpu.pushErrorScope('out-of-memory');
    this.gpu.pushErrorScope('validation');
    return async (describe) => {
      const validation = this.gpu.popErrorScope();
      const oom = this.gpu.popErrorScope();
      const [v, o] = await Promise.all([validation, oom]);
      const err = v ?? o;
      if (err && !this.deferredError) {
        const kind = o && !v ? 'out of GPU memory' : 'WebGPU validation error';
        this.deferredError = new Error(`medgrad: ${kind} in ${describe()}: ${err.message}`);
      }
    };
  }

  destroy(): void {
    this.destroyedByOwner = true;
    this.lostReason ??= 'destroyed by its engine';
    this.gpu.destroy();
  }
}

/** The features and limits to request: those the engine uses, as far as the adapter offers them. */
export function deviceDescriptor(adapter: GPUAdapter, variantFeatures: readonly string[] = []): GPUDeviceDescriptor {
  const wanted = [...new Set([...OPTIONAL_FEATURES, ...variantFeatures])] as GPUFeatureName[];
  return {
    requiredFeatures: wanted.filter((f) => adapter.features.has(f)),
    requiredLimits: Object.fromEntries(RAISED_LIMITS.map((k) => [k, adapter.limits[k]])),
  };
}

export const NO_ADAPTER_HELP = [
  'medgrad: no WebGPU adapter was found.',
  'In Node, Dawn needs a Vulkan driver: on Debian/Ubuntu run `npm run setup` (installs Mesa\'s',
  'CPU driver lavapipe where no GPU driver exists), or install your GPU vendor\'s Vulkan driver.',
  'In a browser, use one with WebGPU enabled (Chrome/Edge 113+, or --enable-unsafe-webgpu).',
].join('\n');
