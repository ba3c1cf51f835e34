// CNN kernels beyond the op table's small cases: every layer configuration of CBR-LargeT and
// the ResNets (protocol.md) at reduced spatial size, channel counts that are not multiples of
// the tiles, both strides and every padding mode, with gradients from an independent float64
// adjoint; batch-norm running statistics; stability of the fused cross-entropy.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { expectClose, gpu, Rng, toTensor } from './helpers/setup.js';

beforeAll(gpu);

/** Adjoint of reference conv2d: gradients of sum(conv(x, w, b) * dy). */
function convBackward(x: R.Arr, w: R.Arr, dy: R.Arr, sh: number, sw: number, pads: [number, number, number, number]) {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const [Co, , KH, KW] = w.shape as [number, number, number, number];
  const [OH, OW] = dy.shape.slice(2) as [number, number];
  const dx = new Float64Array(x.data.length), dw = new Float64Array(w.data.length), db = new Float64Array(Co);
  for (let n = 0; n < N; n++) for (let o = 0; o < Co; o++) for (let i = 0; i < OH; i++) for (let j = 0; j < OW; j++) {
    const g = dy.data[((n * Co + o) * OH + i) * OW + j]!;
    db[o] = db[o]! + g;
    for (let c = 0; c < C; c++) for (let u = 0; u < KH; u++) for (let v = 0; v < KW; v++) {
      const ih = i * sh - pads[0]! + u, iw = j * sw - pads[2]! + v;
      if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
      const xi = ((n * C + c) * H + ih) * W + iw, wi = ((o * C + c) * KH + u) * KW + v;
      dx[xi] = dx[xi]! + g * w.data[wi]!;
      dw[wi] = dw[wi]! + g * x.data[xi]!;
    }
  }
  return { dx: { shape: x.shape, data: dx }, dw: { shape: w.shape, data: dw }, db: { shape: [Co], data: db } };
}

interface ConvCase { name: string; x: number[]; w: number[]; stride: number; padding: 'valid' | 'same' }

// Layer configurations of the study's models (protocol.md) at reduced spatial size.
const MODEL_LAYERS: ConvCase[] = [
  { name: 'CBR-LargeT block 1 (3->32, 7x7 valid)', x: [2, 3, 15, 15], w: [32, 3, 7, 7], stride: 1, padding: 'valid' },
  { name: 'CBR-LargeT block 2 (32->64)', x: [1, 32, 11, 11], w: [64, 32, 7, 7], stride: 1, padding: 'valid' },
  { name: 'CBR-LargeT block 3 (64->128)', x: [1, 64, 9, 9], w: [128, 64, 7, 7], stride: 1, padding: 'valid' },
  { name: 'CBR-LargeT block 4 (128->256)', x: [1, 128, 8, 8], w: [256, 128, 7, 7], stride: 1, padding: 'valid' },
  { name: 'CBR-LargeT block 5 (256->512)', x: [1, 256, 7, 7], w: [512, 256, 7, 7], stride: 1, padding: 'valid' },
  { name: 'ResNet stem (3->16, 3x3 same)', x: [2, 3, 16, 16], w: [16, 3, 3, 3], stride: 1, padding: 'same' },
  { name: 'ResNet stage 1 (16->16)', x: [2, 16, 16, 16], w: [16, 16, 3, 3], stride: 1, padding: 'same' },
  { name: 'ResNet stage 2 entry (16->32, stride 2, even size)', x: [2, 16, 16, 16], w: [32, 16, 3, 3], stride: 2, padding: 'same' },
  { name: 'ResNet stage 2 projection (1x1, stride 2)', x: [2, 16, 16, 16], w: [32, 16, 1, 1], stride: 2, padding: 'same' },
  { name: 'ResNet stage 2 (32->32)', x: [2, 32, 8, 8], w: [32, 32, 3, 3], stride: 1, padding: 'same' },
  { name: 'ResNet stage 3 entry (32->64, stride 2)', x: [2, 32, 8, 8], w: [64, 32, 3, 3], stride: 2, padding: 'same' },
  { name: 'ResNet stage 3 projection (1x1, stride 2)', x: [2, 32, 8, 8], w: [64, 32, 1, 1], stride: 2, padding: 'same' },
  { name: 'ResNet stage 3 (64->64)', x: [2, 64, 4, 4], w: [64, 64, 3, 3], stride: 1, padding: 'same' },
];

// Odd sizes, tails of every tile, batch 1, odd input to a stride-2 'same' layer.
const ODD: ConvCase[] = [
  { name: 'odd channels and sizes', x: [3, 13, 11, 13], w: [19, 13, 3, 3], stride: 1, padding: 'same' },
  { name: 'stride 2 same on odd size', x: [1, 5, 13, 9], w: [9, 5, 3, 3], stride: 2, padding: 'same' },
  { name: 'stride 2 valid, 5x5', x: [2, 7, 12, 17], w: [6, 7, 5, 5], stride: 2, padding: 'valid' },
  { name: '7x7 same', x: [1, 2, 10, 9], w: [3, 2, 7, 7], stride: 1, padding: 'same' },
];

describe('conv2d at model layer configurations (float64 reference and adjoint)', () => {
  for (const c of [...MODEL_LAYERS, ...ODD]) {
    it(c.name, async () => {
      const r = new Rng(c.x.reduce((a, b) => a * 31 + b, 7));
      const x = r.arr(c.x, -1, 1), w = r.arr(c.w, -0.5, 0.5), b = r.arr([c.w[0]!], -1, 1);
      const pads: [number, number, number, number] = c.padding === 'same' ? R.tfSamePads(c.x[2]!, c.x[3]!, c.w[2]!, c.w[3]!, c.stride, c.stride) : [0, 0, 0, 0];
      const yRef = R.conv2d(x, w, b, c.stride, c.stride, pads);
      const dy = r.arr(yRef.shape, -1, 1);
      const ref = convBackward(x, w, dy, c.stride, c.stride, pads);
      const K = c.w[1]! * c.w[2]! * c.w[3]!;
      const tol = { atol: 1e-5 * Math.sqrt(K), rtol: 1e-4 };
      const out = E.tidy(() => {
        const X = toTensor(x, true), Wt = toTensor(w, true), B = toTensor(b, true);
        const y = E.conv2d(X, Wt, B, { stride: c.stride, padding: c.padding });
        const [gx, gw, gb] = E.grad(E.sum(E.mul(y, toTensor(dy))), [X, Wt, B]);
        return { y, gx: gx!, gw: gw!, gb: gb! };
      });
      expectClose(await out.y.data(), out.y.shape, yRef, tol, 'forward');
      expectClose(await out.gx.data(), out.gx.shape, ref.dx, tol, 'd input');
      expectClose(await out.gw.data(), out.gw.shape, ref.dw, { atol: 1e-5 * Math.sqrt(c.x[0]! * yRef.shape[2]! * yRef.shape[3]!) * 4, rtol: 1e-4 }, 'd weight');
      expectClose(await out.gb.data(), out.gb.shape, ref.db, { atol: 1e-4, rtol: 1e-4 }, 'd bias');
      E.dispose(out);
    });
  }
});

describe('pooling at the models\' configurations', () => {
  const cases: Array<[string, number[], 'max' | 'avg', number, number]> = [
    ['CBR-LargeT max pool 3x3 stride 2 (odd size)', [2, 8, 15, 15], 'max', 3, 2],
    ['CBR-LargeT max pool 3x3 stride 2 (even size)', [1, 4, 14, 14], 'max', 3, 2],
    ['ResNet head average pool 8', [2, 4, 16, 16], 'avg', 8, 8],
  ];
  for (const [name, shape, kind, k, s] of cases) {
    it(name, async () => {
      const r = new Rng(shape.length + k);
      const x = r.arr(shape);
      const y = E.tidy(() => (kind === 'max' ? E.maxPool2d : E.avgPool2d)(toTensor(x), k, { stride: s }));
      expectClose(await y.data(), y.shape, R.pool2d(x, kind, k, k, s, s, [0, 0, 0, 0]), { atol: 1e-6, rtol: 1e-5 }, name);
      y.dispose();
    });
  }

  it('global average pooling', async () => {
    const r = new Rng(3);
    const x = r.arr([3, 5, 7, 9]);
    const y = E.tidy(() => E.globalAvgPool2d(toTensor(x)));
    expectClose(await y.data(), y.shape, R.mean(x, [2, 3]), { atol: 1e-6, rtol: 1e-5 }, 'gap');
    y.dispose();
  });
});

describe('batchNorm2d', () => {
  it('updates running statistics with momentum and the unbiased variance (Keras defaults)', async () => {
    const r = new Rng(11);
    const x = r.arr([4, 3, 5, 6], -2, 3);
    const rm0 = r.arr([3], -0.5, 0.5), rv0 = r.arr([3], 0.5, 2);
    const rm = toTensor(rm0), rv = toTensor(rv0);
    const y = E.tidy(() => E.batchNorm2d(toTensor(x), E.ones([3]), E.zeros([3]), rm, rv, { training: true, ...E.KERAS_BATCHNORM }));
    const ref = R.batchNorm(x, R.arr([3], [1, 1, 1]), R.arr([3], [0, 0, 0]), 1e-3);
    const M = 4 * 5 * 6;
    const m = E.KERAS_BATCHNORM.momentum;
    expectClose(await y.data(), y.shape, ref.y, { atol: 2e-5, rtol: 1e-4 }, 'normalised');
    expectClose(await rm.data(), rm.shape, R.arr([3], ref.mean.map((mu, c) => (1 - m) * rm0.data[c]! + m * mu)), { atol: 1e-6, rtol: 1e-5 }, 'running mean');
    expectClose(await rv.data(), rv.shape, R.arr([3], ref.varBiased.map((v, c) => (1 - m) * rv0.data[c]! + m * v * M / (M - 1))), { atol: 1e-6, rtol: 1e-5 }, 'running var');
    E.dispose([y, rm, rv]);
  });

  it('leaves running statistics alone in inference mode', async () => {
    const rm = E.tensor([0.5, -1]), rv = E.tensor([2, 0.25]);
    E.tidy(() => E.batchNorm2d(E.randn([2, 2, 3, 3]), E.ones([2]), E.zeros([2]), rm, rv, { training: false }));
    expect(Array.from(await rm.data())).toEqual([0.5, -1]);
    expect(Array.from(await rv.data())).toEqual([2, 0.25]);
    E.dispose([rm, rv]);
  });

  it('refuses a weight that does not match the channels', () => {
    expect(() => E.batchNorm2d(E.zeros([1, 3, 2, 2]), E.ones([2]), E.zeros([3]), E.zeros([3]), E.ones([3]))).toThrow(/weight of shape \[2\] does not match the 3 channels of input \[1, 3, 2, 2\]/);
  });
});

describe('fused cross-entropy', () => {
  it('is stable for very large logits, with labels and with probability targets', async () => {
    const logits = E.tensor([[1000, -1000, 0], [-500, 500, 499]]);
    const l1 = await E.crossEntropyPerSample(logits, E.tensor(Int32Array.from([0, 2]), [2])).data();
    const l2 = await E.crossEntropyPerSample(logits, E.tensor([[0, 0, 1], [0, 0.5, 0.5]])).data();
    expect(l1[0]).toBeCloseTo(0, 5);
    expect(l1[1]).toBeCloseTo(1 + Math.log(1 + Math.exp(-1)), 4);
    expect(l2[0]).toBeCloseTo(1000, 2);
    expect(l2[1]).toBeCloseTo(0.5 * Math.log(1 + Math.exp(-1)) + 0.5 * (1 + Math.log(1 + Math.exp(-1))), 4);
  });

  it('rejects mismatched probability targets and bad geometry', () => {
    expect(() => E.crossEntropy(E.zeros([2, 3]), E.zeros([2, 4]))).toThrow(/probability targets of shape \[2, 4\] do not match logits of shape \[2, 3\]/);
    expect(() => E.conv2d(E.zeros([1, 3, 4, 4]), E.zeros([2, 4, 3, 3]))).toThrow(/input \[1, 3, 4, 4\] has 3 channels but weight \[2, 4, 3, 3\] expects 4/);
    expect(() => E.conv2d(E.zeros([1, 3, 4, 4]), E.zeros([2, 3, 7, 7]))).toThrow(/a 7x7 window does not fit input \[1, 3, 4, 4\]/);
    expect(() => E.conv2d(E.zeros([3, 4, 4]), E.zeros([2, 3, 3, 3]))).toThrow(/input must be NCHW \(rank 4\), got shape \[3, 4, 4\]/);
    expect(() => E.maxPool2d(E.zeros([1, 1, 4, 4]), 2, { padding: 2 })).toThrow(/padding must be smaller than the 2x2 window/);
    expect(() => E.conv2d(E.zeros([1, 3, 4, 4]), E.zeros([2, 3, 3, 3]), undefined, { stride: 0 })).toThrow(/stride must be a positive integer/);
  });
});
