// Fused in-place optimiser updates (optim.wgsl). Not ops of the autograd table: they mutate
// parameters and their moment buffers, and run under no graph.
import { runtime } from '../context.js';
import type { Tensor } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { f32bits, gridFor, packParams } from '../kernels/launch.js';
import { defineKernel } from '../kernels/variants.js';

const ADAM = defineKernel<{ n: number }>({ name: 'optim.adam', variants: [{ name: 'grid', family: 'optim', entry: 'adam' }] });

/** One Adam step on w in place, Keras' form (see optim.wgsl); m and v are updated too. */
export function adamUpdate(w: Tensor, g: Tensor, m: Tensor, v: Tensor, o: { lrT: number; beta1: number; beta2: number; eps: number; l2?: number }): void {
  for (const [t, name] of [[g, 'gradient'], [m, 'first moment'], [v, 'second moment']] as const) {
    if (t.size !== w.size || t.dtype !== 'float32') throw new Error(`medgrad: adam: ${name} of shape ${fmt(t.shape)} does not match parameter of shape ${fmt(w.shape)}`);
  }
  if (w.size === 0) return;
  runtime().launch(ADAM, { n: w.size }, (k) => ({
    op: 'adam', label: `adam ${fmt(w.shape)}`,
    params: packParams([w.size, f32bits(o.lrT), f32bits(o.beta1), f32bits(o.beta2), f32bits(o.eps), f32bits(o.l2 ?? 0)]),
    buffers: { w: w.buffer, g: g.buffer, m: m.buffer, v: v.buffer },
    workgroups: gridFor(w.size, k), flops: 10 * w.size, bytes: 6 * w.nbytes,
  }));
  for (const t of [w, m, v]) t.markChanged();
}
