// From finished cells to the study's statistics. Every accuracy is a count of attacked images
// pooled over seeds, with its 95% Wilson interval and the standard deviation of the per-seed
// accuracies; the per-image worst case counts an image as robust only if it is classified
// correctly clean, under every attack at that eps and on every other model's transfer
// examples. Models are compared on the same images (paired): exact McNemar per seed, combined
// over seeds by the stratified exact test, Holm-corrected across each family of comparisons.
import { type RobustnessResult, worstCaseCorrect } from '../attacks/evaluate.js';
import { holm, pairedCompare, sampleStd, stratifiedMcNemar, wilson } from '../stats/index.js';
import type { AttackCell, Regime } from './runner.js';
import type { TransferCell } from './transfer.js';

export const CLEAN = 'none';
export const TRANSFER = 'transfer';
export const WORST = 'worst case';
/** The worst case among the images the model classifies correctly when clean. */
export const WORST_AMONG_CORRECT = 'worst case among clean-correct';

export interface Row {
  dataset: string; regime: Regime; model: string; attack: string; eps: number;
  /** Correct images and images, pooled over seeds. */
  k: number; n: number;
  acc: number; lo: number; hi: number;
  /** Per-seed accuracies and their sample standard deviation (0 with one seed). */
  values: number[]; std: number;
}

/** Per image, whether the model was right under one attack at one eps. */
export interface Outcome { attack: string; eps: number; ok: boolean[] }
/** One evaluated cell's outcomes by key(attack, eps). */
type Outcomes = Map<string, Outcome>;
const key = (attack: string, eps: number) => `${attack}@${eps.toFixed(8)}`;

/** Per-image correctness of one attack cell under every attack, transfer, and the worst case. */
export function outcomes(cell: AttackCell, transfers: readonly TransferCell[] = []): Outcomes {
  const r: RobustnessResult = cell.result;
  const out: Outcomes = new Map();
  const clean = r.labels.map((y, i) => r.cleanPred[i] === y);
  const put = (attack: string, eps: number, ok: boolean[]) => out.set(key(attack, eps), { attack, eps, ok });
  put(CLEAN, 0, clean);
  const epsList = [...new Set(r.records.map((x) => x.eps))].filter((e) => e > 0);
  const mine = cell.regime === 'standard' ? transfers.find((t) => t.dataset === cell.dataset && t.seed === cell.seed) : undefined;
  for (const eps of epsList) {
    for (const rec of r.records.filter((x) => Math.abs(x.eps - eps) < 1e-12)) put(rec.attack, eps, rec.advPred.map((p, i) => p === r.labels[i]));
    let worst = worstCaseCorrect(r, eps);
    const tr = mine?.results.filter((t) => t.target === cell.model && Math.abs(t.eps - eps) < 1e-12) ?? [];
    if (tr.length) {
      const ok = r.labels.map((y, i) => clean[i]! && tr.every((t) => t.pred[i] === y));
      put(TRANSFER, eps, ok);
      worst = worst.map((w, i) => w && ok[i]!);
    }
    put(WORST, eps, worst);
  }
  return out;
}

export interface Evaluated { cell: AttackCell; outcomes: Outcomes }

export function evaluated(cells: readonly AttackCell[], transfers: readonly TransferCell[]): Evaluated[] {
  return cells.map((cell) => ({ cell, outcomes: outcomes(cell, transfers) }));
}

const count = (v: readonly boolean[]) => v.filter(Boolean).length;

/** Every (dataset, regime, model, attack, eps) with its pooled count, interval and seed spread. */
export function accuracyRows(evals: readonly Evaluated[]): Row[] {
  const groups = new Map<string, { head: Omit<Row, 'k' | 'n' | 'acc' | 'lo' | 'hi' | 'values' | 'std'>; parts: Array<{ k: number; n: number }> }>();
  const add = (e: Evaluated, attack: string, eps: number, k: number, n: number) => {
    const c = e.cell;
    const id = [c.dataset, c.regime, c.model, attack, eps.toFixed(8)].join('|');
    const g = groups.get(id) ?? { head: { dataset: c.dataset, regime: c.regime, model: c.model, attack, eps }, parts: [] };
    g.parts.push({ k, n });
    groups.set(id, g);
  };
  for (const e of evals) {
    for (const { attack, eps, ok } of e.outcomes.values()) {
      add(e, attack, eps, count(ok), ok.length);
      if (attack === WORST) add(e, WORST_AMONG_CORRECT, eps, count(ok), count(e.outcomes.get(key(CLEAN, 0))!.ok));
    }
  }
  return [...groups.values()].map(({ head, parts }) => {
    const k = parts.reduce((s, p) => s + p.k, 0), n = parts.reduce((s, p) => s + p.n, 0);
    const w = wilson(k, n);
    const values = parts.map((p) => (p.n ? p.k / p.n : 0));
    return { ...head, k, n, acc: w.p, lo: w.lo, hi: w.hi, values, std: values.length > 1 ? sampleStd(values) : 0 };
  });
}

export interface Comparison { a: string; b: string; eps: number; seeds: number; n: number; accA: number; accB: number; diff: number; lo: number; hi: number; bCount: number; cCount: number; p: number; pHolm: number; significant: boolean }

/**
 * Paired comparisons of the worst-case robustness of `models` at eps (standard training): every
 * pair, on the images both were attacked on, seed by seed; p-values Holm-adjusted over the family.
 */
export function compareModels(evals: readonly Evaluated[], dataset: string, regime: Regime, eps: number, pairs: ReadonlyArray<readonly [string, string]>, alpha = 0.05): Comparison[] {
  const of = (m: string) => evals.filter((e) => e.cell.dataset === dataset && e.cell.regime === regime && e.cell.model === m);
  const raw = pairs.flatMap(([a, b]) => {
    const strata: Array<{ b: number; c: number }> = [];
    const allA: boolean[] = [], allB: boolean[] = [];
    for (const ea of of(a)) {
      const eb = of(b).find((e) => e.cell.seed === ea.cell.seed);
      const wa = ea.outcomes.get(key(WORST, eps))?.ok, wb = eb?.outcomes.get(key(WORST, eps))?.ok;
      if (!wa || !wb || wa.length !== wb.length) continue;
      const pc = pairedCompare(wa, wb);
      strata.push({ b: pc.b, c: pc.c });
      allA.push(...wa); allB.push(...wb);
    }
    if (!strata.length) return [];
    const t = stratifiedMcNemar(strata), pooled = pairedCompare(allA, allB);
    return [{ a, b, eps, seeds: strata.length, n: allA.length, accA: pooled.accA, accB: pooled.accB, diff: pooled.diff, lo: pooled.lo, hi: pooled.hi, bCount: t.b, cCount: t.c, p: t.p, pHolm: 0, significant: false }];
  });
  const adj = holm(raw.map((r) => r.p));
  return raw.map((r, i) => ({ ...r, pHolm: adj[i]!, significant: adj[i]! < alpha }));
}

/** Every unordered pair of models, in the given order. */
export const allPairs = (models: readonly string[]): Array<[string, string]> => models.flatMap((a, i) => models.slice(i + 1).map((b) => [a, b] as [string, string]));

export interface Recommendation { dataset: string; eps: number; margin: number; best: string | null; text: string; comparisons: Comparison[] }

const pct = (v: number) => (100 * v).toFixed(1);

/**
 * Among standard-trained models whose clean accuracy is within `margin` points of the best, the
 * one with the highest worst-case accuracy at eps, named only if it beats every other candidate
 * significantly (paired tests, Holm-corrected at 5%); otherwise "no significant difference".
 * Clean accuracy is the full test split's (`testAccuracy`, mean over seeds) where known: a few
 * dozen attacked images cannot resolve a margin of a few points.
 */
export function recommend(rows: readonly Row[], evals: readonly Evaluated[], dataset: string, eps: number, margin: number, models: readonly string[], testAccuracy: ReadonlyMap<string, number> = new Map()): Recommendation {
  const get = (m: string, a: string, e: number) => rows.find((r) => r.dataset === dataset && r.regime === 'standard' && r.model === m && r.attack === a && Math.abs(r.eps - e) < 1e-12);
  const have = models.filter((m) => get(m, CLEAN, 0) && get(m, WORST, eps));
  const none = { dataset, eps, margin, best: null, comparisons: [] };
  if (!have.length) return { ...none, text: `No finished standard-trained evaluations for ${dataset} at eps ${+(eps * 255).toFixed(3)}/255.` };
  const full = have.every((m) => testAccuracy.has(m));
  const clean = (m: string) => (full ? testAccuracy.get(m)! : get(m, CLEAN, 0)!.acc);
  const bestClean = Math.max(...have.map(clean));
  const candidates = have.filter((m) => 100 * (bestClean - clean(m)) <= margin);
  const top = candidates.reduce((a, b) => (get(b, WORST, eps)!.acc > get(a, WORST, eps)!.acc ? b : a));
  const w = get(top, WORST, eps)!;
  const head = `${dataset}, eps ${+(eps * 255).toFixed(3)}/255: ${candidates.length} model(s) within ${margin} points of the best clean accuracy (${pct(bestClean)}%${full ? ' on the full test split' : ' on the attacked images'}): ${candidates.map((m) => `${m} ${pct(clean(m))}%`).join(', ')}.`;
  if (candidates.length === 1) return { ...none, best: top, text: `${head} Choose ${top} (the only candidate): worst-case robust accuracy ${pct(w.acc)}% [${pct(w.lo)}, ${pct(w.hi)}] on ${w.n} images.` };
  const comparisons = compareModels(evals, dataset, 'standard', eps, candidates.filter((m) => m !== top).map((m) => [top, m] as const));
  const beaten = comparisons.filter((c) => c.significant && c.diff > 0);
  const detail = comparisons.map((c) => `${c.b}: ${c.diff >= 0 ? '+' : ''}${pct(c.diff)} points [${pct(c.lo)}, ${pct(c.hi)}], ${c.bCount} vs ${c.cCount} discordant images, Holm p = ${c.pHolm.toPrecision(2)}`).join('; ');
  if (beaten.length === comparisons.length) {
    return { ...none, best: top, comparisons, text: `${head} Choose ${top}: worst-case robust accuracy ${pct(w.acc)}% [${pct(w.lo)}, ${pct(w.hi)}] on ${w.n} images (${w.values.length} seed(s)), significantly above every other candidate (paired exact McNemar stratified by seed, Holm-corrected, 5%): ${detail}.` };
  }
  const tied = comparisons.filter((c) => !(c.significant && c.diff > 0)).map((c) => c.b);
  return { ...none, comparisons, text: `${head} No significant difference: ${top} has the highest worst-case robust accuracy (${pct(w.acc)}% [${pct(w.lo)}, ${pct(w.hi)}], ${w.n} images), but it is not significantly above ${tied.join(', ')} (paired exact McNemar stratified by seed, Holm-corrected, 5%): ${detail}. The data do not single out one model.` };
}
