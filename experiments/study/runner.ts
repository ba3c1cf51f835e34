// Running a study. The unit of work is (dataset, model, seed); each unit is a chain of cells
// (standard training, its attack evaluation, then adversarial training and its evaluation
// where configured), each cell with a stable id. A finished cell's result is one JSON file in
// OUT/cells/, written atomically, and re-running skips it: a killed study resumes where it
// stopped (a killed training cell resumes from its last epoch). `--shard i/n` takes every n-th
// unit, so a scheduler's array job can spread a study over machines sharing OUT.
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import * as E from '../../engine/node.js';
import type { ModelName } from '../../nn/models.js';
import { loadDataset } from '../data/load.js';
import { makeSplits } from '../data/splits.js';
import type { ImageDataset, Splits } from '../data/dataset.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadTensors } from '../train/checkpoint.js';
import { buildModel, train, type TrainConfig } from '../train/trainer.js';
import { attackedSet, type AttackRecord, type RobustnessResult } from '../attacks/evaluate.js';
import { evaluateWithChecks, type SanityCheck } from '../attacks/sanity.js';
import { checkDatasets, perClassCount, type DatasetConfig, type StudyConfig } from './config.js';
import { runTransfer, saveExamples, transferAttack, transferId, type TransferCell } from './transfer.js';

export type Regime = 'standard' | 'adversarial';

export interface Unit { dataset: DatasetConfig; model: ModelName; seed: number; regimes: Regime[] }

interface CellKey { dataset: string; model: ModelName; seed: number; regime: Regime }
export interface TrainCell extends CellKey { kind: 'train'; id: string; test: { loss: number; acc: number }; bestEpoch: number; epochs: number; seconds: number; imagesPerSecond: number }
export interface AttackCell extends CellKey { kind: 'attack'; id: string; result: RobustnessResult; large: AttackRecord; checks: SanityCheck[]; seconds: number }
export type Cell = TrainCell | AttackCell | TransferCell;

/** Every unit of the study in a fixed order (dataset, seed, model): the basis of ids and shards. */
export function studyUnits(c: StudyConfig): Unit[] {
  return c.datasets.flatMap((dataset) => c.seeds.flatMap((seed, si) => c.models.map((model) => ({
    dataset, model, seed,
    regimes: c.adversarial && c.adversarial.models.includes(model) && si < c.adversarial.seeds ? ['standard', 'adversarial'] as Regime[] : ['standard'] as Regime[],
  }))));
}

export const cellId = (u: { dataset: DatasetConfig | string; model: string; seed: number }, regime: Regime, stage: 'train' | 'attack'): string =>
  `${typeof u.dataset === 'string' ? u.dataset : u.dataset.name}.${u.model}.s${u.seed}.${regime}.${stage}`;

/** Parses "i/n" (1-based i) into a filter of units. */
export function parseShard(s: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new Error(`medgrad study: --shard must be i/n with 1 <= i <= n (e.g. 3/8), got '${s}'`);
  return { index, count };
}

export const inShard = (unitIndex: number, shard: { index: number; count: number }): boolean => unitIndex % shard.count === shard.index - 1;

export function readCells(out: string): Cell[] {
  const dir = join(out, 'cells');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Cell);
}

const cellFile = (out: string, id: string) => join(out, 'cells', `${id}.json`);

/** A study dataset as its config describes it, decoded once into the cache. */
export const loadStudyDataset = (d: DatasetConfig, cacheDir: string | undefined, log?: (line: string) => void): Promise<ImageDataset> =>
  loadDataset(d.data, { imageSize: d.imageSize, channels: 'auto', count: d.count, seed: 0, allowNoGroups: d.allowNoGroups, cacheDir: cacheDir ?? join(homedir(), '.cache', 'medgrad'), log });

/** The splits of a unit, with the config's reductions drawn as a seeded subset. */
export function unitSplits(ds: ImageDataset, d: DatasetConfig, seed: number): Splits {
  const s = makeSplits(ds, d.split ?? (ds.split ? 'own' : ds.groups ? 'patient' : 'protocol'), seed);
  const cap = (idx: number[], max: number | undefined, salt: number) => (max && idx.length > max ? new E.Generator(seed * 31 + salt).shuffle([...idx]).slice(0, max).sort((a, b) => a - b) : idx);
  return { ...s, train: cap(s.train, d.maxTrain, 1), val: cap(s.val, d.maxVal, 2) };
}

export interface RunStudyOptions { shard?: { index: number; count: number }; cacheDir?: string; log?: (line: string) => void }

export async function runStudy(c: StudyConfig, out: string, o: RunStudyOptions = {}): Promise<{ ran: number; skipped: number }> {
  const log = o.log ?? console.log;
  checkDatasets(c);
  mkdirSync(join(out, 'cells'), { recursive: true });
  const cfgFile = join(out, 'study.json');
  const cfgText = JSON.stringify(c, null, 2) + '\n';
  if (existsSync(cfgFile) && readFileSync(cfgFile, 'utf8') !== cfgText) {
    throw new Error(`medgrad study: ${out} holds a study with another configuration (${cfgFile}); use a new output folder or the same config`);
  }
  if (!existsSync(cfgFile)) writeFileAtomic(cfgFile, cfgText);
  const shard = o.shard ?? { index: 1, count: 1 };
  const mine = studyUnits(c).filter((_, i) => inShard(i, shard));
  const todo = mine.flatMap((u) => u.regimes.flatMap((r) => [cellId(u, r, 'train'), cellId(u, r, 'attack')]));
  const pending = todo.filter((id) => !existsSync(cellFile(out, id)));
  log(`study '${c.name}': ${studyUnits(c).length} units${shard.count > 1 ? `, shard ${shard.index}/${shard.count} has ${mine.length}` : ''}; ${todo.length - pending.length} of ${todo.length} cells already done`);
  const datasets = new Map<string, ImageDataset>();
  let ran = 0;
  const t0 = performance.now();
  for (const u of mine) {
    if (u.regimes.every((r) => existsSync(cellFile(out, cellId(u, r, 'attack'))))) continue;
    let ds = datasets.get(u.dataset.name);
    if (!ds) {
      ds = await loadStudyDataset(u.dataset, o.cacheDir, log);
      datasets.set(u.dataset.name, ds);
    }
    const splits = unitSplits(ds, u.dataset, u.seed);
    for (const regime of u.regimes) {
      const dir = join(out, 'runs', u.dataset.name, u.model, `s${u.seed}`, regime);
      const config = trainConfig(c, u, regime, ds, join(out, 'runs', u.dataset.name, u.model, `s${u.seed}`, 'standard', 'best.safetensors'));
      const trainId = cellId(u, regime, 'train');
      if (!existsSync(cellFile(out, trainId))) {
        const resume = existsSync(join(dir, 'checkpoint.json'));
        log(`[${trainId}] ${resume ? 'resuming' : 'training'} ${u.model} on ${u.dataset.name} (${regime}, seed ${u.seed}): train ${splits.train.length}, val ${splits.val.length}, test ${splits.test.length}`);
        const r = await train(config, { out: dir, ds, splits, resume, run: { data: u.dataset.data, split: splits.kind, splitSeed: u.seed, count: u.dataset.count ?? 0 }, log });
        const h = r.state.history;
        const cell: TrainCell = {
          kind: 'train', id: trainId, dataset: u.dataset.name, model: u.model, seed: u.seed, regime, test: r.test, bestEpoch: r.state.bestEpoch, epochs: h.length,
          seconds: h.reduce((s, e) => s + e.seconds, 0), imagesPerSecond: h.length ? h[h.length - 1]!.imagesPerSecond : 0,
        };
        writeFileAtomic(cellFile(out, trainId), JSON.stringify(cell) + '\n');
        ran++;
      }
      const attackId = cellId(u, regime, 'attack');
      if (!existsSync(cellFile(out, attackId))) {
        await attackCell(c, u, regime, ds, splits, config, dir, attackId, out, log);
        ran++;
      }
      const done = todo.filter((id) => existsSync(cellFile(out, id))).length;
      log(`study: ${done}/${todo.length} cells done, ${((performance.now() - t0) / 60000).toFixed(1)} min this run`);
    }
  }
  ran += await transferCells(c, out, shard, datasets, o, log);
  return { ran, skipped: todo.length - pending.length };
}

/** The transfer cell of every (dataset, seed) of this shard whose standard models are all evaluated. */
async function transferCells(c: StudyConfig, out: string, shard: { index: number; count: number }, datasets: Map<string, ImageDataset>, o: RunStudyOptions, log: (l: string) => void): Promise<number> {
  const attack = transferAttack(c);
  if (!attack || c.models.length < 2) return 0;
  let ran = 0;
  const pairs = c.datasets.flatMap((dataset) => c.seeds.map((seed) => ({ dataset, seed })));
  for (const [j, { dataset: d, seed }] of pairs.entries()) {
    const id = transferId(d.name, seed);
    if (!inShard(j, shard) || existsSync(cellFile(out, id))) continue;
    const missing = c.models.filter((m) => !existsSync(cellFile(out, cellId({ dataset: d, model: m, seed }, 'standard', 'attack'))));
    if (missing.length) { log(`[${id}] waits for the attack cells of ${missing.join(', ')} (another shard, or a later run)`); continue; }
    let ds = datasets.get(d.name);
    if (!ds) { ds = await loadStudyDataset(d, o.cacheDir, log); datasets.set(d.name, ds); }
    const first = JSON.parse(readFileSync(cellFile(out, cellId({ dataset: d, model: c.models[0]!, seed }, 'standard', 'attack')), 'utf8')) as AttackCell;
    const sources = c.models.map((model) => {
      const u: Unit = { dataset: d, model, seed, regimes: ['standard'] };
      const runDir = join(out, 'runs', d.name, model, `s${seed}`, 'standard');
      return { model, runDir, config: trainConfig(c, u, 'standard', ds!, join(runDir, 'best.safetensors')) };
    });
    log(`[${id}] evaluating each of ${c.models.length} models on the others' ${attack.name} examples`);
    const cell = await runTransfer(c, ds, d.name, seed, sources, first.result.indices, first.result.labels, attack);
    writeFileAtomic(cellFile(out, id), JSON.stringify(cell) + '\n');
    ran++;
  }
  return ran;
}

export function trainConfig(c: StudyConfig, u: Unit, regime: Regime, ds: ImageDataset, standardWeights: string): TrainConfig {
  const base: TrainConfig = {
    model: u.model, imageSize: u.dataset.imageSize, channels: u.dataset.channels, classes: ds.classes.length, smallInput: c.smallInput,
    epochs: c.train.epochs, batchSize: c.train.batchSize, lr: c.train.lr, lrDropEpoch: c.train.lrDropEpoch,
    l2: u.model === 'cbr-larget' ? 0 : 1e-4, augment: c.train.augment, seed: u.seed, bnMomentum: 1 - c.train.bnMomentum,
    ...(c.train.patience ? { valPatience: c.train.patience } : {}),
  };
  if (regime === 'standard') return base;
  const a = c.adversarial!;
  return { ...base, epochs: a.epochs, lr: a.lr, lrDropEpoch: null, adversarial: u.dataset.adversarial, init: standardWeights, selectBy: 'last', patience: a.patience };
}

async function attackCell(c: StudyConfig, u: Unit, regime: Regime, ds: ImageDataset, splits: Splits, config: TrainConfig, dir: string, id: string, out: string, log: (l: string) => void): Promise<void> {
  const model = buildModel(config);
  const w = loadTensors(join(dir, 'best.safetensors'));
  model.loadStateDict(w); E.dispose(w);
  const idx = attackedSet(ds, splits.test, perClassCount(u.dataset), u.seed);
  log(`[${id}] attacking ${idx.length} test images: ${c.attacks.map((a) => a.name).join(', ')} at eps ${c.eps.map((e) => +(e * 255).toFixed(3)).join(', ')} (/255)`);
  const t0 = performance.now();
  const progress = (done: number, total: number, what: string) => log(`[${id}] ${done}/${total} ${what}; ${((performance.now() - t0) / 60000).toFixed(1)} min`);
  const keep = regime === 'standard' ? transferAttack(c) : undefined;
  const { result, large, checks, images } = await evaluateWithChecks(model, ds, idx, { attacks: c.attacks, eps: c.eps, channels: config.channels, batchSize: c.attackBatch, seed: u.seed, onProgress: progress, sanityEps: c.sanityEps, keepImagesOf: keep?.name });
  if (keep) saveExamples(dir, images, [idx.length, config.channels, ds.size, ds.size], keep.name);
  for (const ch of checks.filter((k) => !k.passed)) log(`[${id}] WARNING sanity check failed: ${ch.check}: ${ch.detail}`);
  const cell: AttackCell = { kind: 'attack', id, dataset: u.dataset.name, model: u.model, seed: u.seed, regime, result, large, checks, seconds: (performance.now() - t0) / 1000 };
  writeFileAtomic(cellFile(out, id), JSON.stringify(cell) + '\n');
  model.dispose();
}
