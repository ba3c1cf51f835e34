// The device, the profiler and the seeded random streams.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { gpu } from './helpers/setup.js';

beforeAll(gpu);

describe('device', () => {
  it('describes its adapter', () => {
    const d = E.getDevice();
    expect(d.info.backend).toMatch(/dawn/);
    expect(typeof d.info.vendor).toBe('string');
    expect(d.limits.maxStorageBufferBindingSize).toBeGreaterThan(1 << 20);
  });
});

describe('profiler', () => {
  it('times every kernel by op, with GFLOP/s for ops that declare work, and exports a Chrome trace', async () => {
    const a = E.randn([70, 50]);
    const b = E.randn([50, 40]);
    const report = await E.profile(() => {
      for (let i = 0; i < 3; i++) E.tidy(() => E.relu(E.matmul(a, b)).sum());
    });
    const rows = report.rows();
    const mm = rows.find((r) => r.op === 'matmul')!;
    expect(mm.calls).toBe(3);
    expect(mm.totalMs).toBeGreaterThan(0);
    expect(mm.gflops).toBeGreaterThan(0);
    expect(rows.find((r) => r.op === 'relu')!.calls).toBe(3);
    expect(report.table()).toMatch(/matmul\s+3\s/);
    const trace = report.chromeTrace();
    expect(trace.traceEvents).toHaveLength(report.events.length);
    expect(trace.traceEvents[0]).toMatchObject({ ph: 'X', cat: 'gpu' });
    E.dispose([a, b]);
  });

  it('is off outside profile()', async () => {
    const r = await E.profile(() => undefined);
    expect(r.events).toHaveLength(0);
    E.tidy(() => E.ones([3]).add(1));
    await E.sync();
  });
});

describe('random', () => {
  it('replays a seed exactly and differs between seeds', async () => {
    const a = await E.randn([100], { generator: new E.Generator(42) }).data();
    const b = await E.randn([100], { generator: new E.Generator(42) }).data();
    const c = await E.randn([100], { generator: new E.Generator(43) }).data();
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it('restores a saved generator state', () => {
    const g = new E.Generator(7);
    g.uniform(5);
    const state = g.getState();
    const x = Array.from(g.uniform(4));
    expect(Array.from(new E.Generator(0).setState(state).uniform(4))).toEqual(x);
  });

  it('has the right moments', async () => {
    const n = Array.from(await E.randn([20000], { generator: new E.Generator(1), mean: 2, std: 3 }).data());
    const mean = n.reduce((s, v) => s + v, 0) / n.length;
    const sd = Math.sqrt(n.reduce((s, v) => s + (v - mean) ** 2, 0) / n.length);
    expect(Math.abs(mean - 2)).toBeLessThan(0.1);
    expect(Math.abs(sd - 3)).toBeLessThan(0.1);
    const u = Array.from(await E.rand([20000], { generator: new E.Generator(2), low: -1, high: 1 }).data());
    expect(Math.min(...u)).toBeGreaterThanOrEqual(-1);
    expect(Math.max(...u)).toBeLessThan(1);
  });
});
