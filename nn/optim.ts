// Optimisers (the trainer drops the learning rate itself: TrainConfig.lrDropEpoch). Updates
// replace each parameter's storage in place (Tensor.assign), so a training loop keeps a flat
// number of GPU buffers.
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export interface ParamGroup {
  params: Tensor[];
  /** L2 penalty as Keras' l2(c): loss += c * sum(w^2), i.e. gradient += 2 c w. */
  l2?: number;
}

export abstract class Optimizer {
  lr: number;
  step_ = 0;
  protected readonly groups: ParamGroup[];
  constructor(params: Tensor[] | ParamGroup[], lr: number) {
    if (!(lr > 0)) throw new Error(`medgrad: optimiser learning rate must be positive, got ${lr}`);
    this.lr = lr;
    this.groups = params.length && !(params[0] instanceof E.Tensor) ? (params as ParamGroup[]) : [{ params: params as Tensor[] }];
  }

  /** The gradient each parameter is stepped with (its .grad plus any L2 term). */
  protected gradOf(p: Tensor, g: ParamGroup): Tensor | null {
    if (!p.grad) return null;
    return g.l2 ? E.add(p.grad, E.mul(p, 2 * g.l2)) : p.grad;
  }

  /** Applies one update from the parameters' .grad; parameters without .grad are skipped. */
  step(): void {
    this.step_++;
    this.beginStep();
    E.noGrad(() => E.tidy(() => {
      for (const g of this.groups) for (const p of g.params) if (p.grad) this.update(p, g);
    }));
  }

  /** Per-step scalars (bias corrections), computed once before the parameters are updated. */
  protected beginStep(): void {}

  zeroGrad(): void {
    for (const g of this.groups) for (const p of g.params) { p.grad?.dispose(); p.grad = null; }
  }

  protected abstract update(p: Tensor, group: ParamGroup): void;

  /** Optimiser state tensors by parameter index, for checkpoints. */
  abstract stateTensors(): Record<string, Tensor>;
  abstract loadStateTensors(state: Record<string, Tensor>): void;

  protected allParams(): Tensor[] { return this.groups.flatMap((g) => g.params); }

  dispose(): void { for (const t of Object.values(this.stateTensors())) t.dispose(); }
}

/** SGD with optional momentum (PyTorch's form: v = mu v + g; w -= lr v). */
export class SGD extends Optimizer {
  private readonly velocity = new Map<Tensor, Tensor>();
  constructor(params: Tensor[] | ParamGroup[], readonly options: { lr: number; momentum?: number }) { super(params, options.lr); }
  protected update(p: Tensor, group: ParamGroup): void {
    const grad = this.gradOf(p, group)!;
    const mu = this.options.momentum ?? 0;
    let d = grad;
    if (mu > 0) {
      const prev = this.velocity.get(p);
      const v = prev ? E.add(E.mul(prev, mu), grad) : E.mul(grad, 1);
      if (prev) prev.assign(v); else this.velocity.set(p, E.keep(v));
      d = this.velocity.get(p)!;
    }
    p.assign(E.sub(p, E.mul(d, this.lr)));
  }
  stateTensors(): Record<string, Tensor> {
    return Object.fromEntries(this.allParams().flatMap((p, i) => (this.velocity.has(p) ? [[`velocity.${i}`, this.velocity.get(p)!]] : [])));
  }
  loadStateTensors(state: Record<string, Tensor>): void {
    this.allParams().forEach((p, i) => { const v = state[`velocity.${i}`]; if (v) this.velocity.set(p, E.keep(E.mul(v, 1))); });
  }
}

/**
 * Adam as Keras computes it (defaults beta1 0.9, beta2 0.999, epsilon 1e-7):
 * lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); w -= lr_t m / (sqrt(v) + eps).
 */
export class Adam extends Optimizer {
  private readonly m = new Map<Tensor, Tensor>();
  private readonly v = new Map<Tensor, Tensor>();
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  constructor(params: Tensor[] | ParamGroup[], options: { lr?: number; beta1?: number; beta2?: number; eps?: number } = {}) {
    super(params, options.lr ?? 1e-3);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.eps = options.eps ?? 1e-7;
  }
  private moment(map: Map<Tensor, Tensor>, p: Tensor): Tensor {
    let t = map.get(p);
    if (!t) map.set(p, (t = E.keep(E.zeros(p.shape))));
    return t;
  }

  private lrT = 0;
  protected override beginStep(): void {
    const t = this.step_;
    this.lrT = (this.lr * Math.sqrt(1 - this.beta2 ** t)) / (1 - this.beta1 ** t);
  }
  /** One fused kernel per parameter (optim.wgsl), with the group's L2 folded into the gradient. */
  protected update(p: Tensor, group: ParamGroup): void {
    E.adamUpdate(p, p.grad!, this.moment(this.m, p), this.moment(this.v, p), { lrT: this.lrT, beta1: this.beta1, beta2: this.beta2, eps: this.eps, l2: group.l2 });
  }
  stateTensors(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    this.allParams().forEach((p, i) => {
      const m = this.m.get(p), v = this.v.get(p);
      if (m && v) { out[`m.${i}`] = m; out[`v.${i}`] = v; }
    });
    return out;
  }
  loadStateTensors(state: Record<string, Tensor>): void {
    this.allParams().forEach((p, i) => {
      const m = state[`m.${i}`], v = state[`v.${i}`];
      if (m && v) { this.m.set(p, E.keep(E.mul(m, 1))); this.v.set(p, E.keep(E.mul(v, 1))); }
    });
  }
}
