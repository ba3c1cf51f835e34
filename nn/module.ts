// Module: the PyTorch-shaped container of parameters, buffers and submodules. Names are
// dotted paths ("layer1.0.conv1.weight"), the same in parameters, stateDict and checkpoints.
import { formatShape, noGrad, type Tensor } from '../engine/index.js';

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Calls forward (modules are used as functions, like PyTorch's __call__). */
  call(x: Tensor): Tensor { return this.forward(x); }

  protected registerParameter(name: string, t: Tensor): Tensor {
    t.requiresGrad = true;
    this.params.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedChildren(): Array<[string, Module]> { return [...this.children]; }

  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [...this.params].map(([k, v]) => [prefix + k, v]);
    for (const [k, m] of this.children) out.push(...m.namedParameters(`${prefix}${k}.`));
    return out;
  }

  namedBuffers(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [...this.buffers].map(([k, v]) => [prefix + k, v]);
    for (const [k, m] of this.children) out.push(...m.namedBuffers(`${prefix}${k}.`));
    return out;
  }

  parameters(): Tensor[] { return this.namedParameters().map(([, t]) => t); }

  /** Number of values in parameters, and in parameters plus buffers (Keras' total). */
  parameterCount(): { trainable: number; total: number } {
    const trainable = this.parameters().reduce((s, t) => s + t.size, 0);
    return { trainable, total: trainable + this.namedBuffers().reduce((s, [, t]) => s + t.size, 0) };
  }

  train(on = true): this {
    this.training = on;
    for (const m of this.children.values()) m.train(on);
    return this;
  }

  eval(): this { return this.train(false); }

  /** Sets requiresGrad on every parameter (PyTorch's requires_grad_): attacks freeze the weights so their gradients are not computed. */
  requiresGrad_(on = true): this {
    for (const p of this.parameters()) p.requiresGrad = on;
    return this;
  }

  zeroGrad(): void {
    for (const p of this.parameters()) { p.grad?.dispose(); p.grad = null; }
  }

  /** Parameters and buffers by name (the tensors themselves, not copies). */
  stateDict(): Record<string, Tensor> {
    return Object.fromEntries([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into this module's parameters and buffers. Strict (the default): a missing,
   * unexpected or wrongly shaped entry is an error naming it.
   */
  loadStateDict(state: Record<string, Tensor>, options: { strict?: boolean } = {}): void {
    const strict = options.strict ?? true;
    const own = this.stateDict();
    const missing = Object.keys(own).filter((k) => !(k in state));
    const unexpected = Object.keys(state).filter((k) => !(k in own));
    if (strict && (missing.length || unexpected.length)) {
      throw new Error(`medgrad: loadStateDict: ${[
        missing.length ? `missing ${missing.join(', ')}` : '',
        unexpected.length ? `unexpected ${unexpected.join(', ')}` : '',
      ].filter(Boolean).join('; ')}`);
    }
    for (const [k, t] of Object.entries(own)) {
      const v = state[k];
      if (!v) continue;
      if (v.shape.join() !== t.shape.join()) {
        throw new Error(`medgrad: loadStateDict: '${k}' has shape ${formatShape(v.shape)} but the module expects ${formatShape(t.shape)}`);
      }
    }
    noGrad(() => {
      for (const [k, t] of Object.entries(own)) {
        const v = state[k];
        if (v) t.assign(v.mul(1));
      }
    });
  }

  /** Frees every parameter and buffer of this module and its children. */
  dispose(): void {
    for (const t of Object.values(this.stateDict())) t.dispose();
  }
}

