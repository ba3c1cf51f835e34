// `medgrad study --plan`: what a study costs before it runs. Every cell's work is counted in
// FLOPs from the models' layer shapes (flops.ts) and the split sizes of its data (read from the
// labels, no pixels decoded); a short timed training step of each model on this adapter gives
// its rate; the time on one machine and on n machines follows from the runner's assignment of
// units to shards (shardUnits). The attack counts are upper bounds:
// restarts and Square's queries are counted on every attacked image, where the study runs them
// only on the images not yet broken; training counts every epoch, where early stopping may end
// sooner.
import * as E from '../../engine/node.js';
import { createModel, type ModelName } from '../../nn/models.js';
import { attackedSet } from '../attacks/evaluate.js';
import { sanityAttack } from '../attacks/sanity.js';
import type { AttackConfig } from '../attacks/spec.js';
import { describeDataset } from '../data/load.js';
import type { ImageDataset } from '../data/dataset.js';
import { adamFor, trainStep } from '../train/step.js';
import { checkDatasets, perClassCount, type StudyConfig } from './config.js';
import { ATTACK_STEP, forwardFlops, TRAIN_STEP, type ModelShape } from './flops.js';
import { cellId, inShard, shardUnits, studyUnits, unitSplits, type Regime } from './runner.js';
import { transferAttack, transferId } from './transfer.js';

export interface CellPlan {
  id: string; kind: 'train' | 'attack' | 'transfer'; dataset: string; model: ModelName | null; regime: Regime | null; seed: number;
  /** Training images (train cells) or attacked images (attack and transfer cells). */
  images: number;
  /** Upper bound: every restart and cascaded attack (Square) on every attacked image. */
  flops: number;
  seconds: number;
  /** Lower bound: one run of each attack that is not cascaded (restarts and Square on no image: every image broken at once). */
  flopsLow: number;
  secondsLow: number;
}

export interface Rate { model: ModelName; imageSize: number; batch: number; steps: number; seconds: number; flopsPerSecond: number }

export interface StudyPlan {
  study: string; units: number; cells: CellPlan[];
  forwardFlops: Array<{ dataset: string; model: ModelName; imageSize: number; flops: number }>;
  rates: Rate[];
  totalFlops: number;
  totalFlopsLow: number;
  /** Wall time with the study sharded over n machines: the slowest shard's total. */
  machines: Array<{ count: number; seconds: number; secondsLow: number }>;
}

export interface PlanOptions {
  /** Machine counts to price (1 is always included). */
  machines?: number[];
  /** Image side for the timed steps (default the dataset's; smaller is faster, and the rate is then applied to the full size's FLOPs). */
  rateSize?: number;
  /** Batch of the timed steps (default: the study's, capped at about 20 GFLOP per step). */
  rateBatch?: number;
  /** Seconds of timed steps per model (at least one step runs). */
  rateSeconds?: number;
  /** Rates given instead of measured (FLOP/s by model), e.g. another machine's; no GPU is needed then. */
  rates?: Partial<Record<ModelName, number>>;
  log?: (line: string) => void;
}

/** FLOPs of one timed step when the batch is chosen for it. */
const STEP_WORK = 2e10;

/** Forward passes per attacked image of one attack at one eps: steps of 2 (forward + input gradient) and a final prediction per run. */
export function attackPasses(a: AttackConfig): number {
  if (a.kind === 'square') return a.steps + 1;
  return a.restarts * (ATTACK_STEP * a.steps + 1);
}

/** The least an attack can cost per image: its first run, or nothing for a cascaded attack (every image already broken). */
export function attackPassesLow(a: AttackConfig): number {
  return a.cascade ? 0 : a.kind === 'square' ? a.steps + 1 : ATTACK_STEP * a.steps + 1;
}

/** Times a few training steps of one model on random data and returns its rate in FLOP/s. */
export async function measureRate(shape: ModelShape, batch: number, seconds: number): Promise<Rate> {
  const model = createModel(shape.model, { imageSize: shape.imageSize, inChannels: shape.channels, classes: shape.classes, smallInput: shape.smallInput, seed: 0 });
  const x = E.rand([batch, shape.channels, shape.imageSize, shape.imageSize], { generator: new E.Generator(0) });
  const y = E.randint(0, shape.classes, [batch], { generator: new E.Generator(1) });
  const opt = adamFor(model, { l2: 1e-4 });
  model.train();
  try {
    const step = async () => { const l = trainStep(model, opt, x, y); await l.data(); l.dispose(); };
    await step(); // compiles every pipeline; not timed
    let steps = 0;
    const t0 = performance.now();
    do { await step(); steps++; } while (performance.now() - t0 < seconds * 1000);
    const s = (performance.now() - t0) / 1000;
    return { model: shape.model, imageSize: shape.imageSize, batch, steps, seconds: s, flopsPerSecond: (TRAIN_STEP * forwardFlops(shape) * batch * steps) / s };
  } finally {
    E.dispose([x, y]); opt.dispose(); model.dispose();
  }
}

/** The plan of a study: cells with their FLOPs and time, and the time on 1 and n machines. */
export async function planStudy(c: StudyConfig, o: PlanOptions = {}): Promise<StudyPlan> {
  checkDatasets(c);
  const log = o.log ?? (() => {});
  const data = new Map<string, ImageDataset>();
  for (const d of c.datasets) {
    log(`reading the labels of ${d.data}`);
    data.set(d.name, await describeDataset(d.data, { imageSize: d.imageSize, channels: 'auto', count: d.count, seed: 0, allowNoGroups: d.allowNoGroups }));
  }
  const shapeOf = (dataset: string, model: ModelName): ModelShape => {
    const d = c.datasets.find((x) => x.name === dataset)!;
    return { model, imageSize: d.imageSize, channels: d.channels, classes: data.get(dataset)!.classes.length, smallInput: c.smallInput };
  };
  const fwd = c.datasets.flatMap((d) => c.models.map((model) => ({ dataset: d.name, model, imageSize: d.imageSize, flops: forwardFlops(shapeOf(d.name, model)) })));
  const F = (dataset: string, model: ModelName) => fwd.find((f) => f.dataset === dataset && f.model === model)!.flops;

  // One rate per model, measured at the first dataset's image size (or --rate-size when smaller).
  const rates: Rate[] = [];
  for (const model of c.models) {
    const given = o.rates?.[model];
    if (given !== undefined) { rates.push({ model, imageSize: 0, batch: 0, steps: 0, seconds: 0, flopsPerSecond: given }); continue; }
    const full = shapeOf(c.datasets[0]!.name, model);
    const size = Math.min(full.imageSize, o.rateSize ?? full.imageSize);
    // Below the original architectures' minimum input the small-input variants are timed (the same layers).
    const small = full.smallInput || (model === 'cbr-larget' ? size < 217 : size < 32);
    const shape = { ...full, imageSize: size, smallInput: small };
    // The study's batch where a step is cheap (small batches of small images time the dispatch
    // overhead, not the arithmetic), else as many images as make about 20 GFLOP (a few seconds here).
    // At least 2: batch norm in training mode needs two values per channel (CBR-LargeT ends at 1x1).
    const batch = o.rateBatch ?? Math.max(2, Math.min(c.train.batchSize, Math.floor(STEP_WORK / (TRAIN_STEP * forwardFlops(shape)))));
    log(`timing a training step of ${model} at ${size} px, batch ${batch}${small && !full.smallInput ? ' (small-input variant)' : ''}`);
    rates.push(await measureRate(shape, batch, o.rateSeconds ?? 2));
  }
  const rate = (model: ModelName) => rates.find((r) => r.model === model)!.flopsPerSecond;

  const cells: CellPlan[] = [];
  const units = studyUnits(c);
  const unitOfCell: number[] = [];
  units.forEach((u, ui) => {
    const ds = data.get(u.dataset.name)!;
    const s = unitSplits(ds, u.dataset, u.seed);
    const attacked = attackedSet(ds, s.test, perClassCount(u.dataset), u.seed).length;
    const f = F(u.dataset.name, u.model);
    const epsCount = c.eps.filter((e) => e > 0).length;
    const attackPerImage = 1 + epsCount * c.attacks.reduce((t, a) => t + attackPasses(a), 0) + attackPasses(sanityAttack());
    const attackLow = 1 + epsCount * c.attacks.reduce((t, a) => t + attackPassesLow(a), 0) + attackPassesLow(sanityAttack());
    for (const regime of u.regimes) {
      const adv = regime === 'adversarial' ? c.adversarial! : null;
      const perTrainImage = TRAIN_STEP + (adv ? ATTACK_STEP * u.dataset.adversarial.steps : 0);
      const trainPasses = (adv ? adv.epochs : c.train.epochs) * (perTrainImage * s.train.length + s.val.length) + s.test.length;
      const common = { dataset: u.dataset.name, model: u.model, regime, seed: u.seed };
      const tf = trainPasses * f, hi = attackPerImage * attacked * f, lo = attackLow * attacked * f;
      cells.push({ id: cellId(u, regime, 'train'), kind: 'train', ...common, images: s.train.length, flops: tf, seconds: tf / rate(u.model), flopsLow: tf, secondsLow: tf / rate(u.model) });
      cells.push({ id: cellId(u, regime, 'attack'), kind: 'attack', ...common, images: attacked, flops: hi, seconds: hi / rate(u.model), flopsLow: lo, secondsLow: lo / rate(u.model) });
      unitOfCell.push(ui, ui);
    }
  });
  // Transfer: every standard model predicts every other model's examples at every eps > 0.
  const transferShard: number[] = [];
  if (transferAttack(c) && c.models.length > 1) {
    c.datasets.flatMap((d) => c.seeds.map((seed) => ({ d, seed }))).forEach(({ d, seed }, j) => {
      const ds = data.get(d.name)!;
      const n = attackedSet(ds, unitSplits(ds, d, seed).test, perClassCount(d), seed).length;
      const per = (c.models.length - 1) * c.eps.filter((e) => e > 0).length * n;
      const flops = c.models.reduce((t, m) => t + per * F(d.name, m), 0);
      const seconds = c.models.reduce((t, m) => t + (per * F(d.name, m)) / rate(m), 0);
      cells.push({ id: transferId(d.name, seed), kind: 'transfer', dataset: d.name, model: null, regime: null, seed, images: n, flops, seconds, flopsLow: flops, secondsLow: seconds });
      transferShard.push(j);
    });
  }
  const counts = [...new Set([1, ...(o.machines ?? [])])].sort((a, b) => a - b);
  const machines = counts.map((count) => {
    const load = new Array<number>(count).fill(0), low = new Array<number>(count).fill(0);
    const dealt = shardUnits(c, count);
    cells.forEach((cell, k) => {
      const shard = k < unitOfCell.length ? dealt[unitOfCell[k]!]!
        : Array.from({ length: count }, (_, i) => i).find((i) => inShard(transferShard[k - unitOfCell.length]!, { index: i + 1, count }))!;
      load[shard] = load[shard]! + cell.seconds;
      low[shard] = low[shard]! + cell.secondsLow;
    });
    return { count, seconds: Math.max(...load), secondsLow: Math.max(...low) };
  });
  return { study: c.name, units: units.length, cells, forwardFlops: fwd, rates, totalFlops: cells.reduce((t, x) => t + x.flops, 0), totalFlopsLow: cells.reduce((t, x) => t + x.flopsLow, 0), machines };
}

const si = (v: number): string => {
  const units: Array<[number, string]> = [[1e18, 'E'], [1e15, 'P'], [1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'k']];
  const [d, u] = units.find(([x]) => v >= x) ?? [1, ''];
  return `${(v / d).toPrecision(3)} ${u}`;
};

/** "42 s", "12.5 min", "3.21 h", "4.2 days", "3.1 years": a duration at a readable scale. */
export function duration(s: number): string {
  if (s < 90) return `${s.toFixed(0)} s`;
  if (s < 5400) return `${(s / 60).toFixed(1)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(2)} h`;
  if (s < 2 * 31557600) return `${(s / 86400).toFixed(1)} days`;
  return `${(s / 31557600).toFixed(1)} years`;
}

/** The plan as a table: forward FLOPs, rates, one row per group of like cells, and the totals. */
export function formatPlan(p: StudyPlan, device: string): string {
  const timed = p.rates.some((r) => r.steps > 0);
  const lines = [`plan of study '${p.study}': ${p.units} units, ${p.cells.length} cells; ${timed ? `rates measured on ${device}` : 'rates given (--rates)'}`];
  lines.push('forward FLOPs per image (convolutions and dense layers, 2 per multiply-add):');
  for (const f of p.forwardFlops) lines.push(`  ${f.dataset} ${f.imageSize} px  ${f.model.padEnd(11)}${`${si(f.flops)}FLOP`.padStart(12)}`);
  lines.push('rate of a training step (3 forward passes of FLOPs per image), applied to every cell of the model:');
  for (const r of p.rates) {
    lines.push(r.steps ? `  ${r.model.padEnd(11)}${`${si(r.flopsPerSecond)}FLOP/s`.padStart(14)}  (${r.steps} steps of batch ${r.batch} at ${r.imageSize} px in ${r.seconds.toFixed(1)} s)`
      : `  ${r.model.padEnd(11)}${`${si(r.flopsPerSecond)}FLOP/s`.padStart(14)}  (given)`);
  }
  const groups = new Map<string, CellPlan[]>();
  for (const c of p.cells) {
    const key = c.kind === 'transfer' ? `${c.dataset} transfer` : `${c.dataset} ${c.model} ${c.regime} ${c.kind}`;
    groups.set(key, [...(groups.get(key) ?? []), c]);
  }
  const range = (lo: string, hi: string) => (lo === hi ? hi : `${lo} - ${hi}`);
  const rows = [['cells', 'n', 'images', 'FLOP/cell', 'time/cell', 'time, all n']];
  for (const [key, cs] of groups) {
    const mean = (f: (c: CellPlan) => number) => cs.reduce((t, c) => t + f(c), 0) / cs.length;
    const [slo, shi] = [mean((c) => c.secondsLow), mean((c) => c.seconds)];
    rows.push([key, String(cs.length), mean((c) => c.images).toFixed(0), `${range(si(mean((c) => c.flopsLow)), si(mean((c) => c.flops)))}FLOP`,
      range(duration(slo), duration(shi)), range(duration(slo * cs.length), duration(shi * cs.length))]);
  }
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  for (const r of rows) lines.push(r.map((v, j) => (j === 0 ? v.padEnd(widths[j]!) : v.padStart(widths[j]!))).join('  '));
  lines.push(`total: ${range(si(p.totalFlopsLow), si(p.totalFlops))}FLOP; ${p.machines.map((m) => `${range(duration(m.secondsLow), duration(m.seconds))} on ${m.count} machine${m.count > 1 ? `s (--shard i/${m.count})` : ''}`).join(', ')}`);
  lines.push('(ranges: Square and the restarts after the first run on no attacked image (all broken at once) - on every one; training counts every epoch, the training split\'s images; a machine shared with other jobs makes the rates lower bounds)');
  return lines.join('\n');
}
