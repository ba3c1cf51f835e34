// Accuracy versus epsilon as a Vega-Lite figure: a narrow 'clean' panel (eps = 0, which a log
// axis cannot hold) beside a log-epsilon panel, both on one 0-100% accuracy scale. Shading is
// the 95% interval; solid bars, when given, are +-1 standard deviation over seeds.
import type { TopLevelSpec } from 'vega-lite';
import { eps255 } from '../attacks/spec.js';
import { BASE_CONFIG, colourScale, renderSvg, type Encoding, type Layer, type Panel } from './vega.js';

/** One model's curve. Every quantity is a fraction in [0, 1], as the study stores it. */
export interface CurveSeries {
  name: string;
  points: ReadonlyArray<{
    /** L-infinity radius as a fraction of the pixel range (0 for clean accuracy). */
    eps: number;
    acc: number;
    /** 95% interval for acc (e.g. wilson() on the pooled images). */
    lo: number;
    hi: number;
    /** Standard deviation of acc over seeds, if there were several. */
    std?: number;
  }>;
}

export interface FigureOptions { title: string; subtitle?: string }

interface CurveRow { model: string; panel: 'clean'; eps: number; acc: number; lo: number; hi: number; sdLo?: number; sdHi?: number }

const pct = (v: number) => +(100 * v).toFixed(6);

function rows(series: readonly CurveSeries[]): CurveRow[] {
  if (!series.some((s) => s.points.length)) throw new RangeError('accuracyCurves: no points to plot');
  return series.flatMap((s) => s.points.map((p) => {
    for (const [k, v] of [['acc', p.acc], ['lo', p.lo], ['hi', p.hi]] as const) {
      if (!(v >= 0 && v <= 1)) throw new RangeError(`accuracyCurves: ${s.name} ${k} = ${v} at eps ${p.eps}; accuracies are fractions in [0, 1]`);
    }
    if (!(p.eps >= 0 && p.eps <= 1)) throw new RangeError(`accuracyCurves: ${s.name} eps = ${p.eps}; eps is a fraction of the pixel range`);
    if (p.lo > p.hi) throw new RangeError(`accuracyCurves: ${s.name} interval [${p.lo}, ${p.hi}] is reversed at eps ${p.eps}`);
    if (p.std !== undefined && !(p.std >= 0)) throw new RangeError(`accuracyCurves: ${s.name} std = ${p.std} at eps ${p.eps}`);
    const sd = p.std === undefined ? {} : { sdLo: pct(Math.max(0, p.acc - p.std)), sdHi: pct(Math.min(1, p.acc + p.std)) };
    return { model: s.name, panel: 'clean' as const, eps: eps255(p.eps), acc: pct(p.acc), lo: pct(p.lo), hi: pct(p.hi), ...sd };
  })).sort((a, b) => a.eps - b.eps);
}

/** The Vega-Lite specification behind accuracyCurvesSvg (exposed for tests and for reuse). */
export function accuracyCurvesSpec(series: readonly CurveSeries[], o: FigureOptions): TopLevelSpec {
  const data = rows(series);
  const clean = data.filter((r) => r.eps === 0), attacked = data.filter((r) => r.eps > 0);
  const hasStd = data.some((r) => r.sdLo !== undefined);
  const scale = colourScale(series.filter((s) => s.points.length).map((s) => s.name));
  // Opaque legend symbols: the legend would otherwise take the faint opacity of the bands.
  const colour: Encoding['color'] = { field: 'model', type: 'nominal', title: 'model', scale, legend: { symbolOpacity: 1, symbolType: 'circle' } };
  const grid = [0, 20, 40, 60, 80, 100];
  const y = (axis: boolean): Encoding['y'] => ({
    field: 'acc', type: 'quantitative', scale: { domain: [0, 100], nice: false },
    axis: axis ? { title: 'accuracy (%)', values: grid } : { title: null, labels: false, ticks: false, domain: false, values: grid },
  });
  const sdRule: Layer = { mark: { type: 'rule', strokeWidth: 1.5 }, transform: [{ filter: 'isValid(datum.sdLo)' }], encoding: { y: { field: 'sdLo', type: 'quantitative' }, y2: { field: 'sdHi' }, color: colour } };
  const height = 300;
  const panels: Panel[] = [];
  if (clean.length) {
    const models = new Set(clean.map((r) => r.model)).size;
    panels.push({
      width: 26 + 14 * models, height, data: { values: clean },
      encoding: {
        x: { field: 'panel', type: 'nominal', title: null, axis: { labelAngle: 0, labelFontSize: 12, ticks: false }, scale: { paddingOuter: 0.3 } },
        xOffset: { field: 'model', type: 'nominal', scale: { domain: scale.domain } },
        color: colour,
      },
      layer: [
        // A wide translucent bar is the clean panel's version of the interval band.
        { mark: { type: 'rule', strokeWidth: 7, opacity: 0.2 }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
        ...(hasStd ? [sdRule] : []),
        { mark: { type: 'point', filled: true, size: 45, opacity: 1 }, encoding: { y: y(true) } },
      ],
    });
  }
  if (attacked.length) {
    const ticks = [...new Set(attacked.map((r) => r.eps))];
    const x: Encoding['x'] = {
      field: 'eps', type: 'quantitative', title: 'ε (1/255 units, log scale)',
      // An explicit domain, padded in log space, also covers a single epsilon (else degenerate).
      scale: { type: 'log', domain: [ticks[0]! / 1.35, ticks[ticks.length - 1]! * 1.35], nice: false },
      axis: { values: ticks, format: '~g', grid: false },
    };
    panels.push({
      width: 360, height, data: { values: attacked },
      encoding: { x, color: colour },
      layer: [
        { mark: { type: 'area', opacity: 0.14 }, encoding: { y: { field: 'lo', type: 'quantitative' }, y2: { field: 'hi' } } },
        { mark: { type: 'line', strokeWidth: 2 }, encoding: { y: y(!clean.length) } },
        ...(hasStd ? [sdRule] : []),
        { mark: { type: 'point', filled: true, size: 40, opacity: 1 }, encoding: { y: y(!clean.length) } },
      ],
    });
  }
  const note = `Shaded: 95% interval${hasStd ? '; bars: ±1 SD over seeds' : ''}`;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: o.title, subtitle: o.subtitle ?? note, subtitleFontSize: 11, subtitleColor: '#555' },
    config: BASE_CONFIG,
    spacing: 14,
    hconcat: panels,
    resolve: { scale: { y: 'shared', color: 'shared' } },
  };
}

/** Accuracy (%) versus epsilon, one colour per model, as a standalone SVG string. */
export async function accuracyCurvesSvg(series: readonly CurveSeries[], o: FigureOptions): Promise<string> {
  return renderSvg(accuracyCurvesSpec(series, o));
}
