// The device, the profiler and the seeded random streams.
import { beforeAll, describe, expect, it, vi } from 'vitest';
import * as E from '../engine/node.js';
import { runtime } from '../engine/context.js';
import { Profiler } from '../engine/profiler/profiler.js';
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
    // Spies on every hook the runtime calls on an active profiler: they must fire inside
    // profile() (so the spies can see it) and never after it returns.
    const hooks = (['beforeDispatch', 'afterDispatch', 'beforeSubmit', 'afterSubmit'] as const).map((m) => vi.spyOn(Profiler.prototype, m));
    const calls = () => hooks.reduce((s, h) => s + h.mock.calls.length, 0);
    const r = await E.profile(() => { E.tidy(() => E.ones([3]).add(1)); });
    expect(r.events.length).toBeGreaterThan(0);
    const during = calls();
    expect(during).toBeGreaterThan(0);
    const x = E.tidy(() => E.ones([64]).add(1).mul(3));
    await x.data();
    x.dispose();
    expect(calls()).toBe(during);
    expect(runtime().observerCount).toBe(0);
    hooks.forEach((h) => h.mockRestore());
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

  it('gives xoshiro128** (splitmix32 seeding) known-answer values', () => {
    // Expected values from an independent Python implementation of splitmix32 and xoshiro128**.
    const g0 = new E.Generator(0);
    expect(g0.getState()).toEqual([2462723854, 1020716019, 454327756, 1275600319]);
    expect(Array.from({ length: 6 }, () => g0.nextU32())).toEqual([3809008728, 1133695204, 53579671, 2891528803, 139681546, 2203266335]);
    const g42 = new E.Generator(42);
    expect(g42.getState()).toEqual([939911724, 3948730756, 321366731, 3317318717]);
    expect(Array.from({ length: 6 }, () => g42.nextU32())).toEqual([2837322924, 544945897, 479756282, 3500138142, 339756180, 113173290]);
    const g7 = new E.Generator(7);
    expect(Array.from({ length: 8 }, () => g7.int(10))).toEqual([2, 5, 4, 1, 5, 4, 5, 3]);
    expect(Array.from(new E.Generator(1).uniform(3))).toEqual([0.5686060190200806, 0.7539288401603699, 0.8893939256668091]);
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
