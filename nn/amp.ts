// Mixed precision (issue 14): activations in float16 storage, float32 master weights that the
// optimiser updates, and dynamic loss scaling so that small float16 gradients do not flush to
// zero. The layers cast their float32 weights to float16 when their input is float16 (a fresh
// copy each step, through the differentiable cast, whose gradient comes back float32); batch
// norm keeps float32 parameters and statistics; reductions (global pooling) return float32, so
// the classifier head and the loss run in float32.
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export type Precision = 'float32' | 'mixed';
export const PRECISIONS: readonly Precision[] = ['float32', 'mixed'];

/** The precision named by a CLI option or config field, with a clear error for anything else. */
export function parsePrecision(v: unknown, where: string): Precision {
  if (v === undefined) return 'float32';
  if (typeof v !== 'string' || !(PRECISIONS as readonly string[]).includes(v)) throw new Error(`${where}: precision must be ${PRECISIONS.join(' or ')}, got '${String(v)}'`);
  return v as Precision;
}

export interface LossScalerOptions {
  /** Initial scale (PyTorch's GradScaler: 2^16). */
  initScale?: number;
  growthFactor?: number;
  backoffFactor?: number;
  /** Consecutive steps with finite gradients before the scale grows (PyTorch: 2000). */
  growthInterval?: number;
}

/**
 * Dynamic loss scaling, as PyTorch's GradScaler: the loss is multiplied by `scale` before
 * backward; the gradients are checked for Inf/NaN (one number read back per step) and divided
 * by the scale; a step with non-finite gradients is skipped and the scale halved, and after
 * `growthInterval` good steps in a row the scale doubles.
 */
export class LossScaler {
  scale: number;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  goodSteps = 0;
  skippedSteps = 0;
  constructor(o: LossScalerOptions = {}) {
    this.scale = o.initScale ?? 2 ** 16;
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
    if (!(this.scale > 0) || !(this.growthFactor > 1) || !(this.backoffFactor > 0 && this.backoffFactor < 1) || !(this.growthInterval >= 1)) {
      throw new Error(`medgrad: LossScaler: bad options ${JSON.stringify(o)} (scale > 0, growthFactor > 1, 0 < backoffFactor < 1, growthInterval >= 1)`);
    }
  }

  /** loss * scale: what backward runs on. */
  scaleLoss(loss: Tensor): Tensor { return E.mul(loss, this.scale); }

  /**
   * Divides the parameters' gradients by the scale in place, if all are finite; otherwise clears
   * them. Returns whether the optimiser should step, and updates the scale.
   */
  async unscale(params: readonly Tensor[]): Promise<boolean> {
    const withGrad = params.filter((p) => p.grad);
    // 0 * g is NaN exactly where g is Inf or NaN: one sum says whether any gradient is not finite.
    const probe = E.noGrad(() => E.tidy(() => withGrad.reduce<Tensor>((acc, p) => E.add(acc, E.sum(E.mul(p.grad!, 0))), E.zeros([]))));
    const finite = Number.isFinite(await probe.item());
    probe.dispose();
    if (finite) {
      E.noGrad(() => E.tidy(() => { for (const p of withGrad) p.grad!.assign(E.mul(p.grad!, 1 / this.scale)); }));
      if (++this.goodSteps >= this.growthInterval) { this.scale *= this.growthFactor; this.goodSteps = 0; }
    } else {
      for (const p of withGrad) { p.grad!.dispose(); p.grad = null; }
      this.scale *= this.backoffFactor;
      this.goodSteps = 0;
      this.skippedSteps++;
    }
    return finite;
  }

  state(): { scale: number; goodSteps: number; skippedSteps: number } { return { scale: this.scale, goodSteps: this.goodSteps, skippedSteps: this.skippedSteps }; }
  load(s: { scale: number; goodSteps: number; skippedSteps?: number }): void { this.scale = s.scale; this.goodSteps = s.goodSteps; this.skippedSteps = s.skippedSteps ?? 0; }
}

/** `w` in the dtype of the activations it meets: a float16 copy (differentiable) for float16 input. */
export const asActivation = (w: Tensor, x: Tensor): Tensor => (x.dtype === 'float16' && w.dtype !== 'float16' ? E.cast(w, 'float16') : w);
