// From finished cells to the study's outputs: accuracy per (dataset, regime, model, attack,
// eps) as mean +- sample standard deviation over seeds, the worst case over all attacks per
// image, the paper's Table 1 (standard training) and Table 2 (adversarial training) at every
// eps in Markdown and CSV, the curves, the sanity checks and the model-selection recommendation.
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { formatEps, eps255 } from '../attacks/spec.js';
import { accuracyCurves } from '../report/plot.js';
import { worstCaseAccuracy } from '../attacks/evaluate.js';
import { readCells, type AttackCell, type Regime, type TrainCell } from './runner.js';
import type { StudyConfig } from './config.js';

export const CLEAN = 'none';
export const WORST = 'worst case';

export interface Row { dataset: string; regime: Regime; model: string; attack: string; eps: number; mean: number; std: number; values: number[] }

export function meanStd(v: readonly number[]): { mean: number; std: number } {
  const mean = v.reduce((s, x) => s + x, 0) / Math.max(v.length, 1);
  const std = v.length > 1 ? Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
}

/** Accuracy of every cell at every (attack, eps), plus clean and the per-image worst case. */
export function accuracyRows(cells: readonly AttackCell[]): Row[] {
  const acc = new Map<string, { key: Omit<Row, 'mean' | 'std' | 'values'>; values: number[] }>();
  const add = (c: AttackCell, attack: string, eps: number, v: number) => {
    const k = [c.dataset, c.regime, c.model, attack, eps].join('|');
    const e = acc.get(k) ?? { key: { dataset: c.dataset, regime: c.regime, model: c.model, attack, eps }, values: [] };
    e.values.push(v);
    acc.set(k, e);
  };
  for (const c of cells) {
    const r = c.result;
    add(c, CLEAN, 0, r.cleanAcc);
    const epsList = [...new Set(r.records.map((x) => x.eps))];
    for (const rec of r.records) if (rec.eps > 0) add(c, rec.attack, rec.eps, rec.acc);
    for (const eps of epsList.filter((e) => e > 0)) add(c, WORST, eps, worstCaseAccuracy(r, eps));
  }
  return [...acc.values()].map(({ key, values }) => ({ ...key, ...meanStd(values), values }));
}

const pct = (m: number) => (100 * m).toFixed(2);
const cellText = (r: Row | undefined) => (r ? (r.values.length > 1 ? `${pct(r.mean)} ± ${pct(r.std)}` : pct(r.mean)) : '–');

/** One table: rows clean + attacks + worst case at one eps, columns the models. */
export function markdownTable(rows: Row[], dataset: string, regime: Regime, eps: number, models: string[], attacks: string[]): string {
  const at = (m: string, a: string) => rows.find((r) => r.dataset === dataset && r.regime === regime && r.model === m && r.attack === a && (a === CLEAN || Math.abs(r.eps - eps) < 1e-12));
  const present = models.filter((m) => at(m, CLEAN));
  const lines = [`| ${dataset}, eps ${formatEps(eps)} | ${present.join(' | ')} |`, `|---|${present.map(() => '---|').join('')}`];
  for (const a of [CLEAN, ...attacks, WORST]) lines.push(`| ${a} | ${present.map((m) => cellText(at(m, a))).join(' | ')} |`);
  return lines.join('\n');
}

export interface Recommendation { dataset: string; eps: number; margin: number; best: string | null; text: string; table: string }

/**
 * Among standard-trained models whose clean accuracy is within `margin` points of the best,
 * the one with the highest worst-case robust accuracy at eps.
 */
export function recommend(rows: Row[], dataset: string, eps: number, margin: number, models: string[]): Recommendation {
  const get = (m: string, a: string, e: number) => rows.find((r) => r.dataset === dataset && r.regime === 'standard' && r.model === m && r.attack === a && Math.abs(r.eps - e) < 1e-12);
  const have = models.filter((m) => get(m, CLEAN, 0) && get(m, WORST, eps));
  if (!have.length) return { dataset, eps, margin, best: null, text: `No finished standard-trained evaluations for ${dataset} at eps ${formatEps(eps)}.`, table: '' };
  const bestClean = Math.max(...have.map((m) => get(m, CLEAN, 0)!.mean));
  const candidates = have.filter((m) => 100 * (bestClean - get(m, CLEAN, 0)!.mean) <= margin);
  const best = candidates.reduce((a, b) => (get(b, WORST, eps)!.mean > get(a, WORST, eps)!.mean ? b : a));
  const table = [`| model | clean % | robust % (worst case, eps ${formatEps(eps)}) | candidate |`, '|---|---|---|---|',
    ...have.map((m) => `| ${m} | ${cellText(get(m, CLEAN, 0))} | ${cellText(get(m, WORST, eps))} | ${candidates.includes(m) ? (m === best ? 'chosen' : 'yes') : 'no (clean accuracy too low)'} |`)].join('\n');
  const c = get(best, CLEAN, 0)!, w = get(best, WORST, eps)!;
  const text = `${dataset}: choose ${best}: among the ${candidates.length} model(s) whose clean accuracy is within ${margin} points of the best (${pct(bestClean)}%), it keeps the highest accuracy under the worst of all attacks at eps ${formatEps(eps)}: ${pct(w.mean)}% (clean ${pct(c.mean)}%, ${c.values.length} seed(s)).`;
  return { dataset, eps, margin, best, text, table };
}

const csvEscape = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

export interface StudyOutputs { tables: string; csv: string; figures: string[]; recommendations: Recommendation[]; failedChecks: number }

/** Writes tables.md, results.csv, training.csv and figures/*.png from every finished cell in `out`. */
export async function writeStudyOutputs(c: StudyConfig, out: string): Promise<StudyOutputs> {
  const cells = readCells(out);
  const attacks = cells.filter((x): x is AttackCell => x.kind === 'attack');
  const trains = cells.filter((x): x is TrainCell => x.kind === 'train');
  const rows = accuracyRows(attacks);
  const attackNames = c.attacks.map((a) => a.name);
  const md: string[] = [`# Study '${c.name}': results`, '', `Accuracy (%) on the attacked test images against the true labels, mean ± sample standard deviation over seeds (a single seed shows its value). "${WORST}" counts an image as robust only if it is classified correctly clean and under every attack at that eps. Epsilon is written as k/255 (fraction).`, ''];
  const recs: Recommendation[] = [];
  for (const d of c.datasets) {
    for (const regime of ['standard', 'adversarial'] as Regime[]) {
      if (!attacks.some((a) => a.dataset === d.name && a.regime === regime)) continue;
      md.push(`## ${regime === 'standard' ? 'Table 1: standard training' : 'Table 2: adversarial training (Madry PGD, ' + formatEps(d.adversarial.eps) + ', ' + d.adversarial.steps + ' steps)'}, ${d.name}`, '');
      const order = [d.tableEps, ...c.eps.filter((e) => e > 0 && Math.abs(e - d.tableEps) > 1e-12)];
      for (const eps of order) md.push(markdownTable(rows, d.name, regime, eps, c.models, attackNames), '');
    }
    const r = recommend(rows, d.name, d.tableEps, c.recommendMargin, c.models);
    recs.push(r);
    md.push(`## Model selection, ${d.name}`, '', r.text, '', r.table, '');
    const tr = trains.filter((t) => t.dataset === d.name);
    if (tr.length) {
      md.push(`## Training, ${d.name}`, '', '| model | regime | test accuracy % (full test split) | epochs | s per epoch | train img/s |', '|---|---|---|---|---|---|');
      for (const regime of ['standard', 'adversarial'] as Regime[]) {
        for (const m of c.models) {
          const t = tr.filter((x) => x.model === m && x.regime === regime);
          if (!t.length) continue;
          const s = meanStd(t.map((x) => x.test.acc));
          md.push(`| ${m} | ${regime} | ${t.length > 1 ? `${pct(s.mean)} ± ${pct(s.std)}` : pct(s.mean)} | ${t.map((x) => x.epochs).join(', ')} | ${(t.reduce((a, x) => a + x.seconds / Math.max(x.epochs, 1), 0) / t.length).toFixed(0)} | ${(t.reduce((a, x) => a + x.imagesPerSecond, 0) / t.length).toFixed(1)} |`);
        }
      }
      md.push('');
    }
  }
  md.push('## Sanity checks (Carlini et al. 2019)', '');
  let failed = 0;
  for (const a of attacks) {
    for (const ch of a.checks) {
      if (!ch.passed) failed++;
      md.push(`- ${ch.passed ? 'pass' : '**WARNING: failed**'}: ${a.dataset} ${a.model} seed ${a.seed} ${a.regime}: ${ch.check} (${ch.detail})`);
    }
  }
  md.push('');
  const header = 'dataset,regime,model,attack,eps_255,eps,mean_accuracy,std_accuracy,seeds,values';
  const csv = [header, ...rows.map((r) => [r.dataset, r.regime, r.model, r.attack, String(eps255(r.eps)), String(r.eps), r.mean.toFixed(6), r.std.toFixed(6), String(r.values.length), r.values.map((v) => v.toFixed(6)).join(' ')].map(csvEscape).join(','))].join('\n') + '\n';
  const figures: string[] = [];
  for (const d of c.datasets) {
    for (const regime of ['standard', 'adversarial'] as Regime[]) {
      for (const attack of [...attackNames, WORST]) {
        const series = c.models.map((m) => ({
          name: m,
          points: rows.filter((r) => r.dataset === d.name && r.regime === regime && r.model === m && (r.attack === attack || r.attack === CLEAN)).map((r) => ({ eps: r.eps, mean: r.mean, std: r.std })),
        })).filter((s) => s.points.length > 1);
        if (!series.length) continue;
        const file = join('figures', `${d.name}-${regime}-${attack.replace(/[^A-Za-z0-9.-]+/g, '_')}.png`);
        writeFileAtomic(join(out, file), await accuracyCurves(series, { title: `${d.name}, ${regime} training: ${attack}` }));
        figures.push(file);
      }
    }
  }
  md.push('## Figures', '', ...figures.map((f) => `![${f}](${f})`), '');
  const tables = md.join('\n');
  writeFileAtomic(join(out, 'tables.md'), tables);
  writeFileAtomic(join(out, 'results.csv'), csv);
  return { tables, csv, figures, recommendations: recs, failedChecks: failed };
}
