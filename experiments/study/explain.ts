// Interpreting a study's models (the paper's Figures 3 to 6): for the first finished seed of
// every (dataset, model, regime), saliency maps of a few attacked images before and after the
// paper's PGD at the dataset's table eps, and a t-SNE of penultimate-layer features of the
// clean and adversarial images at every eps with k-NN decision regions and a margin proxy.
// Each entry is written to OUT/explain/<cell>.json with its figures, and reused on a re-run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as E from '../../engine/node.js';
import { CbrLargeT, ResNet } from '../../nn/models.js';
import type { ImageDataset } from '../data/dataset.js';
import { makeBatch } from '../data/augment.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadTensors } from '../train/checkpoint.js';
import { buildModel } from '../train/trainer.js';
import { attackedSet } from '../attacks/evaluate.js';
import { type Classifier, freeze, leastLikely } from '../attacks/gradient.js';
import { perturb } from '../attacks/pgd.js';
import { attackConfig, type AttackConfig, formatEps } from '../attacks/spec.js';
import { saliency } from '../explain/saliency.js';
import { saliencyFigure } from '../explain/figures.js';
import { tsne } from '../explain/tsne.js';
import { marginProxy, regionsFigure } from '../explain/regions.js';
import { perClassCount, type StudyConfig } from './config.js';
import { loadStudyDataset, readCells, trainConfig, unitSplits, type AttackCell, type Regime } from './runner.js';

export interface ExplainEntry {
  id: string; dataset: string; model: string; seed: number; regime: Regime; attack: string;
  saliency: { file: string; width: number; height: number; eps: number };
  regions: { file: string; width: number; height: number; kl: number; points: number };
  margins: Array<{ eps: number; margin: number; relative: number; flipped: number }>;
}

/** The model's features before the classifier (CBR-LargeT's pooled 512, the ResNets' flattened pool) and its logits, in one forward pass. */
export function penultimate(model: Classifier, x: E.Tensor): { features: E.Tensor; logits: E.Tensor } {
  if (!(model instanceof CbrLargeT || model instanceof ResNet)) throw new Error('medgrad: penultimate features are defined for the study\'s models (CBR-LargeT, ResNet)');
  const features = model instanceof CbrLargeT ? model.features512(x) : model.features(x);
  return { features, logits: model.fc!.forward(features) };
}

/** The paper's PGD if the study runs it, else its first iterative attack. */
const explainAttack = (c: StudyConfig): AttackConfig => c.attacks.find((a) => a.name.startsWith('pgd-ll')) ?? c.attacks.find((a) => a.kind !== 'fgsm') ?? attackConfig('pgd-ll');

export async function explainStudy(c: StudyConfig, out: string, o: { cacheDir?: string; images?: number; log?: (l: string) => void } = {}): Promise<ExplainEntry[]> {
  const log = o.log ?? console.log;
  const cells = readCells(out).filter((x): x is AttackCell => x.kind === 'attack');
  const entries: ExplainEntry[] = [];
  const attack = explainAttack(c);
  for (const d of c.datasets) {
    let ds: ImageDataset | null = null;
    for (const regime of ['standard', 'adversarial'] as Regime[]) {
      for (const model of c.models) {
        const cell = cells.filter((x) => x.dataset === d.name && x.model === model && x.regime === regime).sort((a, b) => c.seeds.indexOf(a.seed) - c.seeds.indexOf(b.seed))[0];
        if (!cell) continue;
        const id = cell.id.replace(/\.attack$/, '');
        const file = join(out, 'explain', `${id}.json`);
        if (existsSync(file)) { entries.push(JSON.parse(readFileSync(file, 'utf8')) as ExplainEntry); continue; }
        ds ??= await loadStudyDataset(d, o.cacheDir);
        log(`[explain ${id}] saliency and t-SNE`);
        const unit = { dataset: d, model, seed: cell.seed, regimes: [regime] };
        const config = trainConfig(c, unit, regime, ds, '');
        const net = buildModel(config);
        const w = loadTensors(join(out, 'runs', d.name, model, `s${cell.seed}`, regime, 'best.safetensors'));
        net.loadStateDict(w); E.dispose(w);
        const idx = attackedSet(ds, unitSplits(ds, d, cell.seed).test, perClassCount(d), cell.seed);
        const entry = await explainModel(net, ds, idx, { ...config, attack, eps: c.eps.filter((e) => e > 0), tableEps: d.tableEps, images: o.images ?? 4, out, id, title: `${d.name}, ${model}, ${regime}` });
        writeFileAtomic(file, JSON.stringify({ ...entry, dataset: d.name, model, seed: cell.seed, regime }) + '\n');
        entries.push({ ...entry, dataset: d.name, model, seed: cell.seed, regime });
        net.dispose();
      }
    }
  }
  return entries;
}

interface ExplainModelOptions { channels: number; attack: AttackConfig; eps: number[]; tableEps: number; images: number; out: string; id: string; title: string; seed: number }

async function explainModel(model: Classifier, ds: ImageDataset, idx: number[], o: ExplainModelOptions): Promise<Omit<ExplainEntry, 'dataset' | 'model' | 'seed' | 'regime'>> {
  const { x: xs, y: ys } = makeBatch(ds, idx, { channels: o.channels });
  const n = idx.length, shape = [n, o.channels, ds.size, ds.size];
  const x = E.tensor(xs, shape);
  const y = E.tensor(ys, [n]);
  const restore = freeze(model);
  // Clean and adversarial images at every eps, with predictions and features.
  const sets: Array<{ eps: number; x: E.Tensor }> = [{ eps: 0, x }];
  const target = E.noGrad(() => E.tidy(() => leastLikely(model.forward(x))));
  for (const eps of o.eps) {
    sets.push({ eps, x: E.tidy(() => perturb(model, x, y, o.attack.target === 'least-likely' ? target : null, o.attack, eps, new E.Generator(o.seed * 7 + Math.round(eps * 255 * 100))).xAdv) });
  }
  const feats: Float32Array[] = [], preds: number[][] = [];
  let dims = 0;
  for (const s of sets) {
    const [f, p] = E.noGrad(() => E.tidy(() => { const { features, logits } = penultimate(model, s.x); return [features, E.argmax(logits, -1)]; }));
    dims = f!.shape[1]!;
    feats.push(await f!.data() as Float32Array); preds.push(Array.from(await p!.data()));
    E.dispose([f, p]);
  }
  restore();
  // Saliency: a few images, classes taken in turn, clean and attacked at the table eps.
  const byClass = ds.classes.map((_, c) => Array.from(ys).flatMap((v, i) => (v === c ? [i] : [])));
  const chosen = Array.from({ length: n }, (_, r) => byClass[r % byClass.length]![Math.floor(r / byClass.length)]).filter((i): i is number => i !== undefined).slice(0, o.images);
  const k = chosen.length;
  const per = o.channels * ds.size * ds.size, plane = ds.size * ds.size;
  const adv = sets.find((s) => Math.abs(s.eps - o.tableEps) < 1e-12) ?? sets[1]!;
  const pick = (t: E.Tensor) => E.tidy(() => E.stack(chosen.map((i) => E.slice(t, [i, 0, 0, 0], [i + 1, null, null, null]).reshape(t.shape.slice(1)))));
  const [xc, xa] = [pick(x), pick(adv.x)];
  const sc = await saliency(model, xc), sa = await saliency(model, xa);
  const [cleanPix, advPix] = [await xc.data(), await xa.data()];
  E.dispose([xc, xa]);
  const fig = await saliencyFigure(Array.from({ length: k }, (_, i) => ({
    clean: cleanPix.subarray(i * per, (i + 1) * per) as Float32Array, adversarial: advPix.subarray(i * per, (i + 1) * per) as Float32Array,
    cleanMap: sc.maps.subarray(i * plane, (i + 1) * plane), adversarialMap: sa.maps.subarray(i * plane, (i + 1) * plane),
    label: ds.classes[ys[chosen[i]!]!]!, cleanPred: ds.classes[sc.pred[i]!]!, cleanConfidence: sc.confidence[i]!,
    adversarialPred: ds.classes[sa.pred[i]!]!, adversarialConfidence: sa.confidence[i]!,
  })), { channels: o.channels, size: ds.size, title: `${o.title}: ${o.attack.name} at ${formatEps(adv.eps)}` });
  const salFile = join('figures', `saliency-${o.id}.png`);
  writeFileAtomic(join(o.out, salFile), fig.png);
  // t-SNE of all clean and adversarial features together, k-NN regions, margins per eps.
  const all = new Float32Array(sets.length * n * dims);
  feats.forEach((f, k2) => all.set(f, k2 * n * dims));
  const ft = E.tensor(all, [sets.length * n, dims]);
  const emb = await tsne(ft, { perplexity: Math.min(30, Math.floor((sets.length * n - 1) / 3)), seed: o.seed });
  ft.dispose();
  const points = sets.flatMap((s, k2) => Array.from({ length: n }, (_, i) => ({ x: emb.y[2 * (k2 * n + i)]!, y: emb.y[2 * (k2 * n + i) + 1]!, pred: preds[k2]![i]!, adversarial: s.eps > 0 })));
  const size = 480;
  const png = await regionsFigure(points, ds.classes, { title: `${o.title}: clean + ${o.attack.name}, eps ${o.eps.map((e) => +(e * 255).toFixed(3)).join(', ')}/255`, size });
  const regFile = join('figures', `regions-${o.id}.png`);
  writeFileAtomic(join(o.out, regFile), png);
  const margins = sets.slice(1).map((s, k2) => {
    const f = new Float32Array(2 * n * dims);
    f.set(feats[0]!, 0); f.set(feats[k2 + 1]!, n * dims);
    const m = marginProxy(f, dims, [...preds[0]!, ...preds[k2 + 1]!], [...idx.map(() => true), ...idx.map(() => false)]);
    return { eps: s.eps, ...m, flipped: preds[k2 + 1]!.filter((p, i) => p !== preds[0]![i]).length / n };
  });
  for (const s of sets.slice(1)) s.x.dispose();
  E.dispose([x, y, target]);
  return {
    id: o.id, attack: o.attack.name,
    saliency: { file: salFile, width: fig.width, height: fig.height, eps: adv.eps },
    regions: { file: regFile, width: size, height: size + 70, kl: emb.kl, points: points.length },
    margins,
  };
}
