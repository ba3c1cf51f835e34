// One PGD step of the page's example model, timed the way the page runs an attack (a step,
// then a wait for the GPU): shared by the browser page of this folder and by bench/browser.ts
// in Node, so both measure the same code.
import * as E from '../../engine/index.js';
import { createModel, type ModelName } from '../../nn/models.js';
import { decodeSafetensors, fromRaw } from '../../nn/safetensors.js';
import { freeze } from '../../experiments/attacks/gradient.js';
import { perturbAsync } from '../../experiments/attacks/pgd.js';
import { attackConfig } from '../../experiments/attacks/spec.js';

export interface StepTiming { msPerStep: number; steps: number; repeats: number }

interface Side { architecture: ModelName; modelOptions: { imageSize: number; inChannels: number; classes: number; smallInput: boolean } }

/** Median over `repeats` 20-step PGD runs of the time per step, on one image. */
export async function timePgdStep(sidecar: Side, weights: Uint8Array, repeats = 5): Promise<StepTiming> {
  const o = sidecar.modelOptions;
  const model = createModel(sidecar.architecture, { imageSize: o.imageSize, inChannels: o.inChannels, classes: o.classes, smallInput: o.smallInput });
  const w = fromRaw(decodeSafetensors(weights).tensors);
  model.loadStateDict(w); E.dispose(w);
  const restore = freeze(model);
  const x = E.rand([1, o.inChannels, o.imageSize, o.imageSize], { generator: new E.Generator(1) });
  const y = E.tensor([1], [1], { dtype: 'int32' });
  const spec = attackConfig('pgd');
  const times: number[] = [];
  for (let r = 0; r < repeats + 1; r++) {
    const t0 = performance.now();
    const p = await perturbAsync(model, x, y, null, spec, 4 / 255, new E.Generator(r));
    await p.xAdv.data();
    if (r > 0) times.push((performance.now() - t0) / spec.steps); // the first run warms the pipelines
    E.dispose(p);
  }
  restore();
  E.dispose([x, y]); model.dispose();
  times.sort((a, b) => a - b);
  return { msPerStep: times[Math.floor(times.length / 2)]!, steps: spec.steps, repeats };
}
