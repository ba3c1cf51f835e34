// The autotuner: runs a workload once to see which tunable kernels it uses and for which shape
// buckets, then times every variant the adapter can run on one representative shape per bucket
// and keeps the fastest in the policy (the engine saves it to the adapter's tune cache).
import type { Engine } from './engine.js';
import type { AnyKernel } from './kernels/variants.js';
import { noGrad } from './autograd/mode.js';

export interface TuneRow { kernel: string; bucket: string; times: Record<string, number>; chosen: string; previous: string }

export interface TuneOptions {
  /** Timed repetitions per variant (after one warm-up run); the median of 3 batches is kept. */
  reps?: number;
  onProgress?: (done: number, total: number, row: TuneRow) => void;
}

async function timeSample(e: Engine, run: () => void, reps: number): Promise<number> {
  run();
  await e.sync();
  const batches: number[] = [];
  for (let b = 0; b < 3; b++) {
    const t0 = performance.now();
    for (let i = 0; i < reps; i++) run();
    await e.sync();
    batches.push((performance.now() - t0) / reps);
  }
  return batches.sort((x, y) => x - y)[1]!;
}

/** Tunes the kernels `workload` uses on engine `e`; returns one row per (kernel, bucket). */
export async function tune(e: Engine, workload: () => unknown | Promise<unknown>, o: TuneOptions = {}): Promise<TuneRow[]> {
  const policy = e.policy;
  const seen = new Map<AnyKernel, Map<string, unknown>>();
  policy.recording = seen;
  try {
    await workload();
    await e.sync();
  } finally {
    policy.recording = null;
  }
  const plan = [...seen.entries()].flatMap(([k, buckets]) => [...buckets.entries()].map(([bucket, shape]) => ({ k, bucket, shape })));
  const todo = plan.filter(({ k, shape }) => k.sample && policy.candidates(k, shape).length > 1);
  const rows: TuneRow[] = [];
  for (const { k, bucket, shape } of todo) {
    const kernel = k;
    const previous = policy.pick(kernel, shape).name;
    const times: Record<string, number> = {};
    const sample = kernel.sample!(shape);
    try {
      for (const v of policy.candidates(kernel, shape)) {
        policy.force(kernel.name, v.name);
        try { times[v.name] = await timeSample(e, () => noGrad(() => sample.run()), o.reps ?? 5); } finally { policy.force(kernel.name, null); }
      }
    } finally {
      sample.dispose();
    }
    const chosen = Object.entries(times).sort((a, b) => a[1] - b[1])[0]![0];
    policy.remember(kernel.name, bucket, chosen);
    const row = { kernel: kernel.name, bucket, times, chosen, previous };
    rows.push(row);
    o.onProgress?.(rows.length, todo.length, row);
  }
  return rows;
}
