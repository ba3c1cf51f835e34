// Kernel runtime: picks a kernel's variant through the policy, compiles it (compile.ts), and
// records dispatches into one command encoder that is submitted as a batch. Uniform parameters
// of a batch go into one arena buffer written once per submit. Observers (the profiler) see
// every dispatch and submit. The CPU waits on the GPU only in read(), sync() and the promise
// that fence() returns.
import type { Device } from '../device/device.js';
import { BufferPool, USAGE } from '../buffers/pool.js';
import { KernelCompiler, STORAGE_GROUP, UNIFORM_GROUP, UNIFORM_SLOT, type Kernel } from './compile.js';
import { isHalf, type KernelDef, type Variant, type VariantPolicy } from './variants.js';
import { HALF_FAMILY } from './shaders.js';

export type { Kernel };

export interface DispatchSpec {
  /** Op name and shapes, for errors and the profiler: "matmul [64,32]x[32,16]". */
  label: string;
  op: string;
  params?: ArrayBuffer;
  buffers: Record<string, GPUBuffer>;
  workgroups: [number, number?, number?];
  flops?: number;
  bytes?: number;
}

/** Sees every dispatch and submit; the profiler is one. */
export interface DispatchObserver {
  /** Before a dispatch is recorded: timestamp writes for its own pass, or undefined (only the first observer to ask is timed). */
  beforeDispatch(spec: DispatchSpec): GPUComputePassTimestampWrites | undefined;
  /** After it is recorded; return true to have it submitted at once (timing by completion). */
  afterDispatch(spec: DispatchSpec, timed: boolean): boolean;
  /** Before the batch's encoder is finished. */
  beforeSubmit(encoder: GPUCommandEncoder): void;
  afterSubmit(): void;
}

const ARENA_SLOTS = 2048;
const MAX_PENDING = 1024;
/** Storage bind groups kept (the oldest goes first). */
const BIND_GROUP_CACHE = 4096;

const ids = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = ids.get(b);
  if (id === undefined) ids.set(b, (id = nextBufferId++));
  return id;
}

export class Runtime {
  readonly pool: BufferPool;
  private compiler: KernelCompiler;
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private labels: string[] = [];
  private arena: GPUBuffer;
  private arenaData = new Uint8Array(UNIFORM_SLOT * ARENA_SLOTS);
  private arenaUsed = 0;
  private closeScope: ((d: () => string) => Promise<void>) | null = null;
  private scopes: Promise<void>[] = [];
  private bindGroups = new Map<string, GPUBindGroup>();
  /**
   * The uniform bind group of each arena slot, made at start. (Static offsets, one group per
   * slot, rather than one group with a dynamic offset: lavapipe runs dynamic-offset dispatches
   * at less than half the rate.)
   */
  private readonly slotGroups: GPUBindGroup[];
  /** Storage bind groups created so far (a warm loop adds none). */
  bindGroupsCreated = 0;
  private observers: DispatchObserver[] = [];
  private compiled = new WeakMap<Variant<unknown>, Map<string | number, Kernel>>();
  /** Submit every dispatch alone, so a GPU error names exactly the op that caused it. */
  debug = false;
  dispatchCount = 0;
  /** Largest workgroup count per grid dimension: the device's own limit, read from device.limits. */
  readonly maxWorkgroups: number;

  constructor(readonly device: Device, readonly policy: VariantPolicy) {
    const gpu = device.gpu;
    this.pool = new BufferPool(gpu, Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize));
    this.arena = gpu.createBuffer({ size: this.arenaData.byteLength, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    this.compiler = new KernelCompiler(gpu);
    this.slotGroups = Array.from({ length: ARENA_SLOTS }, (_, slot) => gpu.createBindGroup({
      layout: this.compiler.uniformLayout, entries: [{ binding: 0, resource: { buffer: this.arena, offset: slot * UNIFORM_SLOT, size: UNIFORM_SLOT } }],
    }));
    this.maxWorkgroups = device.limits.maxComputeWorkgroupsPerDimension;
  }

  /** The pipeline of one entry point with these override constants (compiled once). */
  kernel(family: string, entry: string, constants: Readonly<Record<string, number>> = {}): Kernel {
    return this.compiler.kernel(family, entry, constants);
  }

  /** A named integer constant of a shader family (`const ARGMAX: u32 = 3u;`): the WGSL declares it, TypeScript reads it. */
  shaderCode(family: string, name: string): number {
    const v = this.compiler.constants(family)[name];
    if (v === undefined) throw new Error(`medgrad: shaders/${family}.wgsl declares no constant ${name}`);
    return v;
  }

  /** The variant of `k` the policy picks for `shape`, compiled with its constants plus `extra`. */
  select<S>(k: KernelDef<S>, shape: S, constants?: Readonly<Record<string, number>> | ((variant: Variant<S>) => Readonly<Record<string, number>>)): { variant: Variant<S>; kernel: Kernel } {
    const variant = this.policy.pick(k, shape);
    // Constants may depend on the pick (a variant compiled for the shape's window, say).
    const extra = typeof constants === 'function' ? constants(variant) : constants;
    // Dispatch is on the hot path (thousands per training step): compiled kernels are looked up
    // per variant object, then by the extra constants (a lone OP code as itself, else as JSON).
    let byExtra = this.compiled.get(variant as Variant<unknown>);
    if (!byExtra) this.compiled.set(variant as Variant<unknown>, (byExtra = new Map()));
    // A float16 call compiles the family's float16 form (shaders.ts), cached apart by sign.
    const half = isHalf(shape);
    const extraKey = extra ? (extra.OP !== undefined && Object.keys(extra).length === 1 ? (half ? -1 - extra.OP : extra.OP) : (half ? 'h' : '') + JSON.stringify(extra)) : half ? 'h' : '';
    let kernel = byExtra.get(extraKey);
    if (!kernel) byExtra.set(extraKey, (kernel = this.kernel(half ? variant.family + HALF_FAMILY : variant.family, variant.entry, { ...variant.constants, ...extra })));
    return { variant, kernel };
  }

  /** Picks, compiles and records in one call; `spec` builds the dispatch from the compiled kernel. */
  launch<S>(k: KernelDef<S>, shape: S, spec: (kernel: Kernel, variant: Variant<S>) => DispatchSpec, extra?: Parameters<Runtime['select']>[2]): void {
    const { variant, kernel } = this.select(k, shape, extra);
    this.dispatch(kernel, spec(kernel, variant));
  }

  /** Adds an observer; returns the function that removes it. */
  observe(o: DispatchObserver): () => void {
    this.observers.push(o);
    return () => { this.observers = this.observers.filter((x) => x !== o); };
  }

  /** Observers attached now (0 outside profile()). */
  get observerCount(): number { return this.observers.length; }

  private open(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.check();
      this.closeScope = this.device.scope();
      this.encoder = this.device.gpu.createCommandEncoder();
    }
    return this.encoder;
  }

  /**
   * Storage bind groups by kernel and buffers. A training loop reuses the same pooled buffers,
   * so after its first step every lookup hits. The oldest goes first when full (no recency
   * bookkeeping on the hot path: a warm loop needs far fewer than the cache holds).
   */
  private bindGroupFor(kernel: Kernel, spec: DispatchSpec): GPUBindGroup {
    let key = kernel.key;
    for (const name of kernel.bindings.keys()) {
      const buffer = spec.buffers[name];
      if (!buffer) throw new Error(`medgrad: ${spec.label}: kernel ${kernel.key} needs buffer '${name}'`);
      key += ':' + bufferId(buffer);
    }
    let bg = this.bindGroups.get(key);
    if (!bg) {
      const entries: GPUBindGroupEntry[] = [];
      for (const [name, binding] of kernel.bindings) entries.push({ binding, resource: { buffer: spec.buffers[name]! } });
      bg = this.device.gpu.createBindGroup({ layout: kernel.layout, entries });
      this.bindGroupsCreated++;
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.delete(this.bindGroups.keys().next().value!);
      this.bindGroups.set(key, bg);
    }
    return bg;
  }

  /** Forgets cached bind groups (their buffers are about to be destroyed). */
  clearBindGroups(): void { this.bindGroups.clear(); }

  dispatch(kernel: Kernel, spec: DispatchSpec): void {
    const [x, y = 1, z = 1] = spec.workgroups;
    if (Math.max(x, y, z) > this.maxWorkgroups) {
      throw new Error(`medgrad: ${spec.label}: needs ${Math.max(x, y, z)} workgroups in one dimension; this device allows ${this.maxWorkgroups} (split the batch)`);
    }
    const enc = this.open();
    let slot = -1;
    if (kernel.hasUniform) {
      if (this.arenaUsed >= ARENA_SLOTS) { this.flush(); return this.dispatch(kernel, spec); }
      slot = this.arenaUsed++;
      if (spec.params) this.arenaData.set(new Uint8Array(spec.params, 0, Math.min(spec.params.byteLength, UNIFORM_SLOT)), slot * UNIFORM_SLOT);
    }
    const bindGroup = this.bindGroupFor(kernel, spec);
    // Every observer sees the dispatch; the first to ask for timestamps gets its pass timed.
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    let timedBy: DispatchObserver | null = null;
    for (const o of this.observers) {
      const w = o.beforeDispatch(spec);
      if (w && !timestampWrites) { timestampWrites = w; timedBy = o; }
    }
    if (timestampWrites) {
      this.endPass();
      this.pass = enc.beginComputePass({ timestampWrites });
    } else if (!this.pass) {
      this.pass = enc.beginComputePass();
    }
    this.pass.setPipeline(kernel.pipeline);
    this.pass.setBindGroup(STORAGE_GROUP, bindGroup);
    if (slot >= 0) this.pass.setBindGroup(UNIFORM_GROUP, this.slotGroups[slot]!);
    this.pass.dispatchWorkgroups(x, y, z);
    if (timestampWrites) this.endPass();
    this.labels.push(spec.label);
    this.dispatchCount++;
    let submitNow = this.debug || this.labels.length >= MAX_PENDING;
    for (const o of this.observers) submitNow = o.afterDispatch(spec, o === timedBy) || submitNow;
    if (submitNow) this.flush();
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = null;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    const enc = this.open();
    this.endPass();
    enc.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
  }

  /** Submits everything recorded so far. Does not wait for the GPU. */
  flush(): void {
    if (!this.encoder) return;
    this.endPass();
    for (const o of this.observers) o.beforeSubmit(this.encoder);
    if (this.arenaUsed > 0) {
      this.device.gpu.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed * UNIFORM_SLOT);
    }
    this.device.gpu.queue.submit([this.encoder.finish()]);
    const labels = this.labels;
    const close = this.closeScope;
    this.encoder = null;
    this.labels = [];
    this.arenaUsed = 0;
    this.closeScope = null;
    if (close) this.scopes.push(close(() => describeBatch(labels)));
    if (this.scopes.length > 64) this.scopes = [Promise.all(this.scopes).then(() => undefined)];
    for (const o of this.observers) o.afterSubmit();
  }

  /** Writes host data into a buffer, in order with all work recorded before it. */
  write(buf: GPUBuffer, data: ArrayBufferView, offset = 0): void {
    this.flush();
    this.device.gpu.queue.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength);
  }

  /** Copies `bytes` of a buffer back to the host, waiting for the GPU (as sync() does). */
  async read(buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> {
    const size = Math.ceil(bytes / 4) * 4;
    const staging = this.pool.acquire(size, USAGE.MAP_READ | USAGE.COPY_DST, 'a readback');
    this.copy(buf, offset, staging, 0, size);
    this.flush();
    try {
      await staging.mapAsync(1 /* GPUMapMode.READ */, 0, size);
      const out = staging.getMappedRange(0, size).slice(0, bytes);
      staging.unmap();
      return out;
    } catch (e) {
      this.device.check();
      throw e;
    } finally {
      this.pool.release(staging);
      await this.settle();
    }
  }

  /** Waits for the error scopes of submitted batches and throws the first error they hold. */
  private async settle(): Promise<void> {
    const s = this.scopes;
    this.scopes = [];
    await Promise.all(s);
    this.device.check();
  }

  /** Submits pending work; resolves when the GPU has finished everything submitted so far. */
  fence(): Promise<void> {
    this.flush();
    return this.device.gpu.queue.onSubmittedWorkDone();
  }

  /** Waits until the GPU has finished all submitted work, and reports any error it raised. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.gpu.queue.onSubmittedWorkDone();
    await this.settle();
  }
}

function describeBatch(labels: string[]): string {
  if (labels.length === 1) return labels[0]!;
  const shown = labels.slice(0, 6).join('; ');
  return `a batch of ${labels.length} ops (${shown}${labels.length > 6 ? '; ...' : ''}); set MEDGRAD_DEBUG=1 or setDebug(true) to name the exact op`;
}
