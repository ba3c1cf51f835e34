// Benchmark records and timing. Every workload is timed with tinybench as "launch a batch of
// work, then wait for the GPU", so each implementation pays for exactly one synchronisation
// per sample. Results are records { name, value, unit, impl, adapter }: `name` is the same for
// every implementation of a workload, so runs can be compared by script.
import { Bench } from 'tinybench';
import { writeFileAtomic } from '../experiments/io/atomic.js';
import { getDevice } from '../engine/node.js';

export interface BenchRecord { name: string; value: number; unit: string; impl: string; adapter: string }

export interface Workload {
  /** Record name, shared across implementations: `op.variant/shape`. */
  name: string;
  unit: 'GFLOP/s' | 'GB/s' | 'us/op' | 'images/s' | 'ms';
  /** Work per call of run() (flops, bytes, ops or images), used to turn time into the unit. */
  work: number;
  impl: string;
  setup?: () => Promise<void> | void;
  /** Launches the work and resolves when the GPU has finished it. */
  run: () => Promise<void>;
  teardown?: () => Promise<void> | void;
  /** When set, the milliseconds to report instead of run()'s latency (a part of run() it timed itself). */
  measuredMs?: () => number;
}

export function adapterName(): string {
  const i = getDevice().info;
  return [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unknown adapter';
}

export interface RunOptions { time: number; iterations: number }

/** Median milliseconds of one run() over tinybench's samples, after a warm-up (the median
 * resists the stalls a shared two-core machine adds). */
export async function timeIt(w: Workload, o: RunOptions): Promise<number> {
  await w.setup?.();
  try {
    const bench = new Bench({ time: o.time, iterations: o.iterations, warmupIterations: 1, warmupTime: 0, throws: true });
    bench.add(w.name, w.run);
    await bench.run();
    const r = bench.tasks[0]!.result;
    if (r.state !== 'completed') throw new Error(`${w.impl} ${w.name}: ${r.state}`);
    return w.measuredMs ? w.measuredMs() : r.latency.p50;
  } finally {
    await w.teardown?.();
  }
}

export function toUnit(w: Workload, ms: number): number {
  switch (w.unit) {
    case 'GFLOP/s': return w.work / (ms * 1e6);
    case 'GB/s': return w.work / (ms * 1e6);
    case 'us/op': return (ms * 1e3) / w.work;
    case 'images/s': return w.work / (ms / 1e3);
    case 'ms': return ms;
  }
}

/** A fixed-width table, workloads grouped, with each peer's ratio to medgrad. */
export function formatTable(records: BenchRecord[]): string {
  const names = [...new Set(records.map((r) => r.name))];
  const lines = [`${'workload'.padEnd(40)}${'impl'.padEnd(14)}${'value'.padStart(12)}  unit        vs medgrad`];
  for (const n of names) {
    const rs = records.filter((r) => r.name === n);
    const mine = rs.find((r) => r.impl === 'medgrad');
    for (const r of rs) {
      const lowerIsBetter = r.unit === 'us/op' || r.unit === 'ms';
      const ratio = mine && r !== mine && r.value > 0 ? (lowerIsBetter ? r.value / mine.value : mine.value / r.value) : null;
      lines.push(`${n.padEnd(40)}${r.impl.padEnd(14)}${r.value.toFixed(r.value < 10 ? 3 : 1).padStart(12)}  ${r.unit.padEnd(12)}${ratio ? `medgrad ${ratio.toFixed(2)}x` : ''}`);
    }
  }
  return lines.join('\n');
}

/** Writes JSON through a temporary file and a rename, so a killed run leaves no partial file. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n');
}
