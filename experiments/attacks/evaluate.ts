// Robustness of one model on a set of images: every attack at every epsilon, in the given order,
// with per-image results (clean prediction and logit margin, adversarial prediction, loss,
// perturbation norm) so that the worst case over attacks and paired comparisons can be
// computed, the per-step share of images with a zero input gradient, and the attacked set
// drawn as the protocol draws it. Attacks marked `cascade` (Square) run only on the images that
// every earlier attack at that eps left correct, as AutoAttack orders its attacks.
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import type { ImageDataset } from '../data/dataset.js';
import { makeBatch } from '../data/augment.js';
import { type Classifier, freeze, leastLikely } from './gradient.js';
import { marginLoss, runnerUp } from './losses.js';
import { attackBatch } from './driver.js';
import type { AttackConfig } from './spec.js';

/** advPred of an image a cascaded attack did not attack, because an earlier attack (or the clean image) already fooled the model. */
export const NOT_ATTACKED = -1;

export interface AttackRecord {
  attack: string;
  /** Fraction of [0, 1]. */
  eps: number;
  /** Accuracy against the true labels (for a cascaded attack: after it and every attack before it). */
  acc: number;
  /** Per image; NOT_ATTACKED where a cascaded attack skipped an image already fooled. */
  advPred: number[];
  /** Cross-entropy against the true label at the adversarial image (NaN where not attacked). */
  loss: number[];
  /** max |x_adv - x| per image. */
  linf: number[];
  /** Mean attack objective before each step and after the last (attacks that run every image every step). */
  trace: number[];
  /** Per step: the share of the images attacked at that step whose input gradient was exactly zero. */
  zeroGrad: number[];
  /** How many images the attack ran on. */
  attacked: number;
  seconds: number;
}

export interface RobustnessResult {
  /** Indices of the attacked images in the dataset. */
  indices: number[];
  labels: number[];
  cleanPred: number[];
  /** Clean logit margin z_y - max_{k != y} z_k per image (positive: correct). */
  cleanMargin: number[];
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
  ds.classes.forEach((_, c) => { for (const i of gen.shuffle(pool.filter((j) => ds.y[j] === c)).slice(0, perClass)) out.push(i); });
  return out.sort((a, b) => a - b);
}

export interface EvaluateOptions {
  attacks: AttackConfig[];
  /** Epsilons as fractions; 0 is clean accuracy. */
  eps: number[];
  channels: number;
  batchSize?: number;
  seed?: number;
  /** Keep this attack's adversarial images (for transfer to other models). */
  keepImagesOf?: string;
  /** Called after each batch with the (attack, eps) jobs done and the total. */
  onProgress?: (done: number, total: number, what: string) => void;
}

export interface Evaluation { result: RobustnessResult; images: Map<number, Float32Array> }

export async function evaluateRobustness(model: Classifier, ds: ImageDataset, indices: readonly number[], o: EvaluateOptions): Promise<Evaluation> {
  const bs = o.batchSize ?? 50;
  const labels = indices.map((i) => ds.y[i]!);
  const shape = (n: number) => [n, o.channels, ds.size, ds.size];
  const per = o.channels * ds.size * ds.size;
  const restore = freeze(model);
  try {
    const all = makeBatch(ds, indices, { channels: o.channels });
    const clean = await cleanPass(model, all.x, labels, shape, bs);
    const cleanAcc = accuracy(clean.pred, labels);
    const records: AttackRecord[] = o.eps.includes(0)
      ? o.attacks.map((a) => ({ attack: a.name, eps: 0, acc: cleanAcc, advPred: [...clean.pred], loss: [], linf: indices.map(() => 0), trace: [], zeroGrad: [], attacked: 0, seconds: 0 }))
      : [];
    const images = new Map<number, Float32Array>();
    const epsList = o.eps.filter((e) => e > 0);
    const total = epsList.length * o.attacks.length;
    let done = 0;
    for (const eps of epsList) {
      // Per image: still correct under every attack so far at this eps.
      const robust = clean.pred.map((p, i) => p === labels[i]);
      for (const attack of o.attacks) {
        const t0 = performance.now();
        const chosen = indices.map((_, i) => i).filter((i) => !attack.cascade || robust[i]);
        const rec: AttackRecord = { attack: attack.name, eps, acc: 0, advPred: labels.map(() => NOT_ATTACKED), loss: labels.map(() => NaN), linf: labels.map(() => 0), trace: [], zeroGrad: [], attacked: chosen.length, seconds: 0 };
        const zero: number[] = [], active: number[] = [];
        const keep = o.keepImagesOf === attack.name ? new Float32Array(indices.length * per) : null;
        for (let k = 0; k < chosen.length; k += bs) {
          const b = chosen.slice(k, k + bs);
          // One generator per (attack, eps, batch): results do not depend on what ran before.
          const gen = new E.Generator(((o.seed ?? 0) * 1000003 + Math.round(eps * 255 * 1000) * 7919 + (k / bs) * 104729 + hash(attack.name)) >>> 0);
          const xb = new Float32Array(b.length * per);
          b.forEach((i, j) => xb.set(all.x.subarray(i * per, (i + 1) * per), j * per));
          const targetOf = attack.target === 'least-likely' ? clean.leastLikely : attack.target === 'runner-up' ? clean.runnerUp : null;
          const [x, y, target] = [E.tensor(xb, shape(b.length)), E.tensor(Int32Array.from(b, (i) => labels[i]!), [b.length], { dtype: 'int32' }),
            targetOf ? E.tensor(Int32Array.from(b, (i) => targetOf[i]!), [b.length], { dtype: 'int32' }) : null];
          try {
            const r = await attackBatch(model, x, y, target, attack, eps, gen, { keepImages: !!keep });
            b.forEach((i, j) => { rec.advPred[i] = r.pred[j]!; rec.loss[i] = r.loss[j]!; rec.linf[i] = r.linf[j]!; });
            if (keep && r.xAdv) b.forEach((i, j) => keep.set(r.xAdv!.subarray(j * per, (j + 1) * per), i * per));
            r.zero.forEach((z, s) => { zero[s] = (zero[s] ?? 0) + z; active[s] = (active[s] ?? 0) + r.active[s]!; });
            r.trace.forEach((v, s) => { rec.trace[s] = (rec.trace[s] ?? 0) + v / chosen.length; });
          } finally {
            E.dispose([x, y, ...(target ? [target] : [])]);
          }
        }
        rec.zeroGrad = zero.map((z, s) => z / Math.max(active[s]!, 1));
        rec.acc = accuracy(rec.advPred, labels);
        rec.seconds = (performance.now() - t0) / 1000;
        rec.advPred.forEach((p, i) => { if (p !== NOT_ATTACKED && p !== labels[i]) robust[i] = false; });
        if (keep) images.set(eps, keep);
        records.push(rec);
        o.onProgress?.(++done, total, `${attack.name} at ${+(eps * 255).toFixed(3)}/255 on ${chosen.length} images: ${(100 * rec.acc).toFixed(1)}% correct, ${rec.seconds.toFixed(1)} s`);
      }
    }
    return { result: { indices: [...indices], labels, cleanPred: clean.pred, cleanMargin: clean.margin, cleanAcc, records }, images };
  } finally {
    restore();
  }
}

/** Clean predictions, logit margins and the targets of targeted attacks, batch by batch. */
async function cleanPass(model: Classifier, x: Float32Array, labels: number[], shape: (n: number) => number[], bs: number) {
  const n = labels.length, per = x.length / Math.max(n, 1);
  const out = { pred: [] as number[], margin: [] as number[], leastLikely: [] as number[], runnerUp: [] as number[] };
  for (let k = 0; k < n; k += bs) {
    const m = Math.min(bs, n - k);
    const ts = E.noGrad(() => E.tidy(() => {
      const y = E.tensor(Int32Array.from(labels.slice(k, k + m)), [m], { dtype: 'int32' });
      const logits = model.forward(E.tensor(x.subarray(k * per, (k + m) * per), shape(m)));
      return [E.argmax(logits, -1), E.neg(marginLoss(logits, y)), leastLikely(logits), runnerUp(logits, y)];
    }));
    const [p, mg, ll, ru] = await Promise.all(ts.map((t: Tensor) => t.data()));
    E.dispose(ts);
    out.pred.push(...p!); out.margin.push(...mg!); out.leastLikely.push(...ll!); out.runnerUp.push(...ru!);
  }
  return out;
}

/** The share of predictions equal to the labels. */
export const accuracy = (pred: readonly number[], labels: readonly number[]): number =>
  pred.filter((p, i) => p === labels[i]).length / Math.max(labels.length, 1);

/** Per image: correct clean and under every attack at eps (the per-image worst case; a cascaded attack's skipped image was already broken). */
export function worstCaseCorrect(r: RobustnessResult, eps: number): boolean[] {
  const recs = r.records.filter((x) => Math.abs(x.eps - eps) < 1e-12);
  return r.labels.map((y, i) => r.cleanPred[i] === y && recs.every((x) => x.advPred[i] === y));
}

function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
