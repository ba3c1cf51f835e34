// defineOp: the one place where an op's forward and backward meet the autograd graph.
// forward runs with recording off; if grad mode is on and any tensor input requires grad,
// the output gets a node whose backward maps the output's gradient to one gradient per
// tensor input (in argument order, tensors inside array arguments flattened).
import { isGradEnabled, withGradMode } from '../autograd/mode.js';
import { Tensor } from '../tensor.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => Tensor;
export type Backward<F extends AnyFn> = (g: Tensor, out: Tensor, ...args: Parameters<F>) => Array<Tensor | null>;

export type Unary = (x: Tensor) => Tensor;
export type Binary = (a: Tensor, b: Tensor | number) => Tensor;

export interface OpInfo { name: string; differentiable: boolean }
export const registry: OpInfo[] = [];

function tensorInputs(args: unknown[]): Tensor[] {
  const out: Tensor[] = [];
  for (const a of args) {
    if (a instanceof Tensor) out.push(a);
    else if (Array.isArray(a)) for (const b of a) if (b instanceof Tensor) out.push(b);
  }
  return out;
}

export function defineOp<F extends AnyFn>(name: string, forward: F, backward?: Backward<F>): F {
  registry.push({ name, differentiable: backward !== undefined });
  return ((...args: Parameters<F>): Tensor => {
    const out = withGradMode(false, () => forward(...args));
    if (backward && isGradEnabled()) {
      const inputs = tensorInputs(args);
      if (inputs.some((t) => t.requiresGrad)) {
        out.requiresGrad = true;
        out.node = { op: name, inputs, backward: (g) => backward(g, out, ...args) };
      }
    }
    return out;
  }) as F;
}

/**
 * An op whose forward also produces values its backward needs (statistics, argmax indices):
 * forward returns [output, saved] and backward receives `saved` after the output.
 */
export function defineSavedOp<F extends AnyFn, S>(name: string, forward: (...args: Parameters<F>) => [Tensor, S],
  backward: (g: Tensor, out: Tensor, saved: S, ...args: Parameters<F>) => Array<Tensor | null>): F {
  const saved = new WeakMap<Tensor, S>();
  return defineOp<F>(name, ((...args: Parameters<F>) => {
    const [out, s] = forward(...args);
    saved.set(out, s);
    return out;
  }) as F, (g, out, ...args) => backward(g, out, saved.get(out)!, ...args));
}
