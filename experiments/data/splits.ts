// Train / validation / test splits: the protocol's (scikit-learn's train_test_split with the
// paper's seeds: 29% held out, then halved), the source's own split, and patient-grouped splits.
import { Generator } from '../../engine/index.js';
import type { ImageDataset, Splits } from './dataset.js';
import { trainTestSplit } from './mt19937.js';

/** The ten seeds of the paper's repeats. */
export const PROTOCOL_SEEDS = [127, 95, 14, 19, 77, 42, 33, 3, 215, 28] as const;

/**
 * The protocol's split: train_test_split(test_size=0.29, random_state=seed), then the 29%
 * through train_test_split(test_size=0.5, random_state=seed) into validation and test.
 */
export function protocolSplit(n: number, seed: number): Splits {
  const [train, held] = trainTestSplit(n, 0.29, seed);
  const [valPos, testPos] = trainTestSplit(held.length, 0.5, seed);
  return { train, val: valPos.map((i) => held[i]!), test: testPos.map((i) => held[i]!), kind: `protocol (seed ${seed}, 71/14.5/14.5)` };
}

/** The split stored with the data (MedMNIST's .npz files). */
export function ownSplit(ds: ImageDataset): Splits {
  if (!ds.split) throw new Error(`medgrad: ${ds.source} has no split of its own; use the protocol or patient split`);
  const pick = (s: string) => ds.split!.flatMap((v, i) => (v === s ? [i] : []));
  return { train: pick('train'), val: pick('val'), test: pick('test'), kind: 'the source\'s own split' };
}

/**
 * Groups (patients) shuffled with the seed and dealt into train / val / test until each holds
 * its share of images (71 / 14.5 / 14.5 by default), so no patient is in two splits.
 */
export function groupedSplit(ds: ImageDataset, seed: number, fractions: [number, number, number] = [0.71, 0.145, 0.145]): Splits {
  if (!ds.groups) throw new Error(`medgrad: ${ds.source} has no patient ids (labels.csv with a patient_id column); cannot split by patient`);
  const byGroup = new Map<string, number[]>();
  ds.groups.forEach((g, i) => { const l = byGroup.get(g); if (l) l.push(i); else byGroup.set(g, [i]); });
  const keys = new Generator(seed).shuffle([...byGroup.keys()].sort());
  const out: Splits = { train: [], val: [], test: [], kind: `patient-grouped (seed ${seed}, ${byGroup.size} patients)` };
  const targets = [fractions[0] * ds.n, (fractions[0] + fractions[1]) * ds.n];
  let assigned = 0;
  for (const k of keys) {
    const idx = byGroup.get(k)!;
    const dest = assigned < targets[0]! ? out.train : assigned < targets[1]! ? out.val : out.test;
    dest.push(...idx);
    assigned += idx.length;
  }
  for (const s of [out.train, out.val, out.test]) s.sort((a, b) => a - b);
  return out;
}

export type SplitMode = 'protocol' | 'own' | 'patient';

export function makeSplits(ds: ImageDataset, mode: SplitMode, seed: number): Splits {
  if (mode === 'own') return ownSplit(ds);
  if (mode === 'patient') return groupedSplit(ds, seed);
  return protocolSplit(ds.n, seed);
}
