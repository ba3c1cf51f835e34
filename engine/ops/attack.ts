// Fused update ops of the attacks: not part of any graph (no backward), checked like every op.
import { runtime } from '../context.js';
import { empty, Tensor } from '../tensor/tensor.js';
import { fmt, sameShape } from '../shape.js';
import { filled, gridFor, packParams } from '../kernels/launch.js';
import { defineKernel } from '../kernels/variants.js';
import { F32 } from '../reference/check.js';
import * as R from '../reference/float64.js';
import { op } from './record.js';
import { float, scalar } from './checks.js';

const SIGN_STEP = defineKernel<{ n: number }>({ name: 'attack.signStep', variants: [{ name: 'grid', family: 'attack', entry: 'sign_step' }] });

/**
 * One signed-gradient attack step projected onto a box: min(max(x + step * sign(grad), lo), hi),
 * in one kernel instead of five. `step` is a number, or a tensor [N] with one step per sample
 * (the leading axis of x). Bitwise equal to the unfused ops; no gradient.
 */
export const signStep: (x: Tensor, grad: Tensor, step: number | Tensor, lo: Tensor, hi: Tensor) => Tensor = op({
  name: 'signStep', kind: 'update',
  check: {
    tol: F32, grad: false,
    // Inputs: x, grad, lo, hi and, for per-sample steps, the steps; a scalar step is an argument.
    cases: (r) => ([[[3, 2, 5, 5], 0.01], [[1, 1, 7, 3], 0.5], [[4, 3, 4, 4], null], [[2, 65], null]] as Array<[number[], number | null]>).map(([s, st]) => {
      const x = r.arr(s, 0, 1), lo = R.map(x, (v) => Math.max(v - 0.05, 0)), hi = R.map(x, (v) => Math.min(v + 0.05, 1));
      const inputs = [x, r.arr(s, -1, 1), lo, hi, ...(st === null ? [r.arr([s[0]!], 0.001, 0.1)] : [])];
      return { inputs, args: st === null ? [] : [st], label: `[${s}] step ${st ?? 'per sample'}` };
    }),
    run: (f, [x, g, lo, hi, steps], [step]) => f(x, g, steps ?? step, lo, hi),
    ref: ([x, g, lo, hi, steps], [step]) => {
      const per = x!.data.length / x!.shape[0]!;
      const s = (i: number) => (steps ? steps.data[Math.floor(i / per)]! : (step as number));
      return R.arr(x!.shape, x!.data.map((v, i) => Math.min(Math.max(v + Math.sign(g!.data[i]!) * s(i), lo!.data[i]!), hi!.data[i]!)));
    },
  },
  forward: (x: Tensor, grad: Tensor, step: number | Tensor, lo: Tensor, hi: Tensor): Tensor => {
    for (const [t, what] of [[x, 'input'], [grad, 'gradient'], [lo, 'lower bound'], [hi, 'upper bound']] as const) {
      if (!sameShape(float(t, 'signStep', what).shape, x.shape)) throw new Error(`medgrad: signStep: ${what} of shape ${fmt(t.shape)} does not match input of shape ${fmt(x.shape)}`);
    }
    const perSample = typeof step !== 'number';
    if (perSample && (float(step, 'signStep', 'step').rank !== 1 || step.shape[0] !== x.shape[0])) {
      throw new Error(`medgrad: signStep: per-sample steps of shape ${fmt(step.shape)} do not match input of shape ${fmt(x.shape)} (expected [${x.shape[0]}])`);
    }
    const steps = perSample ? step : filled([1], scalar(step, 'signStep', 'step'));
    const out = empty(x.shape);
    if (x.size > 0) {
      runtime().launch(SIGN_STEP, { n: x.size }, (k) => ({
        op: 'signStep', label: `signStep ${fmt(x.shape)}`,
        params: packParams([x.size, perSample ? x.size / x.shape[0]! : x.size]),
        buffers: { out: out.buffer, x: x.buffer, g: grad.buffer, step: steps.buffer, lo: lo.buffer, hi: hi.buffer },
        workgroups: gridFor(x.size, k), flops: 4 * x.size, bytes: 5 * x.nbytes,
      }));
    }
    if (!perSample) steps.dispose();
    return out;
  },
});
