// Per-kernel GPU timing. With the adapter's `timestamp-query` every dispatch gets its own
// compute pass with begin/end timestamps; without it every dispatch is submitted alone and
// timed by queue completion (coarser: it includes submission latency). Nothing here runs
// unless a profile is active: the profiler is one of the runtime's dispatch observers, added
// for the profile's duration.
import type { DispatchObserver, DispatchSpec } from '../kernels/runtime.js';
import { USAGE } from '../buffers/pool.js';

export interface KernelEvent { op: string; label: string; startNs: number; durNs: number; flops: number; bytes: number }

export interface OpRow { op: string; calls: number; totalMs: number; meanMs: number; gflops: number | null; gbps: number | null }

const QUERY_CAPACITY = 2048;

export class Profiler implements DispatchObserver {
  readonly events: KernelEvent[] = [];
  readonly method: 'timestamp-query' | 'queue-completion';
  private querySet: GPUQuerySet | null = null;
  private resolveBuf: GPUBuffer | null = null;
  private batch: DispatchSpec[] = [];
  private pendingReads: Promise<void>[] = [];
  private untimedBatch: DispatchSpec[] = [];
  private lastDone = 0;
  private readonly t0 = performance.now();

  constructor(private readonly gpu: GPUDevice, timestamps: boolean) {
    this.method = timestamps ? 'timestamp-query' : 'queue-completion';
    if (timestamps) {
      this.querySet = gpu.createQuerySet({ type: 'timestamp', count: QUERY_CAPACITY });
      this.resolveBuf = gpu.createBuffer({ size: QUERY_CAPACITY * 8, usage: USAGE.QUERY_RESOLVE | USAGE.COPY_SRC });
    }
  }

  /** The pass's timestamp writes for one dispatch, or undefined when timed by completion. */
  beforeDispatch(spec: DispatchSpec): GPUComputePassTimestampWrites | undefined {
    if (!this.querySet || this.batch.length * 2 >= QUERY_CAPACITY) return undefined;
    const i = this.batch.length * 2;
    this.batch.push(spec);
    return { querySet: this.querySet, beginningOfPassWriteIndex: i, endOfPassWriteIndex: i + 1 };
  }

  /** An untimed dispatch is timed by its submit's completion, so it must be submitted alone. */
  afterDispatch(spec: DispatchSpec, timed: boolean): boolean {
    if (timed) return false;
    this.untimedBatch.push(spec);
    return true;
  }

  /** Called before the batch's encoder is finished: copies its timestamps out. */
  beforeSubmit(encoder: GPUCommandEncoder): void {
    if (!this.querySet || !this.resolveBuf || this.batch.length === 0) return;
    const n = this.batch.length * 2;
    const read = this.gpu.createBuffer({ size: n * 8, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, n, this.resolveBuf, 0);
    encoder.copyBufferToBuffer(this.resolveBuf, 0, read, 0, n * 8);
    const specs = this.batch;
    this.batch = [];
    this.pendingReads.push(this.readTimestamps(read, specs));
  }

  private async readTimestamps(read: GPUBuffer, specs: DispatchSpec[]): Promise<void> {
    // The buffer maps only after the submit that follows resolve(); yield once so it happens.
    await Promise.resolve();
    await read.mapAsync(1);
    const t = new BigInt64Array(read.getMappedRange().slice(0));
    read.destroy();
    specs.forEach((s, k) => {
      const start = Number(t[2 * k]!);
      const end = Number(t[2 * k + 1]!);
      this.push(s, start, Math.max(0, end - start));
    });
  }

  /** Called after each submit: times the untimed dispatches by queue completion. */
  afterSubmit(): void {
    if (this.untimedBatch.length === 0) return;
    const specs = this.untimedBatch;
    this.untimedBatch = [];
    const submittedAt = performance.now();
    this.pendingReads.push(this.gpu.queue.onSubmittedWorkDone().then(() => {
      const done = performance.now();
      const start = Math.max(submittedAt, this.lastDone);
      this.lastDone = done;
      const each = ((done - start) * 1e6) / specs.length;
      specs.forEach((s, k) => this.push(s, (start - this.t0) * 1e6 + k * each, each));
    }));
  }

  private push(s: DispatchSpec, startNs: number, durNs: number): void {
    this.events.push({ op: s.op, label: s.label, startNs, durNs, flops: s.flops ?? 0, bytes: s.bytes ?? 0 });
  }

  async finish(): Promise<ProfileReport> {
    await Promise.all(this.pendingReads);
    this.querySet?.destroy();
    this.resolveBuf?.destroy();
    return new ProfileReport(this.events.slice(), this.method);
  }
}

export class ProfileReport {
  constructor(readonly events: KernelEvent[], readonly method: string) {}

  /** Per-op totals, most expensive first. */
  rows(): OpRow[] {
    const by = new Map<string, { calls: number; ns: number; flops: number; bytes: number }>();
    for (const e of this.events) {
      const r = by.get(e.op) ?? { calls: 0, ns: 0, flops: 0, bytes: 0 };
      r.calls++; r.ns += e.durNs; r.flops += e.flops; r.bytes += e.bytes;
      by.set(e.op, r);
    }
    return [...by.entries()].map(([op, r]) => ({
      op,
      calls: r.calls,
      totalMs: r.ns / 1e6,
      meanMs: r.ns / 1e6 / r.calls,
      gflops: r.flops > 0 && r.ns > 0 ? r.flops / r.ns : null,
      gbps: r.bytes > 0 && r.ns > 0 ? r.bytes / r.ns : null,
    })).sort((a, b) => b.totalMs - a.totalMs);
  }

  totalMs(): number { return this.events.reduce((s, e) => s + e.durNs, 0) / 1e6; }

  /** A fixed-width table for terminals. */
  table(): string {
    const rows = this.rows();
    const total = this.totalMs();
    const f = (x: number | null, d = 2) => (x === null ? '-' : x.toFixed(d));
    const lines = [
      `GPU time by op (${this.method}; ${this.events.length} kernels, ${total.toFixed(3)} ms)`,
      `${'op'.padEnd(22)}${'calls'.padStart(7)}${'total ms'.padStart(11)}${'mean ms'.padStart(10)}${'%'.padStart(7)}${'GFLOP/s'.padStart(10)}${'GB/s'.padStart(9)}`,
    ];
    for (const r of rows) {
      lines.push(`${r.op.padEnd(22)}${String(r.calls).padStart(7)}${f(r.totalMs, 3).padStart(11)}${f(r.meanMs, 4).padStart(10)}` +
        `${f(total > 0 ? (100 * r.totalMs) / total : 0, 1).padStart(7)}${f(r.gflops).padStart(10)}${f(r.gbps).padStart(9)}`);
    }
    return lines.join('\n');
  }

  /** Chrome trace / Perfetto JSON (trace event format, complete events in microseconds). */
  chromeTrace(): { traceEvents: object[]; displayTimeUnit: string } {
    const t0 = this.events.reduce((m, e) => Math.min(m, e.startNs), Infinity);
    return {
      displayTimeUnit: 'ms',
      traceEvents: this.events.map((e) => ({
        name: e.op, cat: 'gpu', ph: 'X', pid: 1, tid: 1,
        ts: (e.startNs - t0) / 1e3, dur: e.durNs / 1e3,
        args: { label: e.label, flops: e.flops, bytes: e.bytes },
      })),
    };
  }
}
