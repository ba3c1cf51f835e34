// Engine: one GPU device and everything the engine keeps for it: the buffer pool, the compiled
// kernels and their variant policy, the grad mode, the live tensors and the profiler. init()
// makes one and makes it current; the module functions (sync, profile, memory, ...) are the
// current engine's methods, for convenience.
import type { Device } from './device/device.js';
import type { BufferPool } from './buffers/pool.js';
import { Runtime } from './kernels/runtime.js';
import { VariantPolicy, type TuneTable } from './kernels/variants.js';
import { Profiler, type ProfileReport } from './profiler/profiler.js';
import type { Tensor } from './tensor/tensor.js';
import { currentEngine, setEngine } from './context.js';

/** Where measured variant choices are kept between runs (a file in Node, nothing in a page). */
export interface TuneStore {
  /** Where the table lives, for messages. */
  readonly location: string;
  load(): TuneTable;
  save(table: TuneTable): void;
}

export interface MemoryInfo {
  /** Tensors not yet disposed. */
  tensors: number;
  /** Bytes of GPU storage held by live tensors. */
  bytes: number;
  /** Bytes of freed buffers kept in the pool for reuse. */
  pooledBytes: number;
  pooledBuffers: number;
  /** GPU buffers ever created by the pool. */
  buffersCreated: number;
  /** Storage bind groups created so far; a warm loop adds none (each holds a native descriptor set until collected). */
  bindGroupsCreated: number;
}

export class Engine {
  readonly runtime: Runtime;
  readonly policy: VariantPolicy;
  /** Whether ops record the autograd graph (noGrad() turns it off). */
  gradEnabled = true;
  /** Tensors whose storage this engine allocated and that are not disposed yet. */
  readonly live = new Set<Tensor>();
  liveBytes = 0;
  private profiling = false;

  constructor(readonly device: Device, readonly tuneStore: TuneStore | null = null) {
    // The table rules see who made the adapter (a GPU's defaults differ from lavapipe's);
    // MEDGRAD_GPU_DEFAULTS=0 hides it, so a GPU runs lavapipe's defaults (bench/gpu.sh's A/B run).
    const env = typeof process !== 'undefined' ? process.env : undefined;
    const adapter = env?.MEDGRAD_GPU_DEFAULTS === '0' ? undefined : device.info;
    this.policy = new VariantPolicy({ features: device.features, limits: device.limits as unknown as Record<string, number>, adapter, subgroupMatrix: device.subgroupMatrix }, tuneStore?.load() ?? {});
    this.runtime = new Runtime(device, this.policy);
    if (typeof process !== 'undefined' && process.env?.MEDGRAD_DEBUG === '1') this.runtime.debug = true;
  }

  get pool(): BufferPool { return this.runtime.pool; }

  /** True once the device is gone (destroyed or lost); the engine cannot be used after that. */
  get lost(): boolean { return this.device.lost !== null; }

  /** Waits until all submitted GPU work is done; throws any GPU error it raised. */
  sync(): Promise<void> { return this.runtime.sync(); }

  /**
   * Submits the work recorded so far and returns a promise for its completion, without waiting.
   * A loop that awaits the previous step's fence keeps one step in flight: the CPU prepares the
   * next batch while the GPU runs the current one, and never runs further ahead than that.
   */
  fence(): Promise<void> { return this.runtime.fence(); }

  /** Frees the GPU buffers held for reuse by the pool. */
  emptyCache(): void {
    // Commands still in the open encoder may use pooled buffers (a tensor disposed after the op
    // that read it was recorded): submit them first, since destroy() only waits for submitted work.
    this.runtime.flush();
    this.runtime.clearBindGroups();
    this.pool.emptyCache();
  }

  memory(): MemoryInfo {
    const p = this.pool.snapshot();
    return { tensors: this.live.size, bytes: this.liveBytes, pooledBytes: p.pooledBytes, pooledBuffers: p.pooledBuffers, buffersCreated: p.created, bindGroupsCreated: this.runtime.bindGroupsCreated };
  }

  /**
   * Runs fn with per-kernel GPU timing and returns the report. With `timestamp-query` the
   * times are GPU timestamps around each dispatch; otherwise queue-completion times.
   */
  async profile(fn: () => unknown | Promise<unknown>): Promise<ProfileReport> {
    if (this.profiling) throw new Error('medgrad: profile() calls cannot nest');
    this.profiling = true;
    try {
      await this.sync();
      const prof = new Profiler(this.device.gpu, this.device.hasTimestamps);
      const stop = this.runtime.observe(prof);
      try {
        await fn();
        await this.sync();
      } catch (e) {
        // Still release the query set and settle the pending timestamp reads before rethrowing.
        stop();
        await prof.finish().catch(() => undefined);
        throw e;
      }
      stop();
      return await prof.finish();
    } finally {
      this.profiling = false;
    }
  }

  /** Keeps the variant choices measured so far (by `medgrad tune`) for later runs on this adapter. */
  saveTuning(): string | null {
    if (!this.tuneStore) return null;
    this.tuneStore.save(this.policy.tuned());
    return this.tuneStore.location;
  }

  /** Destroys the device; this engine's tensors become unusable. */
  destroy(): void {
    if (currentEngine() === this) setEngine(null);
    this.device.destroy();
  }
}
