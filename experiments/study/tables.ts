// The study's outputs from its finished cells: the paper's Table 1 (standard training) and
// Table 2 (adversarial training) at every eps with intervals, the paired model comparisons, the
// sanity checks, the clean-margin histograms and the recommendation, as tables.md, results.csv
// (long format) and figures/*.svg (Vega-Lite, inlined by the report).
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { formatEps, eps255 } from '../attacks/spec.js';
import { sanityChecks } from '../attacks/sanity.js';
import { accuracyCurvesSvg, marginHistogramSvg, pairedComparisonSvg } from '../report/figures.js';
import { readCells, type AttackCell, type Regime, type TrainCell } from './runner.js';
import type { TransferCell } from './transfer.js';
import type { StudyConfig } from './config.js';
import { accuracyRows, allPairs, CLEAN, compareModels, type Comparison, evaluated, type Evaluated, recommend, type Recommendation, type Row, TRANSFER, WORST, WORST_AMONG_CORRECT } from './summary.js';

export { CLEAN, TRANSFER, WORST, WORST_AMONG_CORRECT, type Row, type Recommendation };

const pct = (v: number) => (100 * v).toFixed(1);
/** "76.7 [64.6, 85.6] ±7.6 (n=60)": pooled accuracy, 95% Wilson interval, seed std. */
export const cellText = (r: Row | undefined): string =>
  (r ? `${pct(r.acc)} [${pct(r.lo)}, ${pct(r.hi)}]${r.values.length > 1 ? ` ±${pct(r.std)}` : ''}` : '–');

const REGIMES: Regime[] = ['standard', 'adversarial'];

/** One table: rows clean, attacks, transfer and worst case at one eps; columns the models. */
export function markdownTable(rows: readonly Row[], dataset: string, regime: Regime, eps: number, models: readonly string[], attacks: readonly string[]): string {
  const at = (m: string, a: string) => rows.find((r) => r.dataset === dataset && r.regime === regime && r.model === m && r.attack === a && (a === CLEAN || Math.abs(r.eps - eps) < 1e-12));
  const present = models.filter((m) => at(m, CLEAN));
  const n = present.map((m) => at(m, CLEAN)!.n);
  const lines = [`| ${dataset}, eps ${formatEps(eps)} | ${present.map((m, i) => `${m} (n=${n[i]})`).join(' | ')} |`, `|---|${present.map(() => '---|').join('')}`];
  for (const a of [CLEAN, ...attacks, TRANSFER, WORST, WORST_AMONG_CORRECT]) {
    if (!present.some((m) => at(m, a))) continue;
    lines.push(`| ${a} | ${present.map((m) => cellText(at(m, a))).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** The pairwise comparison table, with the ordering written only where the test supports it. */
export function comparisonTable(cs: readonly Comparison[]): string {
  const lines = ['| A vs B | A % | B % | A - B (points) [95% CI] | only A right | only B right | p (exact, stratified) | p (Holm) | reading |', '|---|---|---|---|---|---|---|---|---|'];
  for (const c of cs) {
    const reading = c.significant ? (c.diff > 0 ? `${c.a} > ${c.b}` : `${c.b} > ${c.a}`) : 'no significant difference';
    lines.push(`| ${c.a} vs ${c.b} | ${pct(c.accA)} | ${pct(c.accB)} | ${c.diff >= 0 ? '+' : ''}${pct(c.diff)} [${pct(c.lo)}, ${pct(c.hi)}] | ${c.bCount} | ${c.cCount} | ${c.p.toPrecision(3)} | ${c.pHolm.toPrecision(3)} | ${reading} |`);
  }
  return lines.join('\n');
}

const csvEscape = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
const slug = (s: string) => s.replace(/[^A-Za-z0-9.-]+/g, '_');

export interface StudyOutputs { tables: string; csv: string; figures: string[]; recommendations: Recommendation[]; failedChecks: number }

/** Writes tables.md, results.csv and figures/*.svg from every finished cell in `out`. */
export async function writeStudyOutputs(c: StudyConfig, out: string): Promise<StudyOutputs> {
  const cells = readCells(out);
  const attackCells = cells.filter((x): x is AttackCell => x.kind === 'attack');
  const transfers = cells.filter((x): x is TransferCell => x.kind === 'transfer');
  const trains = cells.filter((x): x is TrainCell => x.kind === 'train');
  const evals = evaluated(attackCells, transfers);
  const rows = accuracyRows(evals);
  const attackNames = c.attacks.map((a) => a.name);
  const figures: string[] = [];
  const figure = async (file: string, svg: Promise<string>) => { writeFileAtomic(join(out, file), await svg); figures.push(file); return `![${file}](${file})`; };
  const md: string[] = [`# Study '${c.name}': results`, '', readingGuide(c), ''];
  const recs: Recommendation[] = [];
  for (const d of c.datasets) {
    for (const regime of REGIMES) {
      if (!attackCells.some((a) => a.dataset === d.name && a.regime === regime)) continue;
      md.push(`## ${regime === 'standard' ? 'Table 1: standard training' : `Table 2: adversarial training (Madry PGD, ${formatEps(d.adversarial.eps)}, ${d.adversarial.steps} steps)`}, ${d.name}`, '');
      const order = [d.tableEps, ...c.eps.filter((e) => e > 0 && Math.abs(e - d.tableEps) > 1e-12)];
      for (const eps of order) md.push(markdownTable(rows, d.name, regime, eps, c.models, attackNames), '');
      const models = c.models.filter((m) => attackCells.some((a) => a.dataset === d.name && a.regime === regime && a.model === m));
      if (models.length > 1) {
        md.push(`### Paired comparisons of the worst case, ${d.name}, ${regime} training`, '');
        for (const eps of order) {
          const cs = compareModels(evals, d.name, regime, eps, allPairs(models));
          md.push(`At eps ${formatEps(eps)} (${cs.length} comparisons, Holm-corrected together):`, '', comparisonTable(cs), '');
          if (Math.abs(eps - d.tableEps) < 1e-12 && cs.length) {
            md.push(await figure(join('figures', `${d.name}-${regime}-paired.svg`), pairedComparisonSvg(cs.map((x) => ({ a: x.a, b: x.b, diff: x.diff, lo: x.lo, hi: x.hi, p: x.pHolm, significant: x.significant })),
              { title: `${d.name}, ${regime}: worst-case accuracy differences at ${formatEps(eps)}`, subtitle: 'paired on the same images; 95% intervals; filled: significant after Holm' })), '');
          }
        }
      }
    }
    const tested = trains.filter((t) => t.dataset === d.name && t.regime === 'standard');
    const testAccuracy = new Map(c.models.flatMap((m) => { const a = tested.filter((t) => t.model === m).map((t) => t.test.acc); return a.length ? [[m, a.reduce((x, y) => x + y, 0) / a.length] as const] : []; }));
    const r = recommend(rows, evals, d.name, d.tableEps, c.recommendMargin, c.models, testAccuracy);
    recs.push(r);
    md.push(`## Model selection, ${d.name}`, '', r.text, '');
    md.push(...trainingTable(trains.filter((t) => t.dataset === d.name), c.models));
    const margins = attackCells.filter((a) => a.dataset === d.name && a.regime === 'standard').flatMap((a) => a.result.cleanMargin.map((m) => ({ model: a.model, margin: m })));
    if (margins.length) {
      md.push(`## Clean logit margins of the attacked images, ${d.name}`, '', 'z_y - max_{k != y} z_k at the clean image (negative: misclassified). Very large margins are where float32 cross-entropy used to saturate; the attacks now climb margin and CE without rounding.', '');
      md.push(await figure(join('figures', `${d.name}-margins.svg`), marginHistogramSvg(margins, { title: `${d.name}: clean logit margins (standard training)` })), '');
    }
  }
  let failed = 0;
  md.push('## Sanity checks (Carlini et al. 2019; AutoAttack)', '');
  for (const a of attackCells) {
    // Recomputed from the stored results, so a report always applies the current checks.
    for (const ch of sanityChecks(a.result, c.attacks, a.large)) {
      if (!ch.passed) failed++;
      md.push(`- ${ch.passed ? 'pass' : '**FAILED**'}: ${a.dataset} ${a.model} seed ${a.seed} ${a.regime}: ${ch.check} (${ch.detail})`);
    }
  }
  const total = md.filter((l) => /^- (pass|\*\*FAILED\*\*): /.test(l)).length;
  md.splice(4, 0, failed ? `**${failed} of ${total} sanity checks FAILED** (listed under "Sanity checks"): the numbers they concern are not to be trusted as they stand.` : `All ${total} sanity checks passed.`, '');
  md.push('', '## Figures', '');
  for (const d of c.datasets) {
    for (const regime of REGIMES) {
      for (const attack of [...attackNames, TRANSFER, WORST]) {
        const series = c.models.map((m) => ({
          name: m,
          points: rows.filter((r) => r.dataset === d.name && r.regime === regime && r.model === m && (r.attack === attack || r.attack === CLEAN)).map((r) => ({ eps: r.eps, acc: r.acc, lo: r.lo, hi: r.hi, std: r.values.length > 1 ? r.std : undefined })),
        })).filter((s) => s.points.length > 1);
        if (!series.length) continue;
        md.push(await figure(join('figures', `${d.name}-${regime}-${slug(attack)}.svg`), accuracyCurvesSvg(series, { title: `${d.name}, ${regime} training: ${attack}`, subtitle: 'accuracy on the attacked images, 95% Wilson interval (band), ±1 seed std (bars)' })), '');
      }
    }
  }
  const header = 'dataset,regime,model,attack,eps_255,eps,correct,images,accuracy,ci95_low,ci95_high,seeds,seed_std,seed_values';
  const csv = [header, ...rows.map((r) => [r.dataset, r.regime, r.model, r.attack, String(eps255(r.eps)), String(r.eps), String(r.k), String(r.n), r.acc.toFixed(6), r.lo.toFixed(6), r.hi.toFixed(6), String(r.values.length), r.std.toFixed(6), r.values.map((v) => v.toFixed(6)).join(' ')].map(csvEscape).join(','))].join('\n') + '\n';
  const tables = md.join('\n');
  writeFileAtomic(join(out, 'tables.md'), tables);
  writeFileAtomic(join(out, 'results.csv'), csv);
  return { tables, csv, figures, recommendations: recs, failedChecks: failed };
}

function readingGuide(c: StudyConfig): string {
  return [
    `Accuracy (%) on the attacked test images against the true labels, pooled over ${c.seeds.length} seed(s): the estimate, its 95% Wilson interval in brackets, and ± the sample standard deviation of the per-seed accuracies. n is the number of attacked images (all seeds).`,
    `"${TRANSFER}" counts an image as robust only if it is classified correctly on every other standard model's untargeted PGD examples of the same seed; "${WORST}" only if it is correct clean, under every attack at that eps (the paper's and the strong suite) and under transfer; "${WORST_AMONG_CORRECT}" is that count over the images classified correctly when clean only.`,
    'Orderings are stated only where a paired test supports them: exact McNemar on the same images, stratified by seed, Holm-corrected within each table of comparisons, at the 5% level. Epsilon is written as k/255 (fraction).',
  ].join(' ');
}

function trainingTable(tr: readonly TrainCell[], models: readonly string[]): string[] {
  if (!tr.length) return [];
  const out = ['## Training', '', '| model | regime | test accuracy % (full test split, mean ± seed std) | epochs | s per epoch | train img/s |', '|---|---|---|---|---|---|'];
  for (const regime of REGIMES) {
    for (const m of models) {
      const t = tr.filter((x) => x.model === m && x.regime === regime);
      if (!t.length) continue;
      const accs = t.map((x) => x.test.acc), mu = accs.reduce((a, b) => a + b, 0) / accs.length;
      const sd = accs.length > 1 ? Math.sqrt(accs.reduce((a, v) => a + (v - mu) ** 2, 0) / (accs.length - 1)) : 0;
      out.push(`| ${m} | ${regime} | ${pct(mu)}${accs.length > 1 ? ` ± ${pct(sd)}` : ''} | ${t.map((x) => x.epochs).join(', ')} | ${(t.reduce((a, x) => a + x.seconds / Math.max(x.epochs, 1), 0) / t.length).toFixed(0)} | ${(t.reduce((a, x) => a + x.imagesPerSecond, 0) / t.length).toFixed(1)} |`);
    }
  }
  return [...out, ''];
}

export type { Evaluated };
