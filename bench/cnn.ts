// CNN workloads: the peer comparison shape, the ResNet stage convolutions (batch 32 at 56, 28
// and 14 px), CBR-LargeT's 7x7 layers that fit a 64 px input (64 -> 58, pool 28 -> 22, pool
// 10 -> 4), forward and forward+backward (counted as three forwards' work), and batch norm /
// max pool / average pool forward+backward (medgrad only), each given its output's gradient as
// the convolutions are (no loss reduction or broadcast timed with the layer).
import * as E from '../engine/node.js';
import type { Workload } from './harness.js';
import type { ConvSpec, Driver } from './drivers.js';

const convFlops = (c: ConvSpec, oh: number, ow: number) => 2 * c.x[0]! * c.w[0]! * oh * ow * c.w[1]! * c.w[2]! * c.w[3]!;
const label = (c: ConvSpec) => `${c.x.join('x')}-${c.w[0]}x${c.w[2]}x${c.w[3]}${c.stride > 1 ? `s${c.stride}` : ''}`;

export function convShapes(quick: boolean): ConvSpec[] {
  const peer: ConvSpec = { x: [8, 32, 56, 56], w: [64, 32, 3, 3], stride: 1, padding: 'same' };
  if (quick) return [{ x: [2, 16, 28, 28], w: [32, 16, 3, 3], stride: 1, padding: 'same' }];
  return [
    peer,
    { x: [32, 16, 56, 56], w: [16, 16, 3, 3], stride: 1, padding: 'same' },
    { x: [32, 32, 28, 28], w: [32, 32, 3, 3], stride: 1, padding: 'same' },
    { x: [32, 64, 14, 14], w: [64, 64, 3, 3], stride: 1, padding: 'same' },
    // A ResNet stage's first layer (stride 2): its input gradient is the phase decomposition.
    { x: [32, 16, 56, 56], w: [32, 16, 3, 3], stride: 2, padding: 'same' },
    { x: [8, 3, 64, 64], w: [32, 3, 7, 7], stride: 1, padding: 'valid' },
    { x: [8, 32, 28, 28], w: [64, 32, 7, 7], stride: 1, padding: 'valid' },
    { x: [8, 64, 10, 10], w: [128, 64, 7, 7], stride: 1, padding: 'valid' },
  ];
}

export function cnnWorkloads(d: Driver, shapes: ConvSpec[], opts: { fwdbwd: boolean }): Workload[] {
  const out: Workload[] = [];
  for (const c of shapes) {
    const [oh, ow] = E.conv2dOutputSize(c.x, [c.w[2]!, c.w[3]!], c);
    const flops = convFlops(c, oh, ow);
    let inputs: unknown[] = [];
    const setup = async () => { inputs = await d.convInputs(c); };
    const teardown = () => { for (const h of inputs) d.dispose(h); };
    out.push({
      name: `conv2d.fwd/${label(c)}`, unit: 'GFLOP/s', work: flops, impl: d.impl, setup, teardown,
      run: async () => { const y = d.conv(c, inputs[0], inputs[1]); await d.sync(y); d.dispose(y); },
    });
    if (opts.fwdbwd) {
      out.push({
        name: `conv2d.fwdbwd/${label(c)}`, unit: 'GFLOP/s', work: 3 * flops, impl: d.impl, setup, teardown,
        run: async () => {
          const outs = d.convGrads(c, inputs[0], inputs[1], inputs[2]);
          for (const o of outs) await d.sync(o); // every output, so lazy libraries compute them all
          for (const o of outs) d.dispose(o);
        },
      });
    }
  }
  return out;
}

/**
 * Batch norm (training), forward + backward, max and average 3x3/2 pools on one activation
 * shape, medgrad only (`pools`: also the pools).
 */
function layersOn(shape: number[], pools: boolean): Workload[] {
  const n = shape.reduce((a, b) => a * b, 1);
  const pooled = [shape[0]!, shape[1]!, Math.floor((shape[2]! - 3) / 2) + 1, Math.floor((shape[3]! - 3) / 2) + 1];
  let x: E.Tensor, g: E.Tensor, b: E.Tensor, rm: E.Tensor, rv: E.Tensor, dy: E.Tensor, dyPooled: E.Tensor;
  const setup = () => {
    x = E.randn(shape, { requiresGrad: true }); g = E.ones([shape[1]!], { requiresGrad: true }); b = E.zeros([shape[1]!], { requiresGrad: true }); rm = E.zeros([shape[1]!]); rv = E.ones([shape[1]!]);
    dy = E.randn(shape); dyPooled = E.randn(pooled);
  };
  const teardown = () => E.dispose([x, g, b, rm, rv, dy, dyPooled]);
  const fb = (f: () => E.Tensor, gy: () => E.Tensor) => async () => { E.tidy(() => { const y = f(); E.grad(y, [x], gy()); }); await E.sync(); };
  return [
    { name: `batchNorm2d.fwdbwd/${shape.join('x')}`, unit: 'GB/s', work: 4 * n * 6, impl: 'medgrad', setup, teardown, run: fb(() => E.batchNorm2d(x, g, b, rm, rv, { training: true }), () => dy) },
    ...(pools ? ([
      { name: `maxPool2d.fwdbwd/${shape.join('x')}-3x3s2`, unit: 'GB/s', work: 4 * n * 3, impl: 'medgrad', setup, teardown, run: fb(() => E.maxPool2d(x, 3, { stride: 2 }), () => dyPooled) },
      { name: `avgPool2d.fwdbwd/${shape.join('x')}-3x3s2`, unit: 'GB/s', work: 4 * n * 3, impl: 'medgrad', setup, teardown, run: fb(() => E.avgPool2d(x, 3, { stride: 2 }), () => dyPooled) },
    ] satisfies Workload[]) : []),
  ];
}

/**
 * The layer rows: batch norm and the pools on a ResNet stage's activations, and batch norm on
 * planes whose H*W is not a multiple of 4 (the 7x7 stage of a 28 px ResNet, which the vec4
 * kernels cannot serve).
 */
export function layerWorkloads(quick: boolean): Workload[] {
  return [...layersOn(quick ? [4, 16, 28, 28] : [32, 32, 56, 56], true), ...layersOn(quick ? [4, 16, 7, 7] : [32, 64, 7, 7], false)];
}
