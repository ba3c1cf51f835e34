// Training throughput: one step (forward, backward, Adam: the trainer's trainStep) of each study model at 64 px,
// batch 32, in images per second; ResNet-8 also in TensorFlow.js and jax-js (peers/resnet8.ts).
import * as E from '../engine/node.js';
import { createModel, MODEL_NAMES } from '../nn/models.js';
import { Adam } from '../nn/optim.js';
import type { Module } from '../nn/module.js';
import { trainStep } from '../experiments/train/step.js';
import type { Workload } from './harness.js';
import { loadJax, loadTfjs } from './peers.js';
import { jaxResnet8Step, tfjsResnet8Step } from './peers/resnet8.js';

/** Image size and batch of the step: 64 px, batch 32 (quick: 32, 8) unless the caller sets them (bench/gpu.sh: 224 px, 64). */
export interface TrainShape { size?: number; batch?: number; models?: readonly string[] }
const shape = (quick: boolean, o: TrainShape = {}) => ({ size: o.size ?? (quick ? 32 : 64), batch: o.batch ?? (quick ? 8 : 32) });
const recordName = (model: string, quick: boolean, o: TrainShape = {}) => `train.step/${model}-${shape(quick, o).size}px-b${shape(quick, o).batch}`;

export function trainWorkloads(quick: boolean, o: TrainShape = {}): Workload[] {
  const { size, batch } = shape(quick, o);
  const unknown = (o.models ?? []).filter((m) => !(MODEL_NAMES as readonly string[]).includes(m));
  if (unknown.length) throw new Error(`bench: unknown model ${unknown.join(', ')} (have ${MODEL_NAMES.join(', ')})`);
  return MODEL_NAMES.filter((m) => !o.models || o.models.includes(m)).map((name): Workload => {
    let model: Module & { forward(x: E.Tensor): E.Tensor }, opt: Adam, x: E.Tensor, y: E.Tensor;
    return {
      name: recordName(name, quick, o), unit: 'images/s', work: batch, impl: 'medgrad',
      setup: () => {
        model = createModel(name, { imageSize: size, smallInput: name === 'cbr-larget' || size < 32, seed: 1 });
        opt = new Adam(model.parameters());
        x = E.rand([batch, 3, size, size], { generator: new E.Generator(2) });
        y = E.randint(0, 2, [batch], { generator: new E.Generator(3) });
      },
      run: async () => {
        trainStep(model, opt, x, y).dispose();
        await E.sync();
      },
      teardown: () => { opt.dispose(); model.dispose(); E.dispose([x, y]); },
    };
  });
}

/** The ResNet-8 step in a peer library (same record name as medgrad's). */
export async function peerTrainWorkloads(impl: string, quick: boolean, o: TrainShape = {}): Promise<Workload[]> {
  const { size, batch } = shape(quick, o);
  if (o.models && !o.models.includes('resnet8')) return [];
  if (impl === 'tfjs-webgpu') { const tf = await loadTfjs(); return tf ? [tfjsResnet8Step(tf, size, batch, recordName('resnet8', quick, o))] : []; }
  if (impl === 'jax-js') { const jax = await loadJax(); return jax ? [jaxResnet8Step(jax, size, batch, recordName('resnet8', quick, o))] : []; }
  return [];
}
