// The cost of an attack: one forward + input-gradient pass of ResNet-8 (weights frozen), and a
// whole 20-step PGD on the same batch. The attack loop reuses its kernels and pooled buffers,
// so PGD-20 should cost close to 20 passes; the report shows both, and the ratio is their quotient.
import * as E from '../engine/node.js';
import { createModel } from '../nn/models.js';
import { freeze, inputGradient } from '../experiments/attacks/gradient.js';
import { perturb } from '../experiments/attacks/pgd.js';
import { attackConfig } from '../experiments/attacks/spec.js';
import type { Workload } from './harness.js';

export function attackWorkloads(quick: boolean): Workload[] {
  const size = 32, batch = quick ? 8 : 32, steps = 20;
  let model: ReturnType<typeof createModel>, x: E.Tensor, y: E.Tensor, restore: () => void;
  const setup = () => {
    model = createModel('resnet8', { imageSize: size, seed: 1 });
    x = E.rand([batch, 3, size, size], { generator: new E.Generator(2) });
    y = E.randint(0, 2, [batch], { generator: new E.Generator(3) });
    restore = freeze(model);
  };
  const teardown = () => { restore(); model.dispose(); E.dispose([x, y]); };
  const tag = `resnet8-${size}px-b${batch}`;
  return [
    {
      name: `attack.gradient/${tag}`, unit: 'ms', work: 1, impl: 'medgrad', setup, teardown,
      run: async () => { E.dispose(E.tidy(() => inputGradient(model, x, y, null, 'ce'))); await E.sync(); },
    },
    {
      name: `attack.pgd${steps}/${tag}`, unit: 'ms', work: 1, impl: 'medgrad', setup, teardown,
      run: async () => { E.dispose(E.tidy(() => perturb(model, x, y, null, attackConfig('pgd', { steps }), 4 / 255, new E.Generator(0)))); await E.sync(); },
    },
  ];
}
