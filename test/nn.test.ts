// nn: modules, the study's models (parameter counts from protocol.md), state dicts, optimisers
// against float64 formulas, safetensors round trips, and flat memory over training steps.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { createModel, MODEL_NAMES, ResNet, CbrLargeT } from '../nn/models.js';
import { Adam, SGD } from '../nn/optim.js';
import { decodeSafetensors, encodeSafetensors, fromRaw, toRaw } from '../nn/safetensors.js';
import { gpu } from './helpers/setup.js';

beforeAll(gpu);

describe('models', () => {
  it('have the protocol\'s parameter counts at 224x224x3, 2 classes (BatchNorm statistics counted as Keras does)', () => {
    const expected: Record<string, number> = { 'cbr-larget': 8_540_610, resnet8: 84_290, resnet20: 280_066, resnet32: 475_842, resnet50: 769_506 };
    for (const name of MODEL_NAMES) {
      const m = createModel(name, { imageSize: 224 });
      expect(m.parameterCount().total, name).toBe(expected[name]);
      m.dispose();
    }
  });

  it('run forward at small sizes in both modes, with the small-input variants chosen explicitly', async () => {
    const x = E.randn([2, 3, 32, 32]);
    const r8 = new ResNet(8, { classes: 3 }).build(32);
    expect(E.tidy(() => r8.forward(x)).shape).toEqual([2, 3]);
    r8.eval();
    expect(E.tidy(() => r8.forward(x)).shape).toEqual([2, 3]);
    const small = createModel('resnet8', { imageSize: 28, smallInput: true, inChannels: 1 });
    expect(E.tidy(() => small.forward(E.randn([1, 1, 28, 28]))).shape).toEqual([1, 2]);
    expect(() => createModel('resnet8', { imageSize: 28 })).toThrow(/needs images of at least 32 px, got 28; use pool: 'global'/);
    const cbr = new CbrLargeT({ padding: 'valid' });
    expect(() => cbr.forward(x)).toThrow(/CBR-LargeT \(valid padding\) needs NCHW input of at least 217x217, got \[2, 3, 32, 32\]; for smaller images use the small-input variant/);
    const cbrSmall = new CbrLargeT({ padding: 'same', classes: 2 });
    expect(E.tidy(() => cbrSmall.forward(x)).shape).toEqual([2, 2]);
    E.dispose(x); r8.dispose(); small.dispose(); cbr.dispose(); cbrSmall.dispose();
  });

  it('names state like PyTorch and loads strictly', () => {
    const a = createModel('resnet8', { imageSize: 32, seed: 1 });
    const b = createModel('resnet8', { imageSize: 32, seed: 2 });
    const keys = Object.keys(a.stateDict());
    expect(keys).toContain('stem.conv.weight');
    expect(keys).toContain('layer2.0.shortcut.weight');
    expect(keys).toContain('layer3.0.conv2.bn.running_var');
    expect(keys).toContain('fc.bias');
    b.loadStateDict(a.stateDict());
    const { 'fc.bias': _drop, ...partial } = a.stateDict();
    expect(() => b.loadStateDict(partial)).toThrow(/missing fc\.bias/);
    const extra = E.zeros([1]);
    expect(() => b.loadStateDict({ ...a.stateDict(), 'head.extra': extra })).toThrow(/unexpected head\.extra/);
    const wrong = E.zeros([3]);
    expect(() => b.loadStateDict({ ...a.stateDict(), 'fc.bias': wrong })).toThrow(/'fc\.bias' has shape \[3\] but the module expects \[2\]/);
    a.dispose(); b.dispose(); E.dispose([extra, wrong]);
  });
});

describe('optimisers', () => {
  it('Adam follows Keras\' update in float64', async () => {
    const w0 = [0.5, -1.25, 2], grads = [[0.1, -0.3, 0.05], [0.2, 0.1, -0.4], [-0.05, 0.2, 0.3]];
    const w = E.tensor(w0, undefined, { requiresGrad: true });
    const opt = new Adam([w], { lr: 0.01 });
    let m = [0, 0, 0], v = [0, 0, 0], ref = [...w0];
    grads.forEach((g, t) => {
      w.grad = E.tensor(g);
      opt.step();
      opt.zeroGrad();
      m = m.map((mi, i) => 0.9 * mi + 0.1 * g[i]!);
      v = v.map((vi, i) => 0.999 * vi + 0.001 * g[i]! ** 2);
      const lrT = (0.01 * Math.sqrt(1 - 0.999 ** (t + 1))) / (1 - 0.9 ** (t + 1));
      ref = ref.map((r, i) => r - (lrT * m[i]!) / (Math.sqrt(v[i]!) + 1e-7));
    });
    const got = Array.from(await w.data());
    got.forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 5));
    opt.dispose(); w.dispose();
  });

  it('Adam folds Keras-style L2 into the gradient', async () => {
    const w = E.tensor([0.5, -1.5], undefined, { requiresGrad: true });
    const opt = new Adam([{ params: [w], l2: 0.1 }], { lr: 0.01 });
    w.grad = E.tensor([0.2, 0.2]);
    opt.step();
    // g' = g + 2 * 0.1 * w = [0.3, -0.1]; first step: m = 0.1 g', v = 0.001 g'^2, lr_t = 0.01 sqrt(0.001) / 0.1
    const ref = [0.5, -1.5].map((x, i) => { const g = [0.3, -0.1][i]!; return x - (0.01 * Math.sqrt(0.001) / 0.1) * (0.1 * g) / (Math.sqrt(0.001 * g * g) + 1e-7); });
    Array.from(await w.data()).forEach((x, i) => expect(x).toBeCloseTo(ref[i]!, 6));
    opt.dispose(); w.dispose();
  });

  it('SGD with momentum and Keras-style L2', async () => {
    const w = E.tensor([1, -2], undefined, { requiresGrad: true });
    const opt = new SGD([{ params: [w], l2: 0.5 }], { lr: 0.1, momentum: 0.9 });
    w.grad = E.tensor([0.5, 0.5]); opt.step(); opt.zeroGrad();
    w.grad = E.tensor([0.5, 0.5]); opt.step(); opt.zeroGrad();
    // step 1: g = 0.5 + 2*0.5*w = [1.5, -1.5]; v = g; w = [0.85, -1.85]
    // step 2: g = [1.35, -1.35]; v = 0.9 v + g = [2.7, -2.7]; w = [0.58, -1.58]
    const got = Array.from(await w.data());
    expect(got[0]).toBeCloseTo(0.58, 5);
    expect(got[1]).toBeCloseTo(-1.58, 5);
    opt.dispose(); w.dispose();
  });

  it('a ResNet-8 training loop with Adam holds a flat number of tensors and learns', async () => {
    const model = createModel('resnet8', { imageSize: 8, smallInput: true, inChannels: 1, classes: 2, seed: 3 });
    const opt = new Adam(model.parameters(), { lr: 0.01 });
    const gen = new E.Generator(9);
    const x = E.randn([6, 1, 8, 8], { generator: gen });
    const y = E.tensor(Int32Array.from([0, 1, 0, 1, 0, 1]), [6]);
    const xs = E.tidy(() => E.add(x, E.mul(E.reshape(E.tensor([-1, 1, -1, 1, -1, 1]), [6, 1, 1, 1]), 2)));
    const step = () => E.tidy(() => {
      const loss = E.crossEntropy(model.forward(xs), y);
      loss.backward();
      opt.step();
      opt.zeroGrad();
      return loss;
    });
    const first = await step().item();
    for (let i = 0; i < 3; i++) step().dispose();
    const base = E.memory().tensors;
    for (let i = 0; i < 20; i++) step().dispose();
    expect(E.memory().tensors).toBe(base);
    const last = step();
    expect(await last.item()).toBeLessThan(first);
    E.dispose([last, x, y, xs]); opt.dispose(); model.dispose();
  });
});

describe('safetensors', () => {
  it('round-trips tensors and metadata and refuses truncated files', async () => {
    const t = { a: E.randn([2, 3]), b: E.tensor(Int32Array.from([1, -2, 3]), [3]) };
    const bytes = encodeSafetensors(await toRaw(t), { arch: 'test' });
    const back = decodeSafetensors(bytes);
    expect(back.metadata).toEqual({ arch: 'test' });
    const restored = fromRaw(back.tensors);
    expect(Array.from(await restored.a!.data())).toEqual(Array.from(await t.a.data()));
    expect(restored.b!.dtype).toBe('int32');
    expect(Array.from(await restored.b!.data())).toEqual([1, -2, 3]);
    // The header's length field is little-endian u64, the data 8-byte aligned.
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    expect(() => decodeSafetensors(bytes.subarray(0, bytes.length - 5), 'model.safetensors')).toThrow(/model\.safetensors: tensor '.' is truncated/);
    E.dispose([t, restored]);
  });
});
