// Transfer attacks: the untargeted PGD examples made on one standard-trained model, evaluated on
// every other standard model of the same dataset and seed (the same attacked images). A model
// that resists its own white-box attacks but falls to another model's examples has gradients
// that mislead its own attacks: the transfer results join its worst case.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../engine/node.js';
import type { ModelName } from '../../nn/models.js';
import { encodeSafetensors, decodeSafetensors, type RawTensor } from '../../nn/safetensors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadTensors } from '../train/checkpoint.js';
import { buildModel, type TrainConfig } from '../train/trainer.js';
import { freeze } from '../attacks/gradient.js';
import { eps255, type AttackConfig } from '../attacks/spec.js';
import type { ImageDataset } from '../data/dataset.js';
import type { StudyConfig } from './config.js';

export interface TransferResult { target: ModelName; source: ModelName; eps: number; pred: number[] }
export interface TransferCell { kind: 'transfer'; id: string; dataset: string; seed: number; attack: string; indices: number[]; labels: number[]; results: TransferResult[]; seconds: number }

/** The attack whose examples transfer: the study's untargeted cross-entropy PGD. */
export const transferAttack = (c: StudyConfig): AttackConfig | undefined => (c.transfer ? c.attacks.find((a) => a.kind === 'pgd' && a.target === 'none' && a.loss === 'ce') : undefined);

export const transferId = (dataset: string, seed: number): string => `${dataset}.s${seed}.transfer`;

const advFile = (runDir: string) => join(runDir, 'transfer-examples.safetensors');
const key = (eps: number) => `eps_${eps255(eps)}`;

/** Saves one model's adversarial images per eps ([n, c, h, w] each) next to its weights. */
export function saveExamples(runDir: string, images: Map<number, Float32Array>, shape: readonly number[], attack: string): void {
  const tensors: Record<string, RawTensor> = {};
  for (const [eps, data] of images) tensors[key(eps)] = { dtype: 'F32', shape: [...shape], data };
  writeFileAtomic(advFile(runDir), encodeSafetensors(tensors, { attack }));
}

export interface TransferSource { model: ModelName; runDir: string; config: TrainConfig }

/**
 * Evaluates every model on every other model's saved examples. `indices`/`labels` are the
 * attacked set shared by all models of the seed.
 */
export async function runTransfer(c: StudyConfig, ds: ImageDataset, dataset: string, seed: number, sources: TransferSource[], indices: number[], labels: number[], attack: AttackConfig): Promise<TransferCell> {
  const t0 = performance.now();
  const examples = new Map<ModelName, Record<string, RawTensor>>();
  for (const s of sources) {
    const file = advFile(s.runDir);
    if (!existsSync(file)) throw new Error(`medgrad study: transfer examples ${file} are missing; delete the model's attack cell to recompute them`);
    examples.set(s.model, decodeSafetensors(new Uint8Array(readFileSync(file)), file).tensors);
  }
  const results: TransferResult[] = [];
  for (const target of sources) {
    const model = buildModel(target.config);
    const w = loadTensors(join(target.runDir, 'best.safetensors'));
    model.loadStateDict(w); E.dispose(w);
    const restore = freeze(model);
    try {
      for (const source of sources) {
        if (source.model === target.model) continue;
        for (const eps of c.eps.filter((e) => e > 0)) {
          const raw = examples.get(source.model)![key(eps)];
          if (!raw) continue;
          const pred: number[] = [];
          const per = raw.data.length / Math.max(raw.shape[0]!, 1);
          for (let k = 0; k < raw.shape[0]!; k += c.attackBatch) {
            const m = Math.min(c.attackBatch, raw.shape[0]! - k);
            const top = E.noGrad(() => E.tidy(() => E.argmax(model.forward(E.tensor(raw.data.subarray(k * per, (k + m) * per) as Float32Array, [m, ...raw.shape.slice(1)])), -1)));
            pred.push(...(await top.data()));
            top.dispose();
          }
          results.push({ target: target.model, source: source.model, eps, pred });
        }
      }
    } finally {
      restore();
      model.dispose();
    }
  }
  return { kind: 'transfer', id: transferId(dataset, seed), dataset, seed, attack: attack.name, indices, labels, results, seconds: (performance.now() - t0) / 1000 };
}
