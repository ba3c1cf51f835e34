// Figures for the paired comparisons and the clean margins: a forest plot of accuracy
// differences with their intervals, and per-model histograms of clean logit margins.
import type { TopLevelSpec } from 'vega-lite';
import { BASE_CONFIG, colourScale, renderSvg, type Encoding, type Layer } from './vega.js';
import type { FigureOptions } from './curves.js';

/** One paired comparison on the same images; diff, lo and hi are fractions (accA - accB). */
export interface ComparisonRow {
  a: string;
  b: string;
  diff: number;
  /** 95% interval for diff (e.g. pairedCompare's Newcombe interval). */
  lo: number;
  hi: number;
  /** McNemar p-value (raw; the figure prints it). */
  p: number;
  /** Significant after the family's multiple-comparison correction (e.g. Holm). */
  significant: boolean;
}

const pp = (v: number) => +(100 * v).toFixed(6);

/** p-values as a reader expects them: 3 significant digits, and a floor instead of 0. */
export function formatP(p: number): string {
  return p < 1e-4 ? 'p < 0.0001' : `p = ${p >= 0.001 ? p.toFixed(3) : p.toPrecision(2)}`;
}

/** The Vega-Lite specification behind pairedComparisonSvg. */
export function pairedComparisonSpec(rows: readonly ComparisonRow[], o: FigureOptions): TopLevelSpec {
  if (!rows.length) throw new RangeError('pairedComparison: no comparisons to plot');
  const values = rows.map((r, i) => {
    if (!(r.lo <= r.diff && r.diff <= r.hi && r.lo >= -1 && r.hi <= 1)) throw new RangeError(`pairedComparison: ${r.a} - ${r.b}: need -1 <= lo <= diff <= hi <= 1 (fractions), got ${r.lo}, ${r.diff}, ${r.hi}`);
    if (!(r.p >= 0 && r.p <= 1)) throw new RangeError(`pairedComparison: ${r.a} - ${r.b}: p = ${r.p}`);
    // The row index keeps two comparisons of the same pair (say, on two datasets) apart.
    return { key: `${i}`, label: `${r.a} − ${r.b}`, diff: pp(r.diff), lo: pp(r.lo), hi: pp(r.hi), pText: `${formatP(r.p)}${r.significant ? ' *' : ''}`, status: r.significant ? 'significant' : 'not significant' };
  });
  // A symmetric axis keeps zero central, so the eye reads each side as one model winning.
  const reach = Math.max(1, ...values.flatMap((v) => [Math.abs(v.lo), Math.abs(v.hi)])) * 1.1;
  const width = 380, labels = JSON.stringify(values.map((v) => v.label));
  const y: Encoding['y'] = {
    field: 'key', type: 'nominal', sort: null, title: null,
    axis: { labelExpr: `${labels}[toNumber(datum.value)]`, labelFontSize: 12, labelLimit: 0, ticks: false, domain: false, labelPadding: 8 },
  };
  // No legend: the subtitle explains the filled marks and the stars.
  const status: Encoding['color'] = { field: 'status', type: 'nominal', legend: null, scale: { domain: ['significant', 'not significant'], range: ['#000000', '#8c8c8c'] } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: o.title, subtitle: o.subtitle ?? 'Accuracy of A minus B on the same images (percentage points), 95% interval; * significant after Holm', subtitleFontSize: 11, subtitleColor: '#555' },
    config: BASE_CONFIG,
    data: { values },
    width, height: { step: 26 },
    layer: [
      // One datum, so the zero line is drawn once rather than once per row.
      { data: { values: [{}] }, mark: { type: 'rule', color: '#555', strokeDash: [4, 3] }, encoding: { x: { datum: 0, type: 'quantitative' } } },
      { mark: { type: 'rule', strokeWidth: 2 }, encoding: { x: { field: 'lo', type: 'quantitative' }, x2: { field: 'hi' }, y, color: status } },
      {
        mark: { type: 'point', size: 60, strokeWidth: 2, opacity: 1 },
        encoding: {
          x: { field: 'diff', type: 'quantitative', title: 'difference in accuracy (percentage points)', scale: { domain: [-reach, reach], nice: false } },
          y,
          color: status,
          // Filled for significant, hollow otherwise: readable without colour too.
          fill: { condition: { test: "datum.status === 'significant'", value: '#000000' }, value: 'white' },
        },
      },
      { mark: { type: 'text', align: 'left', dx: 8, fontSize: 11, color: '#333' }, encoding: { x: { value: width }, y, text: { field: 'pText' } } },
    ],
  };
}

/** A forest plot of paired accuracy differences (A - B) with intervals, as a standalone SVG. */
export async function pairedComparisonSvg(rows: readonly ComparisonRow[], o: FigureOptions): Promise<string> {
  return renderSvg(pairedComparisonSpec(rows, o));
}

/** One attacked image's clean logit margin z_y - max_{k != y} z_k under one model. */
export interface MarginSample { model: string; margin: number }

/** The Vega-Lite specification behind marginHistogramSvg: one row of bars per model, shared bins. */
export function marginHistogramSpec(data: readonly MarginSample[], o: FigureOptions & { maxbins?: number }): TopLevelSpec {
  if (!data.length) throw new RangeError('marginHistogram: no margins to plot');
  let min = Infinity, max = -Infinity;
  for (const d of data) {
    if (!Number.isFinite(d.margin)) throw new RangeError(`marginHistogram: ${d.model} has margin ${d.margin}`);
    min = Math.min(min, d.margin);
    max = Math.max(max, d.margin);
  }
  // One explicit extent so every model's bars share bins; a constant margin still gets a width.
  const extent: [number, number] = max > min ? [min, max] : [min - 0.5, max + 0.5];
  const models = [...new Set(data.map((d) => d.model))];
  const zeroRule: Layer = { transform: [{ aggregate: [{ op: 'count', as: 'n' }] }], mark: { type: 'rule', color: '#555', strokeDash: [4, 3] }, encoding: { x: { datum: 0, type: 'quantitative' } } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: o.title, subtitle: o.subtitle ?? 'Clean logit margin of the attacked images (true-class logit minus the largest other); below 0: wrong before the attack', subtitleFontSize: 11, subtitleColor: '#555' },
    config: BASE_CONFIG,
    data: { values: data.map((d) => ({ model: d.model, margin: d.margin })) },
    facet: { row: { field: 'model', type: 'nominal', sort: models, title: null, header: { labelAngle: 0, labelAlign: 'left', labelOrient: 'top', labelFontSize: 12 } } },
    spacing: 8,
    spec: {
      width: 420, height: 70,
      layer: [
        {
          mark: { type: 'bar', binSpacing: 0, opacity: 0.9 },
          encoding: {
            x: { field: 'margin', type: 'quantitative', bin: { extent, maxbins: o.maxbins ?? 40 }, title: 'clean logit margin', axis: { format: '~g' } },
            y: { aggregate: 'count', type: 'quantitative', title: 'images', axis: { tickCount: 3 } },
            color: { field: 'model', type: 'nominal', scale: colourScale(models), legend: null },
          },
        },
        // The decision boundary, drawn once per model (the aggregate leaves one row per facet).
        ...(extent[0] <= 0 && extent[1] >= 0 ? [zeroRule] : []),
      ],
    },
  };
}

/** Histograms of clean logit margins, one row per model in its colour, as a standalone SVG. */
export async function marginHistogramSvg(data: readonly MarginSample[], o: FigureOptions & { maxbins?: number }): Promise<string> {
  return renderSvg(marginHistogramSpec(data, o));
}
