// Engine core workloads: matmul, a large elementwise op and the cost of a tiny dispatch.
import type { Workload } from './harness.js';
import type { Driver } from './drivers.js';

export function coreWorkloads(d: Driver, o: { sizes: number[]; elementwise: number }): Workload[] {
  const out: Workload[] = [];
  const held: unknown[] = [];
  const inputs = async (...shapes: number[][]) => { held.length = 0; for (const [i, s] of shapes.entries()) held.push(await d.randn(s, i + 1)); return [...held]; };
  const release = () => { for (const h of held) d.dispose(h); held.length = 0; };

  for (const n of o.sizes) {
    let a: unknown, b: unknown;
    out.push({
      name: `matmul/${n}x${n}x${n}`, unit: 'GFLOP/s', work: 2 * n ** 3, impl: d.impl,
      setup: async () => { [a, b] = await inputs([n, n], [n, n]); },
      run: async () => { const c = d.matmul(a, b); await d.sync(c); d.dispose(c); },
      teardown: release,
    });
  }

  // Tensor cores (f16 inputs, f32 accumulation) against the float32 kernel on the same sizes,
  // where the adapter has them (issue 14's target: at least 2x at 4096).
  const tc = d.tensorCoreMatmul?.() ?? null;
  for (const n of tc ? o.sizes.filter((s) => s >= 1024) : []) {
    for (const [name, on] of [['matmul.subgroupMatrix', true], ['matmul.f32', false]] as const) {
      let a: unknown, b: unknown;
      out.push({
        name: `${name}/${n}x${n}x${n}`, unit: 'GFLOP/s', work: 2 * n ** 3, impl: d.impl,
        setup: async () => { [a, b] = await inputs([n, n], [n, n]); },
        run: async () => { const c = tc!(a, b, on); await d.sync(c); d.dispose(c); },
        teardown: release,
      });
    }
  }

  // Elementwise add of two large vectors: 2 reads and 1 write of 4 bytes per element.
  const m = o.elementwise;
  let x: unknown, y: unknown;
  out.push({
    name: `add/${m % (1 << 20) === 0 ? `${m >> 20}M` : m}`, unit: 'GB/s', work: 12 * m, impl: d.impl,
    setup: async () => { [x, y] = await inputs([m], [m]); },
    run: async () => { const z = d.add(x, y); await d.sync(z); d.dispose(z); },
    teardown: release,
  });

  // A tiny dispatch: 1,000 small adds issued back to back, then one wait.
  const OPS = 1000;
  let s: unknown;
  out.push({
    name: 'dispatch.tiny/add-64x1000', unit: 'us/op', work: OPS, impl: d.impl,
    setup: async () => { [s] = await inputs([64]); },
    run: async () => {
      for (let i = 0; i < OPS - 1; i++) d.dispose(d.add(s, s));
      const z = d.add(s, s);
      await d.sync(z);
      d.dispose(z);
    },
    teardown: release,
  });
  // medgrad only: the CPU cost of recording one small op (no wait), the engine's own overhead.
  if (d.impl === 'medgrad') {
    const encodeMs: number[] = [];
    out.push({
      name: 'dispatch.encode/add-64x1000', unit: 'us/op', work: OPS, impl: d.impl,
      setup: async () => { [s] = await inputs([64]); },
      run: async () => {
        const t0 = performance.now();
        for (let i = 0; i < OPS - 1; i++) d.dispose(d.add(s, s));
        const z = d.add(s, s);
        encodeMs.push(performance.now() - t0);
        await d.sync(z);
        d.dispose(z);
      },
      measuredMs: () => encodeMs.sort((a, b) => a - b)[encodeMs.length >> 1]!,
      teardown: release,
    });
  }
  return out;
}
