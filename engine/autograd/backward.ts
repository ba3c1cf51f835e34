// Reverse-mode autodiff: a topological sort of the graph behind `root`, then one reverse
// sweep that calls each node's backward and accumulates gradients.
import { keep, releaseNode, Tensor, tidy, watchReads, type GradNode } from '../tensor/tensor.js';
import { fmt } from '../shape.js';
import { accumulateKernel, filled } from '../kernels/launch.js';
import { noGrad } from './mode.js';

/** Gradient accumulation: the one primitive autograd needs (a + b of one shape), below the op table. */
const accumulate = (a: Tensor, b: Tensor): Tensor => accumulateKernel(a, b);

function topoSort(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  // Iterative DFS: deep models would overflow the JS stack with recursion.
  const stack: Array<[Tensor, number]> = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i] = top;
    const inputs = t.node?.inputs ?? [];
    if (i < inputs.length) {
      top[1]++;
      const next = inputs[i]!;
      if (!seen.has(next) && next.requiresGrad) { seen.add(next); stack.push([next, 0]); }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}

/**
 * Refuses a node's backward that reads an input (or its output) whose values were changed in
 * place after the forward pass: the gradient would be of other values (PyTorch raises the same).
 */
function checkVersion(node: GradNode, out: Tensor, x: Tensor): void {
  const i = node.inputs.indexOf(x), j = i < 0 && x !== out ? node.saved.indexOf(x) : -1;
  if (i < 0 && j < 0 && x !== out) return; // made by the backward itself
  const expected = i >= 0 ? node.versions[i]! : j >= 0 ? node.savedVersions[j]! : node.outVersion;
  const now = x.isDisposed ? expected : x.version; // a disposed tensor says so itself when read
  if (now === expected) return;
  const what = i >= 0 ? `input ${i}` : j >= 0 ? 'saved tensor' : 'output';
  throw new Error(`medgrad: backward: ${node.op} needs the values its ${what} (shape ${fmt(x.shape)}) had in the forward pass, but they were changed in place since (by assign(), an optimiser step or a training-mode batch norm); differentiate before changing the tensor, or use a copy in the forward pass`);
}

export interface BackwardOptions {
  /** Keep the graph so that it can be differentiated again (PyTorch's retain_graph). */
  retainGraph?: boolean;
}

export interface GradOptions extends BackwardOptions {
  /** Gradient of the output (needed when it is not a scalar). */
  gradient?: Tensor;
  /** Return null for inputs the output does not depend on, instead of throwing (PyTorch's allow_unused). */
  allowUnused?: boolean;
}

/**
 * d root / d t for every tensor t in the graph (root must be a scalar unless seed is given).
 * Unless retain, each node swept is released (its saved tensors freed), so a second sweep
 * through it throws as in PyTorch.
 */
function sweep(root: Tensor, seed: Tensor | undefined, wanted: (t: Tensor) => boolean, retain: boolean): { grads: Map<Tensor, Tensor>; reached: Set<Tensor> } {
  if (!root.requiresGrad) throw new Error(`medgrad: backward: tensor of shape ${fmt(root.shape)} does not require grad (no input had requiresGrad, or it was made under noGrad)`);
  if (!seed && root.size !== 1) throw new Error(`medgrad: backward: output of shape ${fmt(root.shape)} is not a scalar; pass a gradient of that shape`);
  if (seed && seed.shape.join() !== root.shape.join()) throw new Error(`medgrad: backward: gradient of shape ${fmt(seed.shape)} does not match output of shape ${fmt(root.shape)}`);
  const grads = new Map<Tensor, Tensor>([[root, seed ?? filled(root.shape, 1)]]);
  const order = topoSort(root);
  const result = new Map<Tensor, Tensor>();
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    const g = grads.get(t);
    if (!g) continue;
    if (wanted(t)) result.set(t, g);
    const node = t.node;
    if (!node) continue;
    if (node.freed) {
      throw new Error(`medgrad: backward: the graph through ${node.op} (output of shape ${fmt(t.shape)}) was already differentiated and freed; pass { retainGraph: true } to the first backward() or grad() to differentiate it again`);
    }
    const gs = watchReads((x) => checkVersion(node, t, x), () => node.backward(g));
    if (!retain) releaseNode(node);
    node.inputs.forEach((x, i) => {
      const gi = gs[i];
      if (!gi || !x.requiresGrad) return;
      if (gi.shape.join() !== x.shape.join()) throw new Error(`medgrad: internal: ${node.op} backward gave grad ${fmt(gi.shape)} for input ${fmt(x.shape)}`);
      const prev = grads.get(x);
      grads.set(x, prev ? accumulate(prev, gi) : gi);
    });
  }
  return { grads: result, reached: new Set(order) };
}

/** Accumulates d root / d leaf into leaf.grad for every leaf with requiresGrad. */
export function backward(root: Tensor, gradient?: Tensor, options: BackwardOptions = {}): void {
  noGrad(() => tidy(() => {
    const { grads } = sweep(root, gradient, (t) => t.node === null, options.retainGraph ?? false);
    const owned = new Set<Tensor>();
    for (const [leaf, g] of grads) {
      let next = leaf.grad ? accumulate(leaf.grad, g) : g;
      // Two leaves may receive the very same tensor (add's backward passes g through).
      if (next === gradient || owned.has(next)) next = next.view(next.shape);
      owned.add(next);
      leaf.grad?.dispose();
      leaf.grad = keep(next);
    }
  }));
}

/**
 * Functional gradients: d output / d input for each of `inputs`, returned as new tensors.
 * Touches no .grad field, so attacks can differentiate with respect to images without
 * disturbing parameter gradients. As in PyTorch, an input the output does not depend on is an
 * error unless allowUnused (then its entry is null). The third argument is the output's
 * gradient or the options.
 */
export function grad(output: Tensor, inputs: Tensor[], gradient?: Tensor | (GradOptions & { allowUnused?: false })): Tensor[];
export function grad(output: Tensor, inputs: Tensor[], options: GradOptions & { allowUnused: true }): Array<Tensor | null>;
export function grad(output: Tensor, inputs: Tensor[], gradientOrOptions?: Tensor | GradOptions): Array<Tensor | null> {
  const o: GradOptions = gradientOrOptions instanceof Tensor ? { gradient: gradientOrOptions } : gradientOrOptions ?? {};
  const gradient = o.gradient;
  inputs.forEach((x, i) => {
    if (!x.requiresGrad) throw new Error(`medgrad: grad: input ${i} (shape ${fmt(x.shape)}) does not require grad; set requiresGrad = true before the forward pass`);
  });
  return noGrad(() => tidy(() => {
    const want = new Set(inputs);
    const { grads, reached } = sweep(output, gradient, (t) => want.has(t), o.retainGraph ?? false);
    const seen = new Set<Tensor>();
    return inputs.map((x, i) => {
      let g = grads.get(x);
      // In the graph but given no gradient (sign's is zero everywhere): zeros, as in PyTorch.
      if (!g && reached.has(x)) g = filled(x.shape, 0);
      if (!g) {
        if (o.allowUnused) return null;
        throw new Error(`medgrad: grad: input ${i} (shape ${fmt(x.shape)}) was not used to compute the output; pass { allowUnused: true } to get null for it`);
      }
      if (g === gradient || seen.has(g)) g = g.view(g.shape);
      seen.add(g);
      return g;
    });
  }));
}
