// Running a study. The unit of work is (dataset, model, seed); each unit is a chain of cells
// (standard training, its attack evaluation, then adversarial training and its evaluation
// where configured), each cell with a stable id. A finished cell's result is one JSON file in
// OUT/cells/, written atomically, and re-running skips it: a killed study resumes where it
// stopped (a killed training cell resumes from its last epoch). `--shard i/n` takes the units
// dealt to shard i of n (shardUnits), so a scheduler's array job can spread a study over machines sharing OUT; cells are
// claimed with leases (lease.ts), so tasks sharing OUT never run one cell at the same time.
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { randomBytes } from 'node:crypto';
import * as E from '../../engine/node.js';
import type { ModelName } from '../../nn/models.js';
import { loadDataset } from '../data/load.js';
import { makeSplits } from '../data/splits.js';
import type { ImageDataset, Splits } from '../data/dataset.js';
import { createFileExclusive, writeFileAtomic } from '../io/atomic.js';
import { train, type TrainConfig } from '../train/trainer.js';
import type { AttackRecord, RobustnessResult } from '../attacks/evaluate.js';
import type { SanityCheck } from '../attacks/sanity.js';
import { checkDatasets, type DatasetConfig, type StudyConfig } from './config.js';
import { runTransfer, transferAttack, transferId, type TransferCell } from './transfer.js';
import { forwardFlops } from './flops.js';
import { attackCell } from './attack-cell.js';
import { claim, defaultOwner, LeaseLostError, leaseTtlMs, type LeaseOptions, type LeaseRecord } from './lease.js';

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

/**
 * The shard (0-based) of every unit: heaviest first, each to the least-loaded shard (ties: the
 * lowest), by an estimate of its work (forward FLOPs of its model times its regimes). Dealing
 * units round-robin would give each of 10 shards of a 5-model study one architecture, the
 * CBR-LargeT shards finishing hours after the others. Deterministic: every task computes the same.
 */
export function shardUnits(c: StudyConfig, count: number): number[] {
  const units = studyUnits(c);
  const cost = units.map((u) => u.regimes.length * forwardFlops({ model: u.model, imageSize: u.dataset.imageSize, channels: u.dataset.channels, classes: 2, smallInput: c.smallInput }));
  const load = new Array<number>(count).fill(0);
  const shardOf = new Array<number>(units.length).fill(0);
  for (const i of units.map((_, k) => k).sort((a, b) => cost[b]! - cost[a]! || a - b)) {
    const s = load.indexOf(Math.min(...load));
    shardOf[i] = s;
    load[s] = load[s]! + cost[i]!;
  }
  return shardOf;
}

/** The field of a cell file naming its line in cells.log (see runStudy's finish). */
export const FINISH_TOKEN = 'finishToken';

export function readCells(out: string): Cell[] {
  const dir = join(out, 'cells');
  if (!existsSync(dir)) return [];
  const cells = readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const { [FINISH_TOKEN]: _token, ...cell } = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Cell & { [FINISH_TOKEN]?: string };
    return cell as Cell;
  });
  // One result per id, however many files claim it (a copied file, say): counted once.
  return cells.filter((x, i) => cells.findIndex((y) => y.id === x.id) === i);
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

export interface RunStudyOptions {
  shard?: { index: number; count: number }; cacheDir?: string; log?: (line: string) => void;
  /** Cell leases (time, clock, owner) and how often to look again at cells others hold. */
  lease?: LeaseOptions & { pollMs?: number };
}

const lockFile = (out: string, id: string) => join(out, 'locks', `${id}.lock`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const until = (r: LeaseRecord) => new Date(r.expires).toISOString().slice(11, 19);

/**
 * Runs this shard's units, then every transfer cell whose models are all evaluated. Shards may
 * share `out`: each cell is claimed with a lease (lease.ts) and a cell another task holds is left
 * to it; when the shard's own pass is over it polls the cells of its units (and its transfer
 * cells) that others hold until they are finished or their lease expires, which it then takes
 * over. It never waits for cells nobody holds: a transfer cell is run by whichever task finishes
 * its last dependency. A finished cell is created exclusively (the first finisher wins) and
 * logged once to cells.log.
 */
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
  const dealt = shardUnits(c, shard.count);
  const mine = studyUnits(c).filter((_, i) => dealt[i] === shard.index - 1);
  const todo = mine.flatMap((u) => u.regimes.flatMap((r) => [cellId(u, r, 'train'), cellId(u, r, 'attack')]));
  const done = (id: string) => existsSync(cellFile(out, id));
  const pending = todo.filter((id) => !done(id));
  log(`study '${c.name}': ${studyUnits(c).length} units${shard.count > 1 ? `, shard ${shard.index}/${shard.count} has ${mine.length}` : ''}; ${todo.length - pending.length} of ${todo.length} cells already done`);
  const leaseOpts: LeaseOptions = { ...o.lease, ttlMs: o.lease?.ttlMs ?? leaseTtlMs(), log };
  const pollMs = o.lease?.pollMs ?? Math.min(leaseOpts.ttlMs! / 4, 10_000);
  const datasets = new Map<string, ImageDataset>();
  const dataset = async (d: DatasetConfig) => {
    let ds = datasets.get(d.name);
    if (!ds) { ds = await loadStudyDataset(d, o.cacheDir, log); datasets.set(d.name, ds); }
    return ds;
  };
  let ran = 0;
  const t0 = performance.now();
  /**
   * Creates the cell's file unless another task finished it first; true if this one counts.
   * cells.log gets its line first, with a token the cell file repeats: a task killed between the
   * two leaves a line no file confirms (the audit passes over it, and the cell runs again), never
   * a finished cell the log lacks.
   */
  const finish = (cell: Cell): boolean => {
    const token = randomBytes(8).toString('hex');
    appendFileSync(join(out, 'cells.log'), `${new Date().toISOString()}\t${cell.id}\t${token}\t${leaseOpts.owner ?? defaultOwner()}\n`);
    if (!createFileExclusive(cellFile(out, cell.id), JSON.stringify({ ...cell, [FINISH_TOKEN]: token }) + '\n')) { log(`[${cell.id}] was finished by another task meanwhile: keeping that result`); return false; }
    ran++;
    return true;
  };
  const holders = new Map<string, LeaseRecord>();
  /** Runs the unit's unfinished cells in order; false when it stops at a cell another task holds. */
  const runUnit = async (u: Unit): Promise<boolean> => {
    let ds: ImageDataset | undefined, splits: Splits | undefined;
    for (const regime of u.regimes) {
      const dir = join(out, 'runs', u.dataset.name, u.model, `s${u.seed}`, regime);
      for (const stage of ['train', 'attack'] as const) {
        const id = cellId(u, regime, stage);
        if (done(id)) { holders.delete(id); continue; }
        const claimed = claim(lockFile(out, id), id, leaseOpts);
        if (!claimed.lease) { holders.set(id, claimed.holder); return false; }
        holders.delete(id);
        try {
          if (done(id)) continue; // finished between the check and the claim
          if (claimed.tookOver) log(`[${id}] taking over from ${claimed.tookOver.owner} (lease expired at ${until(claimed.tookOver)}, or its process is gone)`);
          ds ??= await dataset(u.dataset);
          splits ??= unitSplits(ds, u.dataset, u.seed);
          const config = trainConfig(c, u, regime, ds, join(out, 'runs', u.dataset.name, u.model, `s${u.seed}`, 'standard', 'best.safetensors'));
          // A task whose lease was taken over (it stalled past the lease time) stops writing into
          // the cell's run folder, and does not finish the cell: the taker's run is the one that counts.
          const lease = claimed.lease;
          if (stage === 'train') {
            const resume = existsSync(join(dir, 'checkpoint.json'));
            log(`[${id}] ${resume ? 'resuming' : 'training'} ${u.model} on ${u.dataset.name} (${regime}, seed ${u.seed}): train ${splits.train.length}, val ${splits.val.length}, test ${splits.test.length}`);
            const r = await train(config, { out: dir, ds, splits, resume, run: { data: u.dataset.data, split: splits.kind, splitSeed: u.seed, count: u.dataset.count ?? 0 }, log, checkOwnership: () => lease.assertHeld() });
            const h = r.state.history;
            lease.assertHeld();
            finish({
              kind: 'train', id, dataset: u.dataset.name, model: u.model, seed: u.seed, regime, test: r.test, bestEpoch: r.state.bestEpoch, epochs: h.length,
              seconds: h.reduce((s, e) => s + e.seconds, 0), imagesPerSecond: h.length ? h[h.length - 1]!.imagesPerSecond : 0,
            });
          } else {
            const cell = await attackCell(c, u, regime, ds, splits, config, dir, id, log, () => lease.assertHeld());
            lease.assertHeld();
            finish(cell);
            log(`study: ${todo.filter(done).length}/${todo.length} cells of this shard done, ${((performance.now() - t0) / 60000).toFixed(1)} min this run`);
          }
        } catch (e) {
          if (!(e instanceof LeaseLostError)) throw e;
          // Held by the taker now: the unit waits for it (its later cells need this one's result).
          log(`[${id}] ${e.message}: leaving the cell to it`);
          holders.set(id, e.taker ?? e.record);
          return false;
        } finally {
          claimed.lease.release();
        }
      }
    }
    return true;
  };
  let waiting: Unit[] = [];
  for (const u of mine) if (!(await runUnit(u))) waiting.push(u);
  const t = { c, out, shard, dataset, finish, leaseOpts, holders, told: new Set<string>(), log };
  let transfersHeld = await transferCells(t);
  let said = '';
  while (waiting.length || transfersHeld) {
    const what = [...holders].map(([id, h]) => `${id} (${h.owner}, lease until ${until(h)})`).join(', ');
    if (what !== said) log(`study: waiting for cells other tasks hold: ${what}; polling every ${(pollMs / 1000).toFixed(1)} s`);
    said = what;
    await sleep(pollMs);
    const still: Unit[] = [];
    for (const u of waiting) if (!(await runUnit(u))) still.push(u);
    waiting = still;
    transfersHeld = await transferCells(t);
  }
  return { ran, skipped: todo.length - pending.length };
}

/**
 * Runs every transfer cell (of any shard) whose standard models are all evaluated and that no
 * other task holds. True while one of this shard's own transfer cells is held by another task.
 */
async function transferCells({ c, out, shard, dataset, finish, leaseOpts, holders, told, log }: {
  c: StudyConfig; out: string; shard: { index: number; count: number }; dataset: (d: DatasetConfig) => Promise<ImageDataset>;
  finish: (cell: Cell) => boolean; leaseOpts: LeaseOptions; holders: Map<string, LeaseRecord>; told: Set<string>; log: (l: string) => void;
}): Promise<boolean> {
  const attack = transferAttack(c);
  if (!attack || c.models.length < 2) return false;
  let ownHeld = false;
  const pairs = c.datasets.flatMap((d) => c.seeds.map((seed) => ({ d, seed })));
  for (const [j, { d, seed }] of pairs.entries()) {
    const id = transferId(d.name, seed);
    if (existsSync(cellFile(out, id))) { holders.delete(id); continue; }
    const missing = c.models.filter((m) => !existsSync(cellFile(out, cellId({ dataset: d, model: m, seed }, 'standard', 'attack'))));
    if (missing.length) {
      if (inShard(j, shard) && !told.has(id)) log(`[${id}] waits for the attack cells of ${missing.join(', ')}; the task that finishes the last of them runs it`);
      told.add(id);
      continue;
    }
    const claimed = claim(lockFile(out, id), id, leaseOpts);
    if (!claimed.lease) {
      if (inShard(j, shard)) { holders.set(id, claimed.holder); ownHeld = true; }
      continue;
    }
    holders.delete(id);
    try {
      if (existsSync(cellFile(out, id))) continue;
      const ds = await dataset(d);
      const first = JSON.parse(readFileSync(cellFile(out, cellId({ dataset: d, model: c.models[0]!, seed }, 'standard', 'attack')), 'utf8')) as AttackCell;
      const sources = c.models.map((model) => {
        const u: Unit = { dataset: d, model, seed, regimes: ['standard'] };
        const runDir = join(out, 'runs', d.name, model, `s${seed}`, 'standard');
        return { model, runDir, config: trainConfig(c, u, 'standard', ds, join(runDir, 'best.safetensors')) };
      });
      log(`[${id}] evaluating each of ${c.models.length} models on the others' ${attack.name} examples`);
      finish(await runTransfer(c, ds, d.name, seed, sources, first.result.indices, first.result.labels, attack));
    } finally {
      claimed.lease.release();
    }
  }
  return ownHeld;
}

export function trainConfig(c: StudyConfig, u: Unit, regime: Regime, ds: ImageDataset, standardWeights: string): TrainConfig {
  const base: TrainConfig = {
    model: u.model, imageSize: u.dataset.imageSize, channels: u.dataset.channels, classes: ds.classes.length, smallInput: c.smallInput,
    epochs: c.train.epochs, batchSize: c.train.batchSize, lr: c.train.lr, lrDropEpoch: c.train.lrDropEpoch,
    l2: u.model === 'cbr-larget' ? 0 : 1e-4, augment: c.train.augment, seed: u.seed, bnMomentum: 1 - c.train.bnMomentum,
    ...(c.train.patience ? { valPatience: c.train.patience } : {}),
    ...(c.train.precision === 'mixed' ? { precision: 'mixed' as const } : {}),
  };
  if (regime === 'standard') return c.train.bnRecalibration ? { ...base, bnRecalibration: c.train.bnRecalibration } : base;
  // Madry fine-tuning keeps the protocol's running statistics (of the adversarial batches it trains on).
  const a = c.adversarial!;
  // Mixed precision has no adversarial training yet: Madry's fine-tuning runs in float32.
  delete base.precision;
  return { ...base, epochs: a.epochs, lr: a.lr, lrDropEpoch: null, adversarial: u.dataset.adversarial, init: standardWeights, selectBy: 'last', patience: a.patience };
}
