// The cost of an attack and of evaluation in the study's inference mode: one forward +
// input-gradient pass (weights frozen), a whole 20-step PGD on the same batch (ResNet-8), and
// one forward pass without gradients (evaluation), for ResNet-8 and the small-input CBR-LargeT.
// The attack loop reuses its kernels and pooled buffers, so PGD-20 should cost close to 20
// passes; the report shows both, and the ratio is their quotient.
import * as E from '../engine/node.js';
import { createModel, type ModelName } from '../nn/models.js';
import { freeze, inputGradient } from '../experiments/attacks/gradient.js';
import { perturb } from '../experiments/attacks/pgd.js';
import { attackConfig } from '../experiments/attacks/spec.js';
import type { Workload } from './harness.js';

function modelWorkloads(name: ModelName, size: number, batch: number, pgdSteps: number | null): Workload[] {
  let model: ReturnType<typeof createModel>, x: E.Tensor, y: E.Tensor, restore: () => void;
  const setup = () => {
    model = createModel(name, { imageSize: size, seed: 1, smallInput: name === 'cbr-larget' });
    x = E.rand([batch, 3, size, size], { generator: new E.Generator(2) });
    y = E.randint(0, 2, [batch], { generator: new E.Generator(3) });
    restore = freeze(model);
  };
  const teardown = () => { restore(); model.dispose(); E.dispose([x, y]); };
  const tag = `${name}-${size}px-b${batch}`;
  return [
    {
      name: `attack.gradient/${tag}`, unit: 'ms', work: 1, impl: 'medgrad', setup, teardown,
      run: async () => { E.dispose(E.tidy(() => inputGradient(model, x, y, null, 'ce'))); await E.sync(); },
    },
    ...(pgdSteps ? [{
      name: `attack.pgd${pgdSteps}/${tag}`, unit: 'ms' as const, work: 1, impl: 'medgrad', setup, teardown,
      run: async () => { E.dispose(E.tidy(() => perturb(model, x, y, null, attackConfig('pgd', { steps: pgdSteps }), 4 / 255, new E.Generator(0)))); await E.sync(); },
    }] : []),
    {
      name: `eval.forward/${tag}`, unit: 'ms', work: 1, impl: 'medgrad', setup, teardown,
      run: async () => { E.noGrad(() => E.tidy(() => { model.forward(x); })); await E.sync(); },
    },
  ];
}

export function attackWorkloads(quick: boolean): Workload[] {
  return [...modelWorkloads('resnet8', 32, quick ? 8 : 32, 20), ...modelWorkloads('cbr-larget', 32, quick ? 2 : 8, null)];
}
