// GPU memory ownership: scopes free what they should, views share storage, and a long
// training-style loop holds a flat number of live tensors and creates no new GPU buffers.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { gpu } from './helpers/setup.js';

beforeAll(gpu);

describe('memory', () => {
  it('tidy frees everything created inside except its result', () => {
    const before = E.memory().tensors;
    const kept = E.tidy(() => {
      const a = E.randn([4, 5]);
      const b = E.exp(a).add(1);
      return { out: b.sum(), other: [E.mean(a)] };
    });
    expect(E.memory().tensors).toBe(before + 2);
    E.dispose(kept);
    expect(E.memory().tensors).toBe(before);
  });

  it('nested scopes hand results outward', () => {
    const before = E.memory().tensors;
    const r = E.tidy(() => E.tidy(() => E.ones([3]).mul(2)));
    expect(E.memory().tensors).toBe(before + 1);
    r.dispose();
    expect(E.memory().tensors).toBe(before);
  });

  it('reshape views share storage, which is freed with the last view', async () => {
    const start = E.memory();
    const a = E.arange(6);
    const v = a.reshape([2, 3]);
    expect(E.memory().bytes - start.bytes).toBe(a.buffer.size);
    a.dispose();
    expect(Array.from(await v.data())).toEqual([0, 1, 2, 3, 4, 5]);
    v.dispose();
    expect(E.memory().bytes).toBe(start.bytes);
  });

  it('a disposed tensor refuses use with a clear message', () => {
    const a = E.ones([2, 2]);
    a.dispose();
    expect(() => E.add(a, a)).toThrow(/tensor #\d+ of shape \[2, 2\] was disposed/);
  });

  it('1,000 training steps keep live tensors, GPU buffers and bind groups flat', async () => {
    const gen = new E.Generator(5);
    const w = E.randn([8, 3], { generator: gen, requiresGrad: true });
    const b = E.zeros([3], { requiresGrad: true });
    const x = E.randn([16, 8], { generator: gen });
    const y = E.tensor(Int32Array.from({ length: 16 }, (_, i) => i % 3), [16]);
    const step = () => E.tidy(() => {
      const loss = E.crossEntropy(E.add(E.matmul(x, w), b), y);
      loss.backward();
      E.noGrad(() => {
        w.assign(E.sub(w, E.mul(w.grad!, 0.1)));
        b.assign(E.sub(b, E.mul(b.grad!, 0.1)));
      });
      w.grad!.dispose(); w.grad = null;
      b.grad!.dispose(); b.grad = null;
      return loss;
    });
    const first = step();
    const firstLoss = await first.item();
    first.dispose();
    // A varying number of other dispatches before each step shifts every dispatch of the step
    // to other uniform slots of the batch; bind groups must not depend on where a dispatch sits.
    const shift = (k: number) => { for (let j = 0; j < k; j++) E.mul(x, 2).dispose(); };
    for (let i = 0; i < 100; i++) { shift(i); step().dispose(); }
    const base = E.memory();
    const counts: number[] = [];
    for (let i = 0; i < 1000; i++) {
      shift(i % 97);
      step().dispose();
      if (i % 100 === 0) counts.push(E.memory().tensors);
    }
    const last = step();
    const lastLoss = await last.item();
    last.dispose();
    const end = E.memory();
    expect(counts.every((c) => c === base.tensors)).toBe(true);
    expect(end.tensors).toBe(base.tensors);
    expect(end.bytes).toBe(base.bytes);
    expect(end.buffersCreated).toBe(base.buffersCreated);
    expect(end.bindGroupsCreated).toBe(base.bindGroupsCreated);
    expect(lastLoss).toBeLessThan(firstLoss * 0.5);
    E.dispose([w, b, x, y]);
  });
});
