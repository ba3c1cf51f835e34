// Winograd convolution (engine/ops/conv-winograd.ts) forced through the variant registry: the
// conv2d record's own cases, stride-1 3x3 layers of odd sizes (forward, input and weight
// gradients against exact float64 references), the registry's rules for algorithm choices, and
// the float32 accuracy of each algorithm on the study's ResNet layer shapes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import * as R from '../engine/reference/float64.js';
import { Rng, type Tol } from '../engine/reference/check.js';
import type { DispatchObserver } from '../engine/kernels/runtime.js';
import { CONV_ALGORITHM, CONV_WEIGHT_GRAD_ALGORITHM, type Geometry } from '../engine/ops/conv.js';
import { expectClose, gpu, toTensor } from './helpers/setup.js';

beforeAll(gpu);
const ALGORITHMS = ['direct', 'winograd-f2', 'winograd-f4'] as const;
const force = (v: string | null) => {
  E.getEngine().policy.force(CONV_ALGORITHM.name, v);
  E.getEngine().policy.force(CONV_WEIGHT_GRAD_ALGORITHM.name, v);
};
afterAll(() => force(null));

/** Dispatch labels recorded while fn runs (to see which algorithm actually ran), and the FLOPs they report by op. */
async function labelsOf<T>(fn: () => Promise<T>): Promise<[T, string[], Map<string, number>]> {
  const seen: string[] = [];
  const flops = new Map<string, number>();
  const o: DispatchObserver = {
    beforeDispatch: () => undefined, beforeSubmit: () => {}, afterSubmit: () => {},
    afterDispatch: (s) => { seen.push(s.label); flops.set(s.op, (flops.get(s.op) ?? 0) + (s.flops ?? 0)); return false; },
  };
  const stop = E.getEngine().runtime.observe(o);
  try { return [await fn(), seen, flops]; } finally { stop(); }
}

type Pads = [number, number, number, number];
/** Exact float64 gradients of sum(conv2d(x, w) * dy) (stride 1), from the shared reference. */
const refGrads = (x: R.Arr, w: R.Arr, dy: R.Arr, pads: Pads): { dx: R.Arr; dw: R.Arr } =>
  ({ dx: R.conv2dInputGrad(dy, w, x.shape, 1, 1, pads), dw: R.conv2dWeightGrad(dy, x, w.shape, 1, 1, pads) });

interface Run { y: Float32Array; dx: Float32Array; dw: Float32Array; labels: string[]; flops: Map<string, number> }
/** conv2d forward and both gradients (loss = sum(y * dy)) on the GPU with the algorithm forced. */
async function runConv(alg: string, x: R.Arr, w: R.Arr, b: R.Arr | null, dy: R.Arr, padding: E.Conv2dOptions['padding']): Promise<Run> {
  force(alg);
  try {
    const [[y, dx, dw], labels, flops] = await labelsOf(async () => {
      const ts = E.tidy(() => {
        const xt = toTensor(x, true), wt = toTensor(w, true);
        const out = E.conv2d(xt, wt, b ? toTensor(b) : undefined, { padding });
        const [gx, gw] = E.grad(E.sum(E.mul(out, toTensor(dy))), [xt, wt]);
        return [out, gx!, gw!];
      });
      const data = await Promise.all(ts.map((t) => t.data()));
      E.dispose(ts);
      return data as [Float32Array, Float32Array, Float32Array];
    });
    return { y, dx, dw, labels, flops };
  } finally { force(null); }
}

const conv2dRecord = E.OPS.find((o) => o.name === 'conv2d')!;
const check = conv2dRecord.checks[0]!;
const FWD: Tol = check.tol!;
const GRAD: Tol = check.grad as Tol;

describe('conv2d algorithms forced through the registry', () => {
  for (const alg of ALGORITHMS) {
    it(`${alg}: the conv2d record's cases (forward and float64 finite-difference gradients)`, async () => {
      const cases = check.cases(new Rng(4242));
      for (const c of cases) {
        const [x, w, b] = c.inputs;
        const dy = new Rng(7).arr(check.ref(c.inputs, c.args).shape, -1, 1);
        force(alg);
        const ts = E.tidy(() => {
          const xt = toTensor(x!, true), wt = toTensor(w!, true);
          const y = E.conv2d(xt, wt, b ? toTensor(b) : undefined, c.args[0] as E.Conv2dOptions);
          return [y, ...E.grad(E.sum(E.mul(y, toTensor(dy))), [xt, wt]).map((g) => g!)];
        });
        force(null);
        expectClose(await ts[0]!.data(), ts[0]!.shape, check.ref(c.inputs, c.args), FWD, `${alg} ${c.label}`);
        const dot = (xs: R.Arr[]) => check.ref([...xs, ...(b ? [b] : [])], c.args).data.reduce((s, v, i) => s + v * dy.data[i]!, 0);
        const numeric = R.numericGrad(dot, [x!, w!].map((a) => ({ shape: a.shape, data: a.data.slice() })));
        for (const i of [0, 1]) expectClose(await ts[i + 1]!.data(), ts[i + 1]!.shape, numeric[i]!, GRAD, `${alg} d/d input ${i} ${c.label}`);
        E.dispose(ts);
      }
    });
  }

  // Odd sizes (not multiples of the tile), batch 1, channel counts not multiples of 4, every padding,
  // and a larger kernel that only its 3x3 centre serves.
  const shapes: Array<[number[], number[], E.Conv2dOptions['padding'], Pads]> = [
    [[1, 3, 7, 9], [5, 3, 3, 3], 'same', [1, 1, 1, 1]],
    [[2, 5, 11, 6], [3, 5, 3, 3], 'valid', [0, 0, 0, 0]],
    [[3, 6, 5, 13], [7, 6, 3, 3], [2, 0, 1, 2], [2, 0, 1, 2]],
    [[1, 1, 3, 3], [2, 1, 3, 3], 'same', [1, 1, 1, 1]],
    [[2, 9, 10, 10], [6, 9, 3, 3], 'same', [1, 1, 1, 1]],
    // A 7x7 layer on a 2x2 map: cropped to its centre 3x3 taps (conv-crop.ts), then Winograd.
    [[2, 5, 2, 2], [6, 5, 7, 7], 'same', [3, 3, 3, 3]],
  ];
  it('every algorithm reports the direct convolution\'s FLOPs for the forward and both gradients (profiles stay comparable)', async () => {
    const rng = new Rng(5);
    const x = rng.arr([2, 9, 10, 11], -1, 1), w = rng.arr([6, 9, 3, 3], -1, 1);
    const dy = rng.arr([2, 6, 10, 11], -1, 1);
    const direct = 2 * 2 * 6 * 10 * 11 * 9 * 9; // each of y, dx and dw: 2 N Cout OH OW Cin KH KW
    for (const alg of ALGORITHMS) {
      const run = await runConv(alg, x, w, null, dy, 'same');
      if (alg !== 'direct') expect(run.labels.some((l) => l.includes('F(')), alg).toBe(true);
      const conv = [...run.flops].filter(([op]) => op.startsWith('conv2d'));
      expect(Object.fromEntries(conv), alg).toEqual({ conv2d: direct, 'conv2d.dx': direct, 'conv2d.dw': direct });
    }
  });

  for (const alg of ALGORITHMS.slice(1)) {
    it(`${alg}: forward, input and weight gradients of stride-1 3x3 (and cropped 7x7) layers against float64`, async () => {
      const rng = new Rng(99);
      for (const [xs, ws, padding, pads] of shapes) {
        const x = rng.arr(xs, -1, 1), w = rng.arr(ws, -1, 1), b = rng.arr([ws[0]!], -1, 1);
        const ref = R.conv2d(x, w, b, 1, 1, pads);
        const dy = rng.arr(ref.shape, -1, 1);
        const got = await runConv(alg, x, w, b, dy, padding);
        const what = `${alg} [${xs}] * [${ws}] padding ${JSON.stringify(padding)}`;
        // Every pass ran as Winograd: forward, input gradient and weight gradient.
        expect(got.labels.filter((l) => l.includes('wino_output')).length, what).toBe(2);
        expect(got.labels.filter((l) => l.includes('wino_grad_weight')).length, what).toBe(1);
        const { dx, dw } = refGrads(x, w, dy, pads);
        expectClose(got.y, ref.shape, ref, FWD, `${what} forward`);
        expectClose(got.dx, dx.shape, dx, GRAD, `${what} input gradient`);
        expectClose(got.dw, dw.shape, dw, GRAD, `${what} weight gradient`);
      }
    });
  }

  it('never picks Winograd where it does not serve (stride 2, 5x5), even when forced', () => {
    const g = (KH: number, sh: number): Geometry => ({ N: 1, Cin: 4, H: 9, W: 9, Cout: 4, KH, KW: KH, OH: 9, OW: 9, sh, sw: sh, pt: 1, pb: 1, pl: 1, pr: 1 });
    const p = E.getEngine().policy;
    expect(p.candidates(CONV_ALGORITHM, g(3, 1)).map((v) => v.name)).toEqual([...ALGORITHMS]);
    expect(p.candidates(CONV_ALGORITHM, g(3, 2)).map((v) => v.name)).toEqual(['direct']);
    expect(p.candidates(CONV_WEIGHT_GRAD_ALGORITHM, g(5, 1)).map((v) => v.name)).toEqual(['direct']);
    // A layer whose transformed tensors would pass WebGPU's default binding limit stays direct.
    expect(p.candidates(CONV_ALGORITHM, { ...g(3, 1), N: 64, Cin: 256, Cout: 256, H: 128, W: 128, OH: 128, OW: 128 }).map((v) => v.name)).toEqual(['direct']);
    p.force(CONV_ALGORITHM.name, 'winograd-f4');
    try {
      expect(p.pick(CONV_ALGORITHM, g(3, 2)).name).toBe('direct');
      expect(p.pick(CONV_ALGORITHM, g(3, 1)).name).toBe('winograd-f4');
    } finally { p.force(CONV_ALGORITHM.name, null); }
  });
});

/** Worst error over the elements: max |err|, max |err| / max |ref|, and the share of the op tests' tolerance used. */
function errors(got: Float32Array, ref: R.Arr, tol: Tol): [number, number, number] {
  let abs = 0, scale = 0, used = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i]! - ref.data[i]!);
    abs = Math.max(abs, e);
    scale = Math.max(scale, Math.abs(ref.data[i]!));
    used = Math.max(used, e / (tol.atol + tol.rtol * Math.abs(ref.data[i]!)));
  }
  return [abs, abs / scale, used];
}

describe('float32 accuracy on the study\'s ResNet layers (3x3 same, He-initialised weights)', () => {
  // [channels, image size]: ResNet stages at 64 px and 28 px input (16, 32, 64 channels).
  const layers: Array<[number, number]> = [[16, 64], [32, 32], [64, 16], [16, 28], [32, 14], [64, 7]];
  it('every algorithm stays within conv2d\'s op-test tolerance', async () => {
    const rows: string[] = [];
    const worst: Array<[string, number]> = [];
    const rng = new Rng(2024);
    for (const batch of [1, 8]) {
      for (const [C, S] of layers) {
        // Activations of a batch-normalised layer (roughly unit scale) and He-initialised weights.
        const x = rng.arr([batch, C, S, S], -1.7, 1.7);
        const std = Math.sqrt(2 / (9 * C));
        const w = rng.arr([C, C, 3, 3], -std * Math.sqrt(3), std * Math.sqrt(3));
        const ref = R.conv2d(x, w, null, 1, 1, [1, 1, 1, 1]);
        const dy = rng.arr(ref.shape, -1e-2, 1e-2); // a loss gradient of batch-mean scale
        const { dx, dw } = refGrads(x, w, dy, [1, 1, 1, 1]);
        for (const alg of ALGORITHMS) {
          const got = await runConv(alg, x, w, null, dy, 'same');
          const e = [errors(got.y, ref, FWD), errors(got.dx, dx, GRAD), errors(got.dw, dw, GRAD)];
          rows.push(`${batch}x${C}x${S}x${S} ${alg.padEnd(11)} ${e.map(([a, r, u]) => `${a.toExponential(1)} ${r.toExponential(1)} ${(100 * u).toFixed(0).padStart(3)}%`).join(' | ')}`);
          worst.push([rows.at(-1)!, Math.max(...e.map(([, , u]) => u))]);
        }
      }
    }
    console.log(`layer           algorithm   forward: max abs, /max|ref|, tol used | input gradient | weight gradient\n${rows.join('\n')}`);
    for (const [row, u] of worst) expect(u, row).toBeLessThanOrEqual(1);
  }, 600_000);
});
