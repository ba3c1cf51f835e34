// A study's attack cell: the unit's trained model (its best weights) attacked on the attacked
// test set with every configured attack and budget, with the sanity checks; for a standard
// model whose examples the transfer cell needs, those examples are saved beside its weights.
import { join } from 'node:path';
import * as E from '../../engine/node.js';
import type { ImageDataset, Splits } from '../data/dataset.js';
import { loadTensors } from '../train/checkpoint.js';
import { buildModel, type TrainConfig } from '../train/trainer.js';
import { attackedSet } from '../attacks/evaluate.js';
import { evaluateWithChecks } from '../attacks/sanity.js';
import { perClassCount, type StudyConfig } from './config.js';
import { saveExamples, transferAttack } from './transfer.js';
import type { AttackCell, Regime, Unit } from './runner.js';

/** `checkOwnership` throws when the cell's lease was lost: called between attacks and before writing into `dir`. */
export async function attackCell(c: StudyConfig, u: Unit, regime: Regime, ds: ImageDataset, splits: Splits, config: TrainConfig, dir: string, id: string, log: (l: string) => void, checkOwnership: () => void): Promise<AttackCell> {
  const idx = attackedSet(ds, splits.test, perClassCount(u.dataset), u.seed);
  log(`[${id}] attacking ${idx.length} test images: ${c.attacks.map((a) => a.name).join(', ')} at eps ${c.eps.map((e) => +(e * 255).toFixed(3)).join(', ')} (/255)`);
  const t0 = performance.now();
  // Between attacks: a task whose lease was taken over stops here rather than after the whole evaluation.
  const progress = (done: number, total: number, what: string): void => {
    checkOwnership();
    log(`[${id}] ${done}/${total} ${what}; ${((performance.now() - t0) / 60000).toFixed(1)} min`);
  };
  const keep = regime === 'standard' ? transferAttack(c) : undefined;
  const model = buildModel(config);
  let evaluated: Awaited<ReturnType<typeof evaluateWithChecks>>;
  try {
    const w = loadTensors(join(dir, 'best.safetensors'));
    try { model.loadStateDict(w); } finally { E.dispose(w); }
    evaluated = await evaluateWithChecks(model, ds, idx, { attacks: c.attacks, eps: c.eps, channels: config.channels, batchSize: c.attackBatch, seed: u.seed, onProgress: progress, sanityEps: c.sanityEps, keepImagesOf: keep?.name });
  } finally {
    model.dispose();
  }
  const { result, large, checks, images } = evaluated;
  checkOwnership();
  if (keep) saveExamples(dir, images, [idx.length, config.channels, ds.size, ds.size], keep.name);
  for (const ch of checks.filter((k) => !k.passed)) log(`[${id}] WARNING sanity check failed: ${ch.check}: ${ch.detail}`);
  return { kind: 'attack', id, dataset: u.dataset.name, model: u.model, seed: u.seed, regime, result, large, checks, seconds: (performance.now() - t0) / 1000 };
}
