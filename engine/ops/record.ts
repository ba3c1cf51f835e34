// The op record: the single declaration of an op. From its record come the function users call
// (forward with recording off, a graph node when an input requires grad), the Tensor method,
// the generated WGSL of elementwise ops, and the op test spec (the float64 reference, random
// cases and tolerances that test/ops.test.ts runs for every record).
import { isGradEnabled, withGradMode } from '../autograd/mode.js';
import { keep, Tensor } from '../tensor/tensor.js';
import type { OpCheck } from '../reference/check.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyFn = (...args: any[]) => Tensor;
/** What a backward returns: one gradient per tensor input, null where none flows. */
export type Grad = Array<Tensor | null>;

export type OpKind = 'unary' | 'binary' | 'compare' | 'select' | 'movement' | 'reduce' | 'linalg' | 'softmax' | 'conv' | 'norm' | 'pool' | 'update';

interface Common {
  name: string;
  kind: OpKind;
  /** Tensor method: true for the op's name, a string for another name; absent for none. */
  method?: boolean | string;
  /** Test specs: the float64 reference, cases and tolerances (see reference/check.ts). */
  check: OpCheck | OpCheck[];
  /** The WGSL of an elementwise op, in x (and y): the expression elementwise.wgsl's generated switch runs for it. */
  wgsl?: string;
}

export interface OpRecord<F extends AnyFn> extends Common {
  forward: F;
  /** Gradient of each tensor input (array arguments flattened) from the output's gradient. */
  backward?: (g: Tensor, out: Tensor, ...args: Parameters<F>) => Grad;
}

export interface SavingRecord<F extends AnyFn, S> extends Common {
  /** Forward that also returns what backward needs (statistics, argmax indices); the graph node owns it. */
  forward: (...args: Parameters<F>) => [Tensor, S];
  backward: (g: Tensor, out: Tensor, saved: S, ...args: Parameters<F>) => Grad;
}

/** A declared op as the registry keeps it. */
export interface RegisteredOp {
  readonly name: string;
  readonly kind: OpKind;
  readonly differentiable: boolean;
  readonly method: string | undefined;
  readonly wgsl: string | undefined;
  readonly checks: readonly OpCheck[];
  readonly fn: AnyFn;
}

/** Every declared op, in declaration order: the source of the op tests and the method table. */
export const OPS: RegisteredOp[] = [];

function tensorInputs(args: unknown[]): Tensor[] {
  const out: Tensor[] = [];
  for (const a of args) {
    if (a instanceof Tensor) out.push(a);
    else if (Array.isArray(a)) for (const b of a) if (b instanceof Tensor) out.push(b);
  }
  return out;
}

function savedTensors(s: unknown, out: Tensor[] = []): Tensor[] {
  if (s instanceof Tensor) out.push(s);
  else if (Array.isArray(s)) for (const v of s) savedTensors(v, out);
  else if (s && typeof s === 'object') for (const v of Object.values(s)) savedTensors(v, out);
  return out;
}

function build<F extends AnyFn, S>(r: Common, forward: (...a: Parameters<F>) => [Tensor, S],
  backward: ((g: Tensor, out: Tensor, saved: S, ...a: Parameters<F>) => Grad) | undefined): F {
  const fn = ((...args: Parameters<F>): Tensor => {
    // Touching each input's storage first: a disposed tensor or one of a lost device is refused
    // before the op allocates anything.
    const inputs = tensorInputs(args);
    for (const t of inputs) void t.storage;
    const [out, saved] = withGradMode(false, () => forward(...args));
    const owned = savedTensors(saved);
    if (backward && isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
      out.requiresGrad = true;
      // The node owns what forward saved: out of every scope, freed with the node.
      for (const t of owned) keep(t);
      out.node = { op: r.name, inputs, versions: inputs.map((t) => t.version), outVersion: out.version, saved: owned, savedVersions: owned.map((t) => t.version), freed: false, backward: (g) => backward(g, out, saved, ...args) };
    } else {
      for (const t of owned) t.dispose();
    }
    return out;
  }) as F;
  const method = r.method === true ? r.name : r.method || undefined;
  const checks = Array.isArray(r.check) ? r.check : [r.check];
  OPS.push({ name: r.name, kind: r.kind, differentiable: backward !== undefined, method, wgsl: r.wgsl, checks, fn });
  return Object.assign(fn, { methodName: method });
}

/** Declares an op from its record; returns the function users call. */
export function op<F extends AnyFn>(r: OpRecord<F>): F {
  const bw = r.backward;
  return build<F, null>(r, (...a) => [r.forward(...a), null], bw && ((g, out, _s, ...a) => bw(g, out, ...a)));
}

/** An op whose forward also returns tensors its backward needs; the graph node owns them. */
export function savingOp<F extends AnyFn, S>(r: SavingRecord<F, S>): F {
  return build<F, S>(r, r.forward, r.backward);
}

/** A Tensor method that is a composition of recorded ops (flatten, transpose): no record of its own. */
export function composite<F extends (self: Tensor, ...args: never[]) => unknown, const N extends string>(name: N, fn: F): F & { readonly methodName: N } {
  return Object.assign(fn, { methodName: name });
}

/** The method table of some op namespaces: name -> function, from the records' `method` fields. */
export function methodTable(...namespaces: object[]): Record<string, (self: Tensor, ...args: never[]) => unknown> {
  const out: Record<string, (self: Tensor, ...args: never[]) => unknown> = {};
  for (const ns of namespaces) {
    for (const v of Object.values(ns)) {
      const name = typeof v === 'function' ? (v as { methodName?: string }).methodName : undefined;
      if (name) {
        if (out[name]) throw new Error(`medgrad: two ops declare the Tensor method '${name}'`);
        out[name] = v as (self: Tensor, ...args: never[]) => unknown;
      }
    }
  }
  return out;
}
