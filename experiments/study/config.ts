// A study: models x datasets x seeds x {standard, adversarial} training x attacks x eps grid.
// Configs are JSON files or named presets; every value is checked, and a bad one is an error
// naming the option. Epsilons are written in 1/255 units (as the paper writes them) unless
// `epsUnit` says 'fraction'; inside the program they are fractions.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { MODEL_NAMES, type ModelName } from '../../nn/models.js';
import { attackConfig, type AttackConfig, parseEps } from '../attacks/spec.js';
import { PRESETS } from './presets.js';
import type { SplitMode } from '../data/splits.js';

export { paperAttacks, PRESETS, strongSuite } from './presets.js';

export interface DatasetConfig {
  /** Short name used in ids, tables and folder names. */
  name: string;
  /** A dataset spec as `medgrad train --data` takes it. */
  data: string;
  imageSize: number;
  /** Model input channels (the protocol: 3, grey repeated). */
  channels: 1 | 3;
  /** Default: the source's own split when it has one, else patient, else protocol. */
  split?: SplitMode;
  /** generated: data only: number of images. */
  count?: number;
  /** Use at most this many training / validation images (a seeded subset; reductions for CPU runs). */
  maxTrain?: number;
  maxVal?: number;
  /** Split a folder whose labels.csv has no patient ids by image (one patient may then land in two splits). */
  allowNoGroups?: boolean;
  /** The attacked set: this many test images per class (the paper: 150), or 'all': every test image. */
  perClass: number | 'all';
  /** Madry training attack for this dataset (the protocol's: chest 3/255, 7 steps; eps/10 steps). */
  adversarial: { eps: number; steps: number; stepFraction: number };
  /** The eps (fraction) of this dataset's Table 1 / 2 and of the recommendation. */
  tableEps: number;
}

export interface StudyConfig {
  name: string;
  datasets: DatasetConfig[];
  models: ModelName[];
  /** CBR-LargeT 'same' padding and ResNet global pooling, for images below 217 / 32 px. */
  smallInput: boolean;
  /** Run seeds: split seed for protocol splits, and the seed of initialisation, data order and the attacked set. */
  seeds: number[];
  /** bnMomentum in Keras' convention: the share of the running statistics kept per step (the protocol's 0.99). */
  /** `patience`: early stopping, after this many epochs without a better validation accuracy (absent: all epochs run). */
  /** `bnRecalibration`: before each validation, batch-norm statistics recomputed on this many training images (nn/update-bn.ts; absent: the running averages). */
  /** `precision`: 'mixed' trains the standard models in mixed precision (nn/amp.ts; absent: float32; adversarial training stays float32). */
  train: { epochs: number; batchSize: number; lr: number; bnMomentum: number; lrDropEpoch: number | null; augment: boolean; patience?: number; bnRecalibration?: number; precision?: 'mixed' };
  /** Adversarial training of some models with the first `seeds` seeds; null for none. */
  adversarial: { models: ModelName[]; seeds: number; epochs: number; lr: number; patience: number } | null;
  /** In evaluation order: the paper's attacks, then the strong suite (strongSuite()). */
  attacks: AttackConfig[];
  /** Evaluate every standard model on the untargeted PGD examples of the other models of its seed. */
  transfer: boolean;
  /** Epsilons (fractions), 0 first: clean accuracy. */
  eps: number[];
  /** The large eps of the "near 0% accuracy" sanity check (margin-loss PGD), fraction. */
  sanityEps: number;
  /** Model selection: candidates within `margin` (accuracy points, percent) of the best clean accuracy. */
  recommendMargin: number;
  attackBatch: number;
}

type Json = Record<string, unknown>;

function pick<T>(o: Json, key: string, where: string, check: (v: unknown) => v is T, what: string, dflt?: T): T {
  const v = o[key];
  if (v === undefined) {
    if (dflt !== undefined) return dflt;
    throw new Error(`medgrad study: ${where}: '${key}' is required (${what})`);
  }
  if (!check(v)) throw new Error(`medgrad study: ${where}: '${key}' must be ${what}, got ${JSON.stringify(v)}`);
  return v;
}
const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isPosInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) > 0;
const isNonNegInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isModels = (v: unknown): v is ModelName[] => Array.isArray(v) && v.length > 0 && v.every((m) => MODEL_NAMES.includes(m as ModelName));

/**
 * A study config from a JSON file, filled in from the `quick` preset's defaults where a key is
 * absent (`"preset": "pneumonia"` starts from another preset instead).
 */
export function loadStudyConfig(file: string): StudyConfig {
  if (!existsSync(file)) throw new Error(`medgrad study: config file ${file} does not exist`);
  let raw: Json;
  try { raw = JSON.parse(readFileSync(file, 'utf8')) as Json; } catch (e) { throw new Error(`medgrad study: ${file} is not valid JSON: ${(e as Error).message}`); }
  return parseStudyConfig(raw, file);
}

export function parseStudyConfig(raw: Json, where = 'config'): StudyConfig {
  const base = PRESETS[pick(raw, 'preset', where, isStr, `one of ${Object.keys(PRESETS).join(', ')}`, 'quick')];
  if (!base) throw new Error(`medgrad study: ${where}: unknown preset '${String(raw.preset)}' (have ${Object.keys(PRESETS).join(', ')})`);
  const c = base();
  const unit = pick(raw, 'epsUnit', where, (v): v is '255' | 'fraction' => v === '255' || v === 'fraction', "'255' or 'fraction'", '255');
  const epsOf = (v: unknown, key: string): number => parseEps([v as string | number], unit, `${where}: ${key}`)[0]!;
  if (raw.name !== undefined) c.name = pick(raw, 'name', where, isStr, 'a non-empty string');
  if (raw.models !== undefined) c.models = pick(raw, 'models', where, isModels, `a list of ${MODEL_NAMES.join(', ')}`);
  if (raw.smallInput !== undefined) c.smallInput = pick(raw, 'smallInput', where, isBool, 'true or false');
  if (raw.seeds !== undefined) c.seeds = pick(raw, 'seeds', where, (v): v is number[] => Array.isArray(v) && v.length > 0 && v.every((s) => Number.isInteger(s)), 'a non-empty list of integers');
  if (raw.eps !== undefined) {
    const list = pick(raw, 'eps', where, (v): v is Array<number | string> => Array.isArray(v) && v.length > 0, 'a non-empty list of epsilons');
    c.eps = [...new Set(parseEps(list, unit, `${where}: eps`))].sort((a, b) => a - b);
  }
  if (raw.sanityEps !== undefined) c.sanityEps = epsOf(raw.sanityEps, 'sanityEps');
  if (raw.recommendMargin !== undefined) c.recommendMargin = pick(raw, 'recommendMargin', where, isNum, 'a number of accuracy points');
  if (raw.attackBatch !== undefined) c.attackBatch = pick(raw, 'attackBatch', where, isPosInt, 'a positive integer');
  if (raw.attacks !== undefined) {
    const list = pick(raw, 'attacks', where, (v): v is unknown[] => Array.isArray(v) && v.length > 0, 'a non-empty list of attack names or {name, steps, restarts, stepFraction, cleanFirst, cascade}');
    c.attacks = list.map((a, i) => {
      if (typeof a === 'string') return attackConfig(a);
      const o = a as Json;
      const at = `${where}: attacks[${i}]`;
      const opt = <T>(key: string, check: (v: unknown) => v is T, what: string): T | undefined => (o[key] === undefined ? undefined : pick(o, key, at, check, what));
      return attackConfig(pick(o, 'name', at, isStr, 'an attack name'), {
        steps: opt('steps', isPosInt, 'a positive integer'), restarts: opt('restarts', isPosInt, 'a positive integer'),
        stepFraction: opt('stepFraction', isNum, 'a number'), cleanFirst: opt('cleanFirst', isBool, 'true or false'), cascade: opt('cascade', isBool, 'true or false'),
      });
    });
    const names = c.attacks.map((a) => a.name);
    if (new Set(names).size !== names.length) throw new Error(`medgrad study: ${where}: attacks must differ, got ${names.join(', ')}`);
  }
  if (raw.transfer !== undefined) c.transfer = pick(raw, 'transfer', where, isBool, 'true or false');
  if (raw.train !== undefined) {
    const t = raw.train as Json, at = `${where}: train`;
    c.train = {
      epochs: pick(t, 'epochs', at, isPosInt, 'a positive integer', c.train.epochs),
      batchSize: pick(t, 'batchSize', at, isPosInt, 'a positive integer', c.train.batchSize),
      lr: pick(t, 'lr', at, isNum, 'a number', c.train.lr),
      bnMomentum: pick(t, 'bnMomentum', at, (v): v is number => isNum(v) && v >= 0 && v < 1, "Keras' momentum (share of the running statistics kept), in [0, 1)", c.train.bnMomentum),
      lrDropEpoch: t.lrDropEpoch === undefined ? c.train.lrDropEpoch : t.lrDropEpoch === null ? null : pick(t, 'lrDropEpoch', at, isPosInt, 'a positive integer or null'),
      augment: pick(t, 'augment', at, isBool, 'true or false', c.train.augment),
    };
    // Absent, not undefined, when off: a config's JSON (and so a resumed study's check) is unchanged.
    const patience = t.patience === undefined ? c.train.patience ?? null : t.patience === null ? null : pick(t, 'patience', at, isPosInt, 'a positive integer (epochs without a better validation accuracy) or null');
    if (patience !== null) c.train.patience = patience;
    const recal = t.bnRecalibration === undefined ? c.train.bnRecalibration ?? 0 : pick(t, 'bnRecalibration', at, isNonNegInt, 'a non-negative integer (training images whose batch statistics replace the running ones before each validation; 0: off)');
    if (recal > 0) c.train.bnRecalibration = recal; else delete c.train.bnRecalibration;
    const precision = t.precision === undefined ? c.train.precision ?? 'float32' : pick(t, 'precision', at, (v): v is string => v === 'float32' || v === 'mixed', "'float32' or 'mixed'");
    if (precision === 'mixed') c.train.precision = 'mixed';
    else delete c.train.precision;
  }
  if (raw.adversarial !== undefined) {
    if (raw.adversarial === null) c.adversarial = null;
    else {
      const a = raw.adversarial as Json, at = `${where}: adversarial`;
      const d = c.adversarial ?? { models: ['resnet8'], seeds: 1, epochs: 1, lr: 1e-3, patience: 1 };
      c.adversarial = {
        models: pick(a, 'models', at, isModels, `a list of ${MODEL_NAMES.join(', ')}`, d.models),
        seeds: pick(a, 'seeds', at, isPosInt, 'a positive integer (how many of the seeds)', d.seeds),
        epochs: pick(a, 'epochs', at, isPosInt, 'a positive integer', d.epochs),
        lr: pick(a, 'lr', at, isNum, 'a number', d.lr),
        patience: pick(a, 'patience', at, isPosInt, 'a positive integer', d.patience),
      };
    }
  }
  if (raw.datasets !== undefined) {
    const list = pick(raw, 'datasets', where, (v): v is Json[] => Array.isArray(v) && v.length > 0, 'a non-empty list of datasets');
    c.datasets = list.map((d, i) => {
      const at = `${where}: datasets[${i}]`;
      const adv = (d.adversarial ?? {}) as Json;
      const split = d.split === undefined ? undefined : pick(d, 'split', at, (v): v is SplitMode => v === 'protocol' || v === 'own' || v === 'patient', "'protocol', 'own' or 'patient'");
      return {
        name: pick(d, 'name', at, (v): v is string => isStr(v) && /^[A-Za-z0-9_.-]+$/.test(v), 'a name of letters, digits, _ . -'),
        data: pick(d, 'data', at, isStr, 'a dataset path or generated:NAME'),
        imageSize: pick(d, 'imageSize', at, (v): v is number => isPosInt(v) && v >= 8, 'an integer >= 8'),
        channels: pick(d, 'channels', at, (v): v is 1 | 3 => v === 1 || v === 3, '1 or 3', 3),
        split,
        count: d.count === undefined ? undefined : pick(d, 'count', at, isPosInt, 'a positive integer'),
        maxTrain: d.maxTrain === undefined ? undefined : pick(d, 'maxTrain', at, isPosInt, 'a positive integer'),
        maxVal: d.maxVal === undefined ? undefined : pick(d, 'maxVal', at, isPosInt, 'a positive integer'),
        allowNoGroups: d.allowNoGroups === undefined ? undefined : pick(d, 'allowNoGroups', at, isBool, 'true or false'),
        perClass: pick(d, 'perClass', at, (v): v is number | 'all' => isPosInt(v) || v === 'all', "a positive integer or 'all' (every test image)", 150),
        adversarial: {
          eps: adv.eps === undefined ? 3 / 255 : epsOf(adv.eps, `datasets[${i}].adversarial.eps`),
          steps: pick(adv, 'steps', `${at}.adversarial`, isPosInt, 'a positive integer', 7),
          stepFraction: pick(adv, 'stepFraction', `${at}.adversarial`, isNum, 'a number', 0.1),
        },
        tableEps: d.tableEps === undefined ? 1 / 255 : epsOf(d.tableEps, `datasets[${i}].tableEps`),
      };
    });
  }
  const names = c.datasets.map((d) => d.name);
  if (new Set(names).size !== names.length) throw new Error(`medgrad study: ${where}: dataset names must be unique, got ${names.join(', ')}`);
  if (!c.eps.includes(0)) c.eps.unshift(0);
  for (const d of c.datasets) {
    if (!c.eps.some((e) => Math.abs(e - d.tableEps) < 1e-9)) throw new Error(`medgrad study: ${where}: dataset '${d.name}': tableEps ${+(d.tableEps * 255).toFixed(4)}/255 is not in the eps grid`);
  }
  return c;
}

/** Test images attacked per class: 'all' is every one (attackedSet takes what a class has). */
export const perClassCount = (d: DatasetConfig): number => (d.perClass === 'all' ? Number.POSITIVE_INFINITY : d.perClass);

/**
 * Stops a study before any work when a dataset it reads is missing, naming the path: the
 * larger presets read the real data sets beside the project (../shared/datasets).
 */
export function checkDatasets(c: StudyConfig): void {
  for (const d of c.datasets) {
    if (d.data.startsWith('generated:') || existsSync(resolve(d.data))) continue;
    const shared = d.data.includes('shared/datasets') ? '; this preset reads the real data sets kept beside the project (../shared/datasets, laid out as its README says): run from the project root, or give a --config whose datasets[].data names your copy' : '';
    throw new Error(`medgrad study: '${c.name}': dataset '${d.name}' reads ${d.data} (${resolve(d.data)}), which does not exist${shared}`);
  }
}
