// Robustness of one model on a set of images: every attack at every epsilon, with per-sample
// results (clean prediction, adversarial prediction, final loss, perturbation norm) so that the
// worst case over attacks can be computed, the attacks' loss curves for the sanity checks, and
// the attacked set drawn as the protocol draws it.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { ImageDataset } from '../data/dataset.js';
import { makeBatch } from '../data/augment.js';
import { type Classifier, freeze, leastLikely } from './gradient.js';
import { perturb } from './pgd.js';
import type { AttackConfig } from './spec.js';

export interface AttackRecord {
  attack: string;
  /** Fraction of [0, 1]. */
  eps: number;
  /** Accuracy against the true labels. */
  acc: number;
  advPred: number[];
  /** Cross-entropy against the true label at the adversarial image. */
  loss: number[];
  /** max |x_adv - x| per sample. */
  linf: number[];
  /** Mean attack objective before each step and at the end (the loss curve). */
  trace: number[];
  seconds: number;
}

export interface RobustnessResult {
  /** Indices of the attacked images in the dataset. */
  indices: number[];
  labels: number[];
  cleanPred: number[];
  cleanAcc: number;
  records: AttackRecord[];
}

/**
 * The protocol's attacked set: `perClass` test images per class drawn at random without
 * replacement (150 in the paper), seeded; a class with fewer images gives all it has.
 */
export function attackedSet(ds: ImageDataset, pool: readonly number[], perClass: number, seed: number): number[] {
  const gen = new E.Generator(seed);
  const out: number[] = [];
  ds.classes.forEach((_, c) => out.push(...gen.shuffle(pool.filter((i) => ds.y[i] === c)).slice(0, perClass)));
  return out.sort((a, b) => a - b);
}

export interface EvaluateOptions {
  attacks: AttackConfig[];
  /** Epsilons as fractions; 0 is clean accuracy. */
  eps: number[];
  channels: number;
  batchSize?: number;
  seed?: number;
  /** Called after each batch with image-steps done and the total. */
  onProgress?: (done: number, total: number, what: string) => void;
}

const cost = (a: AttackConfig): number => (a.steps + 1) * a.restarts;

export async function evaluateRobustness(model: Classifier, ds: ImageDataset, indices: readonly number[], o: EvaluateOptions): Promise<RobustnessResult> {
  const bs = o.batchSize ?? 50;
  const batches: number[][] = [];
  for (let k = 0; k < indices.length; k += bs) batches.push(indices.slice(k, k + bs));
  const labels = indices.map((i) => ds.y[i]!);
  const restore = freeze(model);
  try {
    // Gathered once: every (attack, eps) job reuses the same batches.
    const data = batches.map((b) => makeBatch(ds, b, { channels: o.channels }));
    const cleanPred: number[] = [];
    const targets: number[] = [];
    for (const [bi, b] of batches.entries()) {
      const { x } = data[bi]!;
      const [pred, ll] = E.noGrad(() => E.tidy(() => {
        const logits = model.forward(E.tensor(x, [b.length, o.channels, ds.size, ds.size]));
        return [E.argmax(logits, -1), leastLikely(logits)];
      }));
      cleanPred.push(...(await pred!.data())); targets.push(...(await ll!.data()));
      E.dispose([pred, ll]);
    }
    const cleanAcc = accuracy(cleanPred, labels);
    const jobs = o.attacks.flatMap((attack) => o.eps.filter((e) => e > 0).map((eps) => ({ attack, eps })));
    const total = jobs.reduce((s, j) => s + cost(j.attack) * indices.length, 0);
    let done = 0;
    const records: AttackRecord[] = o.eps.includes(0)
      ? o.attacks.map((a) => ({ attack: a.name, eps: 0, acc: cleanAcc, advPred: [...cleanPred], loss: [], linf: indices.map(() => 0), trace: [], seconds: 0 }))
      : [];
    for (const { attack, eps } of jobs) {
      const rec: AttackRecord = { attack: attack.name, eps, acc: 0, advPred: [], loss: [], linf: [], trace: [], seconds: 0 };
      const t0 = performance.now();
      for (const [bi, b] of batches.entries()) {
        const { x: xs, y: ys } = data[bi]!;
        // One generator per (attack, eps, batch): results do not depend on what ran before.
        const gen = new E.Generator(((o.seed ?? 0) * 1000003 + Math.round(eps * 255 * 1000) * 7919 + bi * 104729 + hash(attack.name)) >>> 0);
        const out = E.tidy(() => {
          const x = E.tensor(xs, [b.length, o.channels, ds.size, ds.size]);
          const y = E.tensor(ys, [b.length]);
          const target = attack.target === 'least-likely' ? E.tensor(Int32Array.from(b, (_, k) => targets[bi * bs + k]!), [b.length], { dtype: 'int32' }) : null;
          const p = perturb(model, x, y, target, attack, eps, gen);
          return E.noGrad(() => [
            E.argmax(p.logits, -1), E.crossEntropy(p.logits, y, { reduction: 'none' }),
            E.max(E.abs(E.sub(p.xAdv, x)), [1, 2, 3]), E.stack(p.trace),
          ] as Tensor[]);
        });
        const [pred, loss, linf, trace] = await Promise.all(out.map((t) => t.data()));
        E.dispose(out);
        rec.advPred.push(...pred!); rec.loss.push(...loss!); rec.linf.push(...linf!);
        Array.from(trace!).forEach((v, k) => { rec.trace[k] = (rec.trace[k] ?? 0) + v / indices.length; });
        done += cost(attack) * b.length;
        o.onProgress?.(done, total, `${attack.name} eps ${+(eps * 255).toFixed(3)}/255`);
      }
      rec.seconds = (performance.now() - t0) / 1000;
      rec.acc = accuracy(rec.advPred, labels);
      records.push(rec);
    }
    return { indices: [...indices], labels, cleanPred, cleanAcc, records };
  } finally {
    restore();
  }
}

/** The share of predictions equal to the labels. */
export const accuracy = (pred: readonly number[], labels: readonly number[]): number =>
  pred.filter((p, i) => p === labels[i]).length / Math.max(labels.length, 1);

/** The share of images classified correctly clean and under every attack at eps (the per-image worst case). */
export function worstCaseAccuracy(r: RobustnessResult, eps: number): number {
  const recs = r.records.filter((x) => Math.abs(x.eps - eps) < 1e-12);
  return r.labels.filter((y, i) => r.cleanPred[i] === y && recs.every((x) => x.advPred[i] === y)).length / Math.max(r.labels.length, 1);
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
