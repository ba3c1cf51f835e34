// Reverse-mode autodiff: a topological sort of the graph behind `root`, then one reverse
// sweep that calls each node's backward and accumulates gradients.
import { keep, Tensor, tidy } from '../tensor.js';
import { fmt } from '../shape.js';
import { noGrad } from './mode.js';
import { add, ones, zeros } from '../ops/table.js';

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

/** d root / d t for every tensor t in the graph (root must be a scalar unless seed is given). */
function sweep(root: Tensor, seed: Tensor | undefined, wanted: (t: Tensor) => boolean): Map<Tensor, Tensor> {
  if (!root.requiresGrad) throw new Error(`medgrad: backward: tensor of shape ${fmt(root.shape)} does not require grad (no input had requiresGrad, or it was made under noGrad)`);
  if (!seed && root.size !== 1) throw new Error(`medgrad: backward: output of shape ${fmt(root.shape)} is not a scalar; pass a gradient of that shape`);
  if (seed && seed.shape.join() !== root.shape.join()) throw new Error(`medgrad: backward: gradient of shape ${fmt(seed.shape)} does not match output of shape ${fmt(root.shape)}`);
  const grads = new Map<Tensor, Tensor>([[root, seed ?? ones(root.shape)]]);
  const order = topoSort(root);
  const result = new Map<Tensor, Tensor>();
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    const g = grads.get(t);
    if (!g) continue;
    if (wanted(t)) result.set(t, g);
    const node = t.node;
    if (!node) continue;
    const gs = node.backward(g);
    node.inputs.forEach((x, i) => {
      const gi = gs[i];
      if (!gi || !x.requiresGrad) return;
      if (gi.shape.join() !== x.shape.join()) throw new Error(`medgrad: internal: ${node.op} backward gave grad ${fmt(gi.shape)} for input ${fmt(x.shape)}`);
      const prev = grads.get(x);
      grads.set(x, prev ? add(prev, gi) : gi);
    });
  }
  return result;
}

/** Accumulates d root / d leaf into leaf.grad for every leaf with requiresGrad. */
export function backward(root: Tensor, gradient?: Tensor): void {
  noGrad(() => tidy(() => {
    const grads = sweep(root, gradient, (t) => t.node === null);
    const owned = new Set<Tensor>();
    for (const [leaf, g] of grads) {
      let next = leaf.grad ? add(leaf.grad, g) : g;
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
 * disturbing parameter gradients.
 */
export function grad(output: Tensor, inputs: Tensor[], gradient?: Tensor): Tensor[] {
  inputs.forEach((x, i) => {
    if (!x.requiresGrad) throw new Error(`medgrad: grad: input ${i} (shape ${fmt(x.shape)}) does not require grad; set requiresGrad = true before the forward pass`);
  });
  return noGrad(() => tidy(() => {
    const want = new Set(inputs);
    const grads = sweep(output, gradient, (t) => want.has(t));
    const seen = new Set<Tensor>();
    return inputs.map((x) => {
      let g = grads.get(x) ?? zeros(x.shape);
      if (g === gradient || seen.has(g)) g = g.view(g.shape);
      seen.add(g);
      return g;
    });
  }));
}
