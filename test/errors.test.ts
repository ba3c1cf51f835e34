// Bad input fails before any GPU work with a message naming the op, shapes, axis or dtype;
// GPU-side validation errors surface as JavaScript errors naming the op.
import { beforeAll, describe, expect, it } from 'vitest';
import * as E from '../engine/node.js';
import { runtime } from '../engine/context.js';
import { gpu } from './helpers/setup.js';

beforeAll(gpu);

/** Expects fn to throw matching msg without recording any GPU dispatch (inputs are made first). */
function rejects(inputs: () => E.Tensor[], fn: (...xs: E.Tensor[]) => unknown, msg: RegExp): void {
  const xs = inputs();
  const before = E.dispatchCount();
  expect(() => fn(...xs)).toThrow(msg);
  expect(E.dispatchCount()).toBe(before);
}
const z = (...shapes: number[][]) => () => shapes.map((s) => E.zeros(s));
const zi = (s: number[]) => E.zeros(s, { dtype: 'int32' });

describe('bad input', () => {
  it('mismatched shapes name both', () => rejects(z([2, 3], [4]), (x, y) => E.add(x!, y!), /add: shapes \[2, 3\] and \[4\] do not broadcast/));
  it('broadcastTo to an incompatible shape', () => rejects(z([3]), (x) => E.broadcastTo(x!, [2, 4]), /shapes \[3\] and \[2, 4\] do not broadcast/));
  it('bad reduction axis names the shape', () => rejects(z([2, 3]), (x) => E.sum(x!, 2), /sum: axis 2 is out of range for shape \[2, 3\]/));
  it('repeated axes', () => rejects(z([2, 3]), (x) => E.mean(x!, [1, -1]), /repeated axis/));
  it('wrong dtype', () => rejects(() => [zi([2])], (x) => E.exp(x), /exp: input of shape \[2\] has dtype int32; float32 is required/));
  it('matmul inner dimensions', () => rejects(z([2, 3], [4, 2]), (x, y) => E.matmul(x!, y!), /matmul: inner dimensions differ: \[2, 3\] x \[4, 2\]/));
  it('matmul batch dimensions', () => rejects(z([2, 2, 3], [3, 3, 2]), (x, y) => E.matmul(x!, y!), /batch dimensions.*\[2\] and \[3\] do not broadcast/));
  it('reshape to the wrong size', () => rejects(z([2, 3]), (x) => E.reshape(x!, [4, 2]), /cannot reshape \[2, 3\] \(6 elements\) to \[4, 2\]/));
  it('permute with a non-permutation', () => rejects(z([2, 3]), (x) => E.permute(x!, [0, 0]), /not a permutation of the 2 axes of shape \[2, 3\]/));
  it('slice out of bounds', () => rejects(z([2, 3]), (x) => E.slice(x!, [0, 2], [2, 5]), /out of bounds for axis 1 of shape \[2, 3\]/));
  it('negative padding', () => rejects(z([2, 3]), (x) => E.pad(x!, [[0, -1]]), /pad: bad padding/));
  it('concat of mismatched shapes', () => rejects(z([2, 3], [3, 3]), (x, y) => E.concat([x!, y!], 1), /concat: shapes \[2, 3\], \[3, 3\] differ outside axis 1/));
  it('ragged host data', () => expect(() => E.tensor([1, 2, 3], [2, 2])).toThrow(/3 values do not fill shape \[2, 2\]/));
  it('clamp with min above max', () => rejects(z([2, 3]), (x) => E.clamp(x!, 2, 1), /clamp: min \(2\) exceeds max \(1\)/));
  it('cross-entropy with float labels', () => rejects(z([2, 3], [2]), (x, y) => E.crossEntropy(x!, y!), /probability targets of shape \[2\] do not match logits of shape \[2, 3\]/));
  it('cross-entropy with the wrong number of labels', () => rejects(() => [E.zeros([2, 3]), zi([3])], (x, y) => E.crossEntropy(x, y), /labels of shape \[3\] do not match logits of shape \[2, 3\]/));
  it('backward of a non-scalar without a gradient', () => {
    rejects(() => [E.mul(E.ones([3], { requiresGrad: true }), 2)], (y) => y.backward(), /output of shape \[3\] is not a scalar/);
  });
  it('grad with respect to a tensor that does not require grad', () => {
    rejects(() => { const x = E.ones([3]); return [x, E.sum(E.mul(x, E.ones([3], { requiresGrad: true })))]; }, (x, l) => E.grad(l, [x]), /grad: input 0 \(shape \[3\]\) does not require grad/);
  });
  it('a tensor larger than any GPU buffer', () => rejects(() => [], () => E.zeros([1 << 20, 1 << 12]), /needs 17179869184 bytes, more than this device's largest buffer/));
  it('bad shapes', () => expect(() => E.zeros([2, -1])).toThrow(/list of non-negative integers/));
  it('an out-of-range label gives NaN rather than a wrong number', async () => {
    const loss = E.crossEntropy(E.zeros([1, 2]), E.tensor(Int32Array.from([5]), [1]));
    expect(Number.isNaN(await loss.item())).toBe(true);
  });
});

describe('GPU errors', () => {
  it('a grid beyond the device\'s workgroup limit is refused before recording, naming the op and the limit', () => {
    const rt = runtime();
    const out = E.zeros([4]);
    const max = rt.device.limits.maxComputeWorkgroupsPerDimension;
    expect(() => rt.dispatch(rt.kernel('copy', 'fill'), { op: 'test-op', label: 'test-op [4]', buffers: { dst: out.buffer }, workgroups: [max + 1] }))
      .toThrow(new RegExp(`test-op \\[4\\].*${max + 1} workgroups.*allows ${max}`));
    out.dispose();
  });

  it('a WebGPU validation error is rethrown naming the op', async () => {
    const rt = runtime();
    // A destroyed buffer in a submitted dispatch: only the GPU's validation can catch this.
    const gone = rt.device.gpu.createBuffer({ size: 256, usage: 0x80 /* STORAGE */ });
    gone.destroy();
    rt.dispatch(rt.kernel('copy', 'fill'), { op: 'test-op', label: 'test-op [4]', buffers: { dst: gone }, workgroups: [1] });
    await expect(E.sync()).rejects.toThrow(/WebGPU validation error in .*test-op \[4\]/);
    // The engine keeps working afterwards.
    expect(await E.ones([2]).sum().item()).toBe(2);
  });
});
