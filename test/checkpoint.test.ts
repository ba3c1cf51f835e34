// A checkpoint is several files; a process killed between any two of its file operations must
// leave a checkpoint of one epoch (weights, optimiser state and best weights all of the epoch
// checkpoint.json names) and resume to exactly the results of an uninterrupted run. Every file
// operation of a checkpoint goes through experiments/io/atomic.ts; here each can be made the
// last one, as if the process died right after it.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpu } from './helpers/setup.js';
import { generateDataset } from '../experiments/data/generated.js';
import { protocolSplit } from '../experiments/data/splits.js';
import { train, type TrainConfig } from '../experiments/train/trainer.js';
import * as ckpt from '../experiments/train/checkpoint.js';
import { decodeSafetensors } from '../nn/safetensors.js';
import * as E from '../engine/node.js';

/** Records file operations (by file name) and throws after the `killAt`-th one since arming. */
const kill = { armed: false, ops: [] as string[], killAt: Infinity };
vi.mock('../experiments/io/atomic.js', async (original) => {
  const real = await original<Record<string, (...a: unknown[]) => unknown>>();
  const wrap = (name: string, f: (...a: unknown[]) => unknown) => (...args: unknown[]) => {
    const r = f(...args);
    if (kill.armed) {
      const target = String(name === 'copyFileAtomic' ? args[1] : args[0]); // the file written or removed
      kill.ops.push(`${name} ${target.split('/').pop()!.replace(/\.tmp-\d+-\d+$/, '.tmp')}`);
      if (kill.ops.length === kill.killAt) throw new Error('killed');
    }
    return r;
  };
  return Object.fromEntries(Object.entries(real).map(([k, f]) => [k, typeof f === 'function' ? wrap(k, f) : f]));
});
const record = async <T>(killAt: number, fn: () => Promise<T>): Promise<{ ops: string[]; result: Promise<T> }> => {
  kill.ops = []; kill.killAt = killAt; kill.armed = true;
  const result = fn();
  await result.catch(() => undefined);
  kill.armed = false;
  return { ops: kill.ops, result };
};

beforeAll(gpu);
const root = mkdtempSync(join(tmpdir(), 'medgrad-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ds = generateDataset('chest', { size: 8, count: 40, seed: 1 });
const splits = protocolSplit(ds.n, 127);
const config = (epochs: number): TrainConfig => ({
  model: 'resnet8', imageSize: 8, channels: 1, classes: 2, smallInput: true, epochs, batchSize: 16, lr: 1e-3, lrDropEpoch: null,
  l2: 1e-4, augment: true, seed: 3, selectBy: 'last',
});
const quiet = { ds, splits, log: () => undefined, progress: { startEpoch() {}, wantsUpdate: () => false, step() {}, endEpoch() {} } as never };
const strip = (h: Array<Record<string, number>>) => h.map(({ seconds: _s, imagesPerSecond: _i, ...rest }) => rest);

/** The files checkpoint.json names (or, in the older layout, the fixed names). */
function files(dir: string): { model: string; optimizer: string; best: string } {
  const f = (ckpt as { checkpointFiles?: (d: string) => { model: string; optimizer: string; best: string } }).checkpointFiles;
  return f ? f(dir) : { model: join(dir, 'model.safetensors'), optimizer: join(dir, 'optimizer.safetensors'), best: join(dir, 'best.safetensors') };
}
const meta = (file: string) => decodeSafetensors(new Uint8Array(readFileSync(file)), file).metadata;

describe('checkpoints', () => {
  it('killed after any file operation of epoch 2, leave one epoch\'s state and resume to identical results', async () => {
    const one = join(root, 'one'), full = join(root, 'full');
    const a = await record(Infinity, () => train(config(1), { ...quiet, out: one }));
    const b = await record(Infinity, () => train(config(2), { ...quiet, out: full }));
    const ref = await b.result;
    // Epoch 1's checkpoint is the operations both runs share; epoch 2's follow; metrics.json is last.
    let epoch1 = 0;
    while (a.ops[epoch1] === b.ops[epoch1]) epoch1++;
    expect(b.ops.length - 1 - epoch1, b.ops.join(', ')).toBeGreaterThanOrEqual(4);
    expect(b.ops[b.ops.length - 1]).toBe('writeFileAtomic metrics.json');
    const epoch1Model = readFileSync(files(one).model);
    const fullBest = readFileSync(join(full, 'best.safetensors'));
    for (let k = epoch1 + 1; k < b.ops.length; k++) {
      const dir = join(root, `kill-${k}`);
      const killed = await record(k, () => train(config(2), { ...quiet, out: dir }));
      await expect(killed.result, `kill after operation ${k} (${b.ops[k - 1]})`).rejects.toThrow('killed');
      const state = ckpt.readSidecar<{ epoch: number; optimizerStep: number; bestEpoch: number }>(dir).state;
      const f = files(dir);
      // Weights, optimiser and best weights all belong to the epoch checkpoint.json names.
      expect(meta(f.model).epoch, `kill after ${b.ops[k - 1]}: weights`).toBe(String(state.epoch));
      expect(meta(f.optimizer).step, `kill after ${b.ops[k - 1]}: optimiser`).toBe(String(state.optimizerStep));
      expect(meta(f.best).epoch, `kill after ${b.ops[k - 1]}: best weights`).toBe(String(state.bestEpoch));
      if (state.epoch === 1) expect(readFileSync(f.model).equals(epoch1Model), `kill after ${b.ops[k - 1]}: epoch-1 weights`).toBe(true);
      const resumed = await train(config(2), { ...quiet, out: dir, resume: true });
      expect(strip(resumed.state.history as never), `kill after ${b.ops[k - 1]}: resumed history`).toEqual(strip(ref.state.history as never));
      expect(resumed.test).toEqual(ref.test);
      expect(readFileSync(join(dir, 'best.safetensors')).equals(fullBest), `kill after ${b.ops[k - 1]}: best.safetensors`).toBe(true);
    }
  });

  it('stops before writing once it no longer owns the folder (a study cell whose lease was taken over), freeing its tensors', async () => {
    const dir = join(root, 'taken');
    const live = E.memory().tensors;
    let calls = 0;
    const lost = new Error('lost the lease of cell to B');
    // Owned through epoch 1 (its start and its checkpoint); taken over before epoch 2 begins.
    const r = await record(Infinity, () => train(config(3), { ...quiet, out: dir, checkOwnership: () => { if (++calls > 2) throw lost; } }));
    await expect(r.result).rejects.toBe(lost);
    expect(calls).toBe(3);
    expect(ckpt.readSidecar<{ epoch: number }>(dir).state.epoch).toBe(1);
    expect(existsSync(join(dir, 'metrics.json'))).toBe(false);
    expect(E.memory().tensors, 'the model and optimiser are freed').toBe(live);
    // Lost between the epoch's training and its checkpoint: nothing of epoch 2 is written.
    const before = r.ops.length;
    calls = 0;
    const r2 = await record(Infinity, () => train(config(3), { ...quiet, out: dir, resume: true, checkOwnership: () => { if (++calls > 1) throw lost; } }));
    await expect(r2.result).rejects.toBe(lost);
    expect(r2.ops, 'no file operation after the ownership was lost').toEqual([]);
    expect(before).toBeGreaterThan(0);
    expect(ckpt.readSidecar<{ epoch: number }>(dir).state.epoch).toBe(1);
  });

  it('keeps only the committed set\'s files, and names them for other tools', async () => {
    const dir = join(root, 'full');
    const names = readdirSync(dir).sort();
    expect(names.filter((n) => /\.e\d+\.safetensors$/.test(n))).toEqual(['best.e0002.safetensors', 'model.e0002.safetensors', 'optimizer.e0002.safetensors']);
    expect(names.some((n) => n.includes('.tmp-'))).toBe(false);
    expect(ckpt.hasCheckpoint(dir)).toBe(true);
    expect(ckpt.hasCheckpoint(join(root, 'none'))).toBe(false);
    expect(ckpt.bestWeightsFile(dir)).toBe(join(dir, 'best.e0002.safetensors'));
    expect(readFileSync(ckpt.bestWeightsFile(dir)).equals(readFileSync(join(dir, 'best.safetensors')))).toBe(true);
    expect(existsSync(join(dir, 'checkpoint.json'))).toBe(true);
  });
});
