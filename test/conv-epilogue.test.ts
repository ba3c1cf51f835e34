// The convolution's epilogue (bias, residual, ReLU) and its user, the eval-mode folded conv-BN
// layer (engine/ops/conv-fused.ts): convBatchNorm2d's record cases forced through every forward
// variant and algorithm against the float64 reference (values, and gradients against float64
// central differences); then the folded layers against the unfused composition (conv2d +
// batchNorm2d / batchNormRelu2d) in a ConvBN layer, both ResNet basic blocks, and whole
// ResNet-8 and CBR-LargeT models (logits, input gradient, parameter gradients).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { cropTaps } from '../engine/ops/conv-crop.js';
import { windowGeometry } from '../engine/ops/window.js';
import * as R from '../engine/reference/float64.js';
import { Rng, type Tol } from '../engine/reference/check.js';
import type { DispatchObserver } from '../engine/kernels/runtime.js';
import { CONV_ALGORITHM, CONV_FORWARD, CONV_WEIGHT_GRAD_ALGORITHM } from '../engine/ops/conv.js';
import { createModel, setFoldBatchNorm, type Module } from '../nn/index.js';
import { expectClose, gpu, toTensor } from './helpers/setup.js';

beforeAll(gpu);
const policy = () => E.getEngine().policy;
const unforce = () => [CONV_ALGORITHM, CONV_WEIGHT_GRAD_ALGORITHM, CONV_FORWARD].forEach((k) => policy().force(k.name, null));
afterAll(unforce);

/** Dispatch labels recorded while fn runs. */
function labelsOf<T>(fn: () => T): [T, string[]] {
  const seen: string[] = [];
  const o: DispatchObserver = { beforeDispatch: () => undefined, afterDispatch: (s) => { seen.push(s.label); return false; }, beforeSubmit: () => {}, afterSubmit: () => {} };
  const stop = E.getEngine().runtime.observe(o);
  try { return [fn(), seen]; } finally { stop(); }
}

const record = E.OPS.find((o) => o.name === 'convBatchNorm2d')!;

// Every way the forward can run: each algorithm, and under 'direct' each forward-kernel variant.
const WAYS: Array<{ name: string; algorithm: string; kernel: string | null }> = [
  ...CONV_FORWARD.variants.map((v) => ({ name: v.name, algorithm: 'direct', kernel: v.name })),
  { name: 'winograd-f2', algorithm: 'winograd-f2', kernel: null }, { name: 'winograd-f4', algorithm: 'winograd-f4', kernel: null },
];

describe('convBatchNorm2d forced through every forward variant', () => {
  // Bias without residual, residual without bias: every epilogue flag, with and without ReLU.
  const checks = [record.checks[0]!, record.checks[3]!];
  const cases = checks.flatMap((check, j) => check.cases(new Rng(500 + j)).map((c) => ({ check, c })));
  // The float64 references (values and central-difference gradients of sum(y * dy)) once per case.
  const refs = cases.map(({ check, c }) => {
    const y = check.ref(c.inputs, c.args);
    const dy = new Rng(9).arr(y.shape, -1, 1);
    const dot = (xs: R.Arr[]) => check.ref(xs, c.args).data.reduce((s, v, i) => s + v * dy.data[i]!, 0);
    const which = check.gradInputs!;
    const numeric = R.numericGrad(dot, c.inputs.map((a) => ({ shape: a.shape, data: a.data.slice() })));
    return { y, dy, which, numeric };
  });
  for (const way of WAYS) {
    it(`${way.name}: values and gradients of the record's cases against float64`, async () => {
      for (const [n, { check, c }] of cases.entries()) {
        const { y: ref, dy, which, numeric } = refs[n]!;
        policy().force(CONV_ALGORITHM.name, way.algorithm);
        policy().force(CONV_FORWARD.name, way.kernel);
        const [ts, labels] = labelsOf(() => E.tidy(() => {
          const xs = c.inputs.map((a, i) => toTensor(a, which.includes(i)));
          const y = check.run!(record.fn, xs, c.args);
          return [y, ...E.grad(E.sum(E.mul(y, toTensor(dy))), which.map((i) => xs[i]!)).map((g) => g!)];
        }));
        unforce();
        const what = `${way.name} ${c.label}`;
        const o = c.args[0] as E.ConvBatchNormOptions;
        // The kernel the convolution runs: cropped to the taps that meet the map (conv-crop.ts).
        const [xs, ws] = [c.inputs[0]!.shape, c.inputs[1]!.shape];
        const full = { N: xs[0]!, Cin: xs[1]!, H: xs[2]!, W: xs[3]!, Cout: ws[0]!, KH: ws[2]!, KW: ws[3]!, ...windowGeometry(xs, ws[2]!, ws[3]!, o.stride ?? 1, o.padding ?? 'valid', 'test') };
        const run = cropTaps(full)?.g ?? full;
        const wino = way.algorithm !== 'direct' && run.KH === 3 && run.KW === 3 && run.sh === 1 && run.sw === 1;
        // The forward ran as one convolution on the forced algorithm (Winograd where it serves).
        expect(labels.filter((l) => l.includes('wino_output')).length > 0, what).toBe(wino);
        expect(labels.filter((l) => l.startsWith('convBatchNorm2d fold')).length, what).toBe(1);
        expectClose(await ts[0]!.data(), ts[0]!.shape, ref, check.tol!, `${what} forward`);
        for (const [k, i] of which.entries()) expectClose(await ts[k + 1]!.data(), ts[k + 1]!.shape, numeric[i]!, check.grad as Tol, `${what} d/d input ${i}`);
        E.dispose(ts);
      }
    });
  }

  it('the epilogue keeps NaN through ReLU (as relu), and conv2d\'s bias-only epilogue is unchanged', async () => {
    const x = E.tensor(Float32Array.from([NaN, 1, -1, 2]), [1, 1, 2, 2]);
    const w = E.tensor(Float32Array.from([1]), [1, 1, 1, 1]);
    const one = E.tensor(Float32Array.from([1]), [1]), zero = E.tensor(Float32Array.from([0]), [1]);
    const y = E.convBatchNorm2d(x, w, null, one, zero, zero, one, null, { relu: true, eps: 0 });
    expect([...await y.data()]).toEqual([NaN, 1, 0, 2]);
    E.dispose([x, w, one, zero, y]);
  });
});

// ---- Folded layers against the unfused composition --------------------------------------

/** Random batch-norm statistics and affine parameters (the default ones fold to identity). */
function randomizeBatchNorms(model: Module, seed: number): void {
  const r = new Rng(seed);
  const state: Record<string, E.Tensor> = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    const [lo, hi] = name.endsWith('running_var') ? [0.5, 2] : name.endsWith('running_mean') ? [-0.3, 0.3]
      : name.endsWith('bn.weight') ? [0.5, 1.5] : name.endsWith('bias') ? [-0.3, 0.3] : [NaN, NaN];
    if (!Number.isNaN(lo)) state[name] = toTensor(r.arr([...t.shape], lo, hi));
  }
  model.loadStateDict(state, { strict: false });
  E.dispose(Object.values(state));
}

interface Pass { y: Float32Array; dx: Float32Array; dparams: Float32Array[]; ops: string[] }
/** Output, gradient of sum(y * dy) w.r.t. the input (and the parameters, when asked) of f. */
async function pass(f: (x: E.Tensor) => E.Tensor, x: R.Arr, params: E.Tensor[], seed: number): Promise<Pass> {
  const [ts, labels] = labelsOf(() => E.tidy(() => {
    const xt = toTensor(x, true);
    const y = f(xt);
    const dy = toTensor(new Rng(seed).arr([...y.shape], -1, 1));
    return [y, ...E.grad(E.sum(E.mul(y, dy)), [xt, ...params]).map((g) => g!)];
  }));
  const data = (await Promise.all(ts.map((t) => t.data()))) as Float32Array[];
  E.dispose(ts);
  return { y: data[0]!, dx: data[1]!, dparams: data.slice(2), ops: labels };
}

/** max |a - b| / max |b|: the fused path's error relative to the unfused one's scale. */
function relErr(a: Float32Array, b: Float32Array): number {
  let d = 0, s = 0;
  for (let i = 0; i < b.length; i++) { d = Math.max(d, Math.abs(a[i]! - b[i]!)); s = Math.max(s, Math.abs(b[i]!)); }
  return d / s;
}

/**
 * Fused vs unfused (eval mode) for f: values and input gradient within `tol` relative to each
 * one's largest magnitude (both are float32 computations of the same function; the folded
 * weights round once more, and Winograd may serve one and not the other's layers), parameter
 * gradients too when `params` are given.
 */
async function compare(model: Module, f: (x: E.Tensor) => E.Tensor, x: R.Arr, tol: number, params: E.Tensor[] = []): Promise<number[]> {
  model.eval();
  setFoldBatchNorm(model, true);
  const fused = await pass(f, x, params, 3);
  setFoldBatchNorm(model, false);
  const plain = await pass(f, x, params, 3);
  setFoldBatchNorm(model, true);
  expect(fused.ops.some((l) => l.startsWith('convBatchNorm2d'))).toBe(true);
  expect(plain.ops.some((l) => l.startsWith('convBatchNorm2d') || l.includes('fold'))).toBe(false);
  const errs = [relErr(fused.y, plain.y), relErr(fused.dx, plain.dx), ...fused.dparams.map((g, i) => relErr(g, plain.dparams[i]!))];
  errs.forEach((e, i) => expect(e, `${i === 0 ? 'output' : i === 1 ? 'input gradient' : `parameter gradient ${i - 2}`}: ${e}`).toBeLessThan(tol));
  return errs;
}

describe('eval-mode folded conv-BN layers against the unfused composition', () => {
  type Net = ReturnType<typeof createModel> & { stem: Module; layer1: { layers: Module[] }; layer2: { layers: Module[] } };
  let resnet: Net, net: Net;
  const x = new Rng(5).arr([2, 3, 12, 12], 0, 1);
  beforeAll(async () => {
    await gpu();
    net = resnet = createModel('resnet8', { imageSize: 12, smallInput: true, inChannels: 3, classes: 3, seed: 1 }) as Net;
    randomizeBatchNorms(resnet, 11);
  });
  afterAll(() => resnet.dispose());

  it('a ConvBN layer (conv-BN-ReLU, the stem): values, input and parameter gradients', async () => {
    const errs = await compare(resnet, (t) => net.stem.forward(t), x, 1e-5, net.stem.parameters());
    console.log('ConvBN stem, relative errors (y, dx, dparams):', errs.map((e) => e.toExponential(1)).join(' '));
  });

  it('ResNet basic blocks (identity shortcut; 1x1 stride-2 shortcut): values, input and parameter gradients', async () => {
    const h = new Rng(6).arr([1, 16, 12, 12], 0, 1);
    for (const block of [net.layer1.layers[0]!, net.layer2.layers[0]!]) {
      const errs = await compare(resnet, (t) => block.forward(t), h, 1e-5, block.parameters());
      console.log('basic block, relative errors (y, dx, dparams):', errs.map((e) => e.toExponential(1)).join(' '));
    }
  });

  it('ResNet-8 (12 px, batch 2): logits, input gradient and every parameter gradient', async () => {
    const errs = await compare(resnet, (t) => resnet.forward(t), x, 1e-4, resnet.parameters());
    console.log(`ResNet-8 relative errors: logits ${errs[0]!.toExponential(1)}, input gradient ${errs[1]!.toExponential(1)}, parameters max ${Math.max(...errs.slice(2)).toExponential(1)}`);
  });

  it('CBR-LargeT small-input (9 px, batch 1): logits and input gradient', async () => {
    const cbr = createModel('cbr-larget', { imageSize: 9, smallInput: true, inChannels: 1, classes: 2, seed: 2 });
    randomizeBatchNorms(cbr, 12);
    cbr.requiresGrad_(false);
    try {
      const errs = await compare(cbr, (t) => cbr.forward(t), new Rng(7).arr([1, 1, 9, 9], 0, 1), 1e-4);
      console.log(`CBR-LargeT relative errors: logits ${errs[0]!.toExponential(1)}, input gradient ${errs[1]!.toExponential(1)}`);
    } finally { cbr.dispose(); }
  });

  it('training mode runs the unfused ops, unchanged', async () => {
    resnet.train();
    const [y, labels] = labelsOf(() => E.noGrad(() => E.tidy(() => resnet.forward(toTensor(x)))));
    expect(labels.some((l) => l.startsWith('convBatchNorm2d'))).toBe(false);
    y.dispose();
    resnet.eval();
  });
});
