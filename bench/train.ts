// Training throughput: one step (forward, backward, Adam) of each study model at 64 px,
// batch 32, in images per second (medgrad only for now; the ResNet-8 peers are future work).
import * as E from '../engine/node.js';
import { createModel, MODEL_NAMES } from '../nn/models.js';
import { Adam } from '../nn/optim.js';
import type { Module } from '../nn/module.js';
import type { Workload } from './harness.js';

export function trainWorkloads(quick: boolean): Workload[] {
  const size = quick ? 32 : 64, batch = quick ? 8 : 32;
  return MODEL_NAMES.map((name): Workload => {
    let model: Module & { forward(x: E.Tensor): E.Tensor }, opt: Adam, x: E.Tensor, y: E.Tensor;
    return {
      name: `train.step/${name}-${size}px-b${batch}`, unit: 'images/s', work: batch, impl: 'medgrad',
      setup: () => {
        model = createModel(name, { imageSize: size, smallInput: name === 'cbr-larget', seed: 1 });
        opt = new Adam(model.parameters());
        x = E.rand([batch, 3, size, size], { generator: new E.Generator(2) });
        y = E.randint(0, 2, [batch], { generator: new E.Generator(3) });
      },
      run: async () => {
        E.tidy(() => { E.crossEntropy(model.forward(x), y).backward(); opt.step(); opt.zeroGrad(); });
        await E.sync();
      },
      teardown: () => { opt.dispose(); model.dispose(); E.dispose([x, y]); },
    };
  });
}
