// Kernel runtime: compiles WGSL entry points into pipelines (cached by family, entry point and
// override constants), derives bind-group layouts from wgsl_reflect, and records dispatches
// into one command encoder that is submitted as a batch. Uniform parameters of a batch go into
// one arena buffer written once per submit. The CPU waits on the GPU only in read(), sync()
// and the promise fence() returns.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import type { Device } from '../device/device.js';
import { BufferPool, USAGE } from '../buffers/pool.js';
import { shaderSource } from './shaders.js';
import type { Profiler } from '../profiler/profiler.js';

export interface Kernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Binding variable name -> binding index; `p` (uniform) excluded. */
  readonly bindings: ReadonlyMap<string, number>;
  readonly uniformBinding: number | null;
  /** Bytes of the uniform parameter struct (from reflection). */
  readonly uniformSize: number;
}

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

const ARENA_SLOT = 256;
const ARENA_SLOTS = 2048;
const MAX_PENDING = 1024;
const BIND_GROUP_CACHE = 16384;

const ids = new WeakMap<GPUBuffer, number>();
let nextBufferId = 1;
function bufferId(b: GPUBuffer): number {
  let id = ids.get(b);
  if (id === undefined) ids.set(b, (id = nextBufferId++));
  return id;
}

export class Runtime {
  readonly pool: BufferPool;
  private kernels = new Map<string, Kernel>();
  private reflections = new Map<string, WgslReflect>();
  private modules = new Map<string, GPUShaderModule>();
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private labels: string[] = [];
  private arena: GPUBuffer;
  private arenaData = new Uint8Array(ARENA_SLOT * ARENA_SLOTS);
  private arenaUsed = 0;
  private closeScope: ((d: () => string) => Promise<void>) | null = null;
  private scopes: Promise<void>[] = [];
  private bindGroups = new Map<string, GPUBindGroup>();
  profiler: Profiler | null = null;
  /** Submit every dispatch alone, so a GPU error names exactly the op that caused it. */
  debug = false;
  dispatchCount = 0;

  constructor(readonly device: Device) {
    const gpu = device.gpu;
    this.pool = new BufferPool(gpu, Math.min(device.limits.maxBufferSize, device.limits.maxStorageBufferBindingSize));
    this.arena = gpu.createBuffer({ size: this.arenaData.byteLength, usage: USAGE.UNIFORM | USAGE.COPY_DST });
  }

  kernel(family: string, entry: string, constants: Record<string, number> = {}): Kernel {
    const key = `${family}.${entry}${JSON.stringify(constants)}`;
    const hit = this.kernels.get(key);
    if (hit) return hit;
    const gpu = this.device.gpu;
    let module = this.modules.get(family);
    let reflect = this.reflections.get(family);
    if (!module || !reflect) {
      const code = shaderSource(family);
      module = gpu.createShaderModule({ code, label: family });
      reflect = new WgslReflect(code);
      this.modules.set(family, module);
      this.reflections.set(family, reflect);
    }
    const ep = reflect.entry.compute.find((e) => e.name === entry);
    if (!ep) throw new Error(`medgrad: shaders/${family}.wgsl has no compute entry point '${entry}'`);
    const bindings = new Map<string, number>();
    let uniformBinding: number | null = null;
    let uniformSize = 0;
    const entries: GPUBindGroupLayoutEntry[] = [];
    for (const r of ep.resources) {
      if (r.group !== 0) throw new Error(`medgrad: shaders/${family}.wgsl: only @group(0) is supported (${r.name})`);
      const isUniform = r.resourceType === 0;
      if (isUniform) {
        uniformBinding = r.binding;
        uniformSize = Math.ceil(r.size / 16) * 16;
        if (uniformSize > ARENA_SLOT) throw new Error(`medgrad: shaders/${family}.wgsl: uniform ${r.name} is ${r.size} bytes; at most ${ARENA_SLOT} are supported`);
      } else {
        bindings.set(r.name, r.binding);
      }
      entries.push({
        binding: r.binding,
        visibility: 4, // GPUShaderStage.COMPUTE
        buffer: { type: isUniform ? 'uniform' : r.access === 'read' ? 'read-only-storage' : 'storage' },
      });
    }
    entries.sort((x, y) => x.binding - y.binding);
    const layout = gpu.createBindGroupLayout({ entries, label: key });
    const pipeline = gpu.createComputePipeline({
      label: key,
      layout: gpu.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: entry, constants },
    });
    const k: Kernel = { key, pipeline, layout, bindings, uniformBinding, uniformSize };
    this.kernels.set(key, k);
    return k;
  }

  private open(): GPUCommandEncoder {
    if (!this.encoder) {
      this.device.check();
      this.closeScope = this.device.scope();
      this.encoder = this.device.gpu.createCommandEncoder();
    }
    return this.encoder;
  }

  /**
   * Bind groups by kernel, buffers and parameter slot. A training loop reuses the same pooled
   * buffers and, batch after batch, the same slots, so after its first step every lookup hits.
   * (Static slot offsets rather than dynamic offsets: lavapipe runs dynamic-offset dispatches
   * at less than half the rate.)
   */
  private bindGroupFor(kernel: Kernel, spec: DispatchSpec, slot: number): GPUBindGroup {
    let key = `${kernel.key}@${slot}`;
    for (const name of kernel.bindings.keys()) {
      const buffer = spec.buffers[name];
      if (!buffer) throw new Error(`medgrad: ${spec.label}: kernel ${kernel.key} needs buffer '${name}'`);
      key += ':' + bufferId(buffer);
    }
    let bg = this.bindGroups.get(key);
    if (!bg) {
      const entries: GPUBindGroupEntry[] = [];
      if (kernel.uniformBinding !== null) entries.push({ binding: kernel.uniformBinding, resource: { buffer: this.arena, offset: slot * ARENA_SLOT, size: kernel.uniformSize } });
      for (const [name, binding] of kernel.bindings) entries.push({ binding, resource: { buffer: spec.buffers[name]! } });
      bg = this.device.gpu.createBindGroup({ layout: kernel.layout, entries });
      if (this.bindGroups.size >= BIND_GROUP_CACHE) this.bindGroups.clear();
      this.bindGroups.set(key, bg);
    }
    return bg;
  }

  /** Forgets cached bind groups (their buffers are about to be destroyed). */
  clearBindGroups(): void { this.bindGroups.clear(); }

  dispatch(kernel: Kernel, spec: DispatchSpec): void {
    const enc = this.open();
    let slot = 0;
    if (kernel.uniformBinding !== null) {
      if (this.arenaUsed >= ARENA_SLOTS) { this.flush(); return this.dispatch(kernel, spec); }
      slot = this.arenaUsed++;
      if (spec.params) this.arenaData.set(new Uint8Array(spec.params, 0, Math.min(spec.params.byteLength, ARENA_SLOT)), slot * ARENA_SLOT);
    }
    const bindGroup = this.bindGroupFor(kernel, spec, slot);
    const prof = this.profiler;
    const timestampWrites = prof?.timestampWrites(spec);
    if (timestampWrites) {
      this.endPass();
      this.pass = enc.beginComputePass({ timestampWrites });
    } else if (!this.pass) {
      this.pass = enc.beginComputePass();
    }
    this.pass.setPipeline(kernel.pipeline);
    this.pass.setBindGroup(0, bindGroup);
    const [x, y = 1, z = 1] = spec.workgroups;
    this.pass.dispatchWorkgroups(x, y, z);
    if (timestampWrites) this.endPass();
    this.labels.push(spec.label);
    this.dispatchCount++;
    if (prof && !timestampWrites) prof.untimed(spec);
    if (this.debug || this.labels.length >= MAX_PENDING || (prof && !timestampWrites)) this.flush();
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
    this.profiler?.resolve(this.encoder);
    if (this.arenaUsed > 0) {
      this.device.gpu.queue.writeBuffer(this.arena, 0, this.arenaData, 0, this.arenaUsed * ARENA_SLOT);
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
    this.profiler?.submitted();
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
