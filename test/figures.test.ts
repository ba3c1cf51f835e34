// The report's Vega-Lite figures: well-formed inert SVG with the expected marks, fast.
import { describe, expect, it } from 'vitest';
import {
  MODEL_COLOURS, accuracyCurvesSpec, accuracyCurvesSvg, colourScale, formatP, marginHistogramSvg,
  pairedComparisonSvg, type ComparisonRow, type CurveSeries,
} from '../experiments/report/figures.js';

/**
 * A strict XML well-formedness check, enough for Vega's SVG (elements, attributes, text,
 * entities; no comments, CDATA or doctype, which Vega does not write): returns the root's
 * name and throws on the first fault.
 */
function parseXml(xml: string): { root: string; elements: number } {
  const stack: string[] = [];
  let root = '', elements = 0, pos = 0;
  const token = /<(\/?)([A-Za-z][\w:.-]*)((?:\s+[\w:.-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/y;
  for (let m = token.exec(xml); m; m = token.exec(xml)) {
    pos = token.lastIndex;
    const [, close, name, attrs, selfClose, text] = m;
    if (text !== undefined) {
      if (!stack.length && text.trim()) throw new Error(`text outside the root: ${text.slice(0, 40)}`);
      const bad = /&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[\da-fA-F]+);)/.exec(text);
      if (bad) throw new Error(`bad entity near ${text.slice(bad.index, bad.index + 20)}`);
      continue;
    }
    const names = [...(attrs ?? '').matchAll(/([\w:.-]+)=/g)].map((a) => a[1]);
    if (new Set(names).size !== names.length) throw new Error(`<${name}> repeats an attribute`);
    if (close) {
      if (stack.pop() !== name) throw new Error(`</${name}> closes the wrong element`);
      continue;
    }
    if (!stack.length && root) throw new Error('a second root element');
    root ||= name!;
    elements++;
    if (!selfClose) stack.push(name!);
  }
  // A failed sticky match resets lastIndex, so the position of the last token tells where parsing stopped.
  if (pos !== xml.length) throw new Error(`not well-formed at ${pos}: ${xml.slice(pos, pos + 40)}`);
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  return { root, elements };
}

/** Checks shared by every figure; returns the text content of all <text> elements. */
function checkSvg(svg: string): string[] {
  expect(svg.startsWith('<svg ')).toBe(true);
  expect(parseXml(svg).root).toBe('svg');
  expect(svg).not.toMatch(/<script|\son[a-z]+="|javascript:|<foreignObject|href="http/i);
  expect(svg).toMatch(/font-family="sans-serif"/);
  expect(svg).not.toMatch(/NaN|Infinity|undefined/);
  // No ids, so several figures inlined into one page cannot clash.
  expect(svg).not.toMatch(/\sid="/);
  const decode = (s: string) => s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&amp;/g, '&');
  return [...svg.matchAll(/<text[^>]*>([^<]*)<\/text>/g)].map((m) => decode(m[1]!));
}

/** Items of one mark type in the plot (not in axes or legends): Vega writes each mark's items, and nothing else, into one <g class="mark-TYPE role-mark ..."> per layer. */
function count(svg: string, type: 'symbol' | 'rule' | 'area' | 'line' | 'rect' | 'text'): number {
  const element = { symbol: 'path', rule: 'line', area: 'path', line: 'path', rect: 'path', text: 'text' }[type];
  return [...svg.matchAll(new RegExp(`<g class="mark-${type} role-mark[^"]*"[^>]*>(.*?)</g>`, 'g'))].reduce((s, m) => s + (m[1]!.split(`<${element} `).length - 1), 0);
}

async function timed(f: () => Promise<string>): Promise<string> {
  const t0 = performance.now();
  const svg = await f();
  expect(performance.now() - t0).toBeLessThan(3000);
  return svg;
}

const EPS = [0, 1, 2, 4, 8].map((e) => e / 255);
function series(name: string, clean: number, std?: number): CurveSeries {
  return { name, points: EPS.map((eps, i) => { const acc = clean * 0.6 ** i; return { eps, acc, lo: Math.max(0, acc - 0.04), hi: Math.min(1, acc + 0.04), ...(std === undefined ? {} : { std }) }; }) };
}

describe('the test\'s XML checker', () => {
  it('accepts well-formed XML and rejects the usual faults', () => {
    expect(parseXml('<svg a="1"><g><text>x &amp; y</text></g><path d="M0"/></svg>')).toEqual({ root: 'svg', elements: 4 });
    for (const bad of ['<svg><g></svg>', '<svg a="1" a="2"/>', '<svg>&nbsp;</svg>', '<svg/><svg/>', '<svg><g a=1/></svg>', '<svg>', 'x<svg/>']) expect(() => parseXml(bad), bad).toThrow();
  });
});

describe('colours', () => {
  it('fixes a colour per known model, whatever the figure', () => {
    expect(colourScale(['resnet20', 'resnet8']).range).toEqual([MODEL_COLOURS.resnet20, MODEL_COLOURS.resnet8]);
    expect(new Set(Object.values(MODEL_COLOURS)).size).toBe(Object.keys(MODEL_COLOURS).length);
    // Unknown names take spare colours distinct from every model's and from each other.
    const s = colourScale(['resnet8', 'mystery', 'other', 'mystery']);
    expect(s.domain).toEqual(['resnet8', 'mystery', 'other']);
    expect(new Set(s.range).size).toBe(3);
    for (const c of s.range.slice(1)) expect(Object.values(MODEL_COLOURS)).not.toContain(c);
  });
});

describe('accuracyCurvesSvg', () => {
  it('draws a clean panel and a log-eps panel with bands, lines and points per model', async () => {
    const svg = await timed(() => accuracyCurvesSvg([series('resnet8', 0.9, 0.02), series('resnet20', 0.85, 0.01), series('cbr-larget', 0.8)], { title: 'PathMNIST: PGD' }));
    const text = checkSvg(svg);
    expect(text).toContain('PathMNIST: PGD');
    expect(text).toContain('accuracy (%)');
    expect(text).toContain('ε (1/255 units, log scale)');
    expect(text).toContain('clean');
    for (const t of ['1', '2', '4', '8', 'resnet8', 'resnet20', 'cbr-larget']) expect(text).toContain(t);
    expect(text.some((t) => t.includes('±1 SD over seeds'))).toBe(true);
    expect(count(svg, 'symbol')).toBe(15); // 3 models x (clean + 4 eps)
    expect(count(svg, 'area')).toBe(3);
    expect(count(svg, 'line')).toBe(3);
    // Rules: 3 clean intervals, and +-SD bars for the 2 models with std at 5 eps each.
    expect(count(svg, 'rule')).toBe(3 + 2 * 5);
    for (const c of [MODEL_COLOURS.resnet8, MODEL_COLOURS.resnet20, MODEL_COLOURS['cbr-larget']]) expect(svg).toContain(`fill="${c}"`);
  });

  it('puts eps in 1/255 units on a log scale and accuracy in percent', () => {
    const spec = JSON.stringify(accuracyCurvesSpec([series('resnet8', 0.9)], { title: 't' }));
    expect(spec).toContain('"type":"log"');
    expect(spec).toContain('"values":[1,2,4,8]');
    expect(spec).toContain('"acc":90');
    expect(spec).not.toContain('SD over seeds');
  });

  it('handles one model, a single attacked point, only clean accuracy, and lo == hi', async () => {
    const single = await timed(() => accuracyCurvesSvg([{ name: 'resnet8', points: [{ eps: 4 / 255, acc: 0.3, lo: 0.3, hi: 0.3 }] }], { title: 'one point' }));
    let text = checkSvg(single);
    expect(count(single, 'symbol')).toBe(1);
    expect(text).not.toContain('clean');
    expect(text).toContain('4');
    const cleanOnly = await timed(() => accuracyCurvesSvg([{ name: 'resnet8', points: [{ eps: 0, acc: 0.91, lo: 0.88, hi: 0.93 }] }, { name: 'resnet20', points: [{ eps: 0, acc: 1, lo: 1, hi: 1 }] }], { title: 'clean only' }));
    text = checkSvg(cleanOnly);
    expect(count(cleanOnly, 'symbol')).toBe(2);
    expect(text).toContain('clean');
    expect(text).toContain('accuracy (%)');
    expect(text).not.toContain('ε (1/255 units, log scale)');
  });

  it('rejects percentages and reversed intervals, which would plot silently wrong', () => {
    expect(() => accuracyCurvesSpec([{ name: 'm', points: [{ eps: 0, acc: 90, lo: 85, hi: 95 }] }], { title: 't' })).toThrow(/fractions/);
    expect(() => accuracyCurvesSpec([{ name: 'm', points: [{ eps: 0, acc: 0.5, lo: 0.6, hi: 0.4 }] }], { title: 't' })).toThrow(/reversed/);
    expect(() => accuracyCurvesSpec([{ name: 'm', points: [] }], { title: 't' })).toThrow(RangeError);
  });
});

describe('pairedComparisonSvg', () => {
  const rows: ComparisonRow[] = [
    { a: 'resnet8', b: 'resnet20', diff: 0.032, lo: 0.011, hi: 0.054, p: 0.0021, significant: true },
    { a: 'resnet8', b: 'cbr-larget', diff: -0.012, lo: -0.04, hi: 0.015, p: 0.41, significant: false },
    { a: 'resnet20', b: 'cbr-larget', diff: -0.044, lo: -0.07, hi: -0.02, p: 0.00001, significant: true },
  ];

  it('draws one interval and one point per comparison, a zero line, and marks the significant ones', async () => {
    const svg = await timed(() => pairedComparisonSvg(rows, { title: 'Paired, PGD 4/255' }));
    const text = checkSvg(svg);
    expect(text).toContain('Paired, PGD 4/255');
    expect(text).toContain('difference in accuracy (percentage points)');
    for (const l of ['resnet8 − resnet20', 'resnet8 − cbr-larget', 'resnet20 − cbr-larget']) expect(text).toContain(l);
    expect(text).toEqual(expect.arrayContaining(['p = 0.002 *', 'p = 0.410', 'p < 0.0001 *']));
    expect(count(svg, 'symbol')).toBe(3);
    expect(count(svg, 'rule')).toBe(3 + 1); // intervals and the zero line
    // Significant points are filled, the others hollow.
    const points = [...svg.matchAll(/aria-roledescription="point"[^>]*>/g)].map((m) => m[0]);
    expect(points.filter((p) => p.includes('fill="#000000"'))).toHaveLength(2);
    expect(points.filter((p) => p.includes('fill="white"'))).toHaveLength(1);
    // The labels are not cut to fit (no ellipsis), and text is measured, not padded at 0.8 em a character.
    expect(text.some((t) => t.includes('…'))).toBe(false);
    expect(Number(/^<svg[^>]* width="(\d+)"/.exec(svg)![1])).toBeLessThan(700);
  });

  it('handles one comparison with lo == hi == diff and escapes names', async () => {
    const svg = await timed(() => pairedComparisonSvg([{ a: 'A<&>"', b: 'resnet8', diff: 0, lo: 0, hi: 0, p: 1, significant: false }], { title: 'one' }));
    const text = checkSvg(svg);
    expect(text).toContain('A<&>" − resnet8');
    expect(count(svg, 'symbol')).toBe(1);
    await expect(pairedComparisonSvg([{ ...rows[0]!, diff: 3.2, lo: 1.1, hi: 5.4 }], { title: 't' })).rejects.toThrow(/fractions/);
  });

  it('formats p-values for reading', () => {
    expect(formatP(0.5)).toBe('p = 0.500');
    expect(formatP(0.00042)).toBe('p = 0.00042');
    expect(formatP(1e-7)).toBe('p < 0.0001');
  });
});

describe('marginHistogramSvg', () => {
  /** Margins spread around centre, deterministic. */
  const margins = (model: string, centre: number, n: number) => Array.from({ length: n }, (_, i) => ({ model, margin: centre + 4 * Math.sin(i * 12.9898) }));

  it('draws one row of bars per model on shared bins with the zero line', async () => {
    const data = [...margins('resnet8', 2, 200), ...margins('resnet20', 3, 150)];
    const svg = await timed(() => marginHistogramSvg(data, { title: 'Clean margins', maxbins: 20 }));
    const text = checkSvg(svg);
    expect(text).toEqual(expect.arrayContaining(['Clean margins', 'resnet8', 'resnet20', 'clean logit margin', 'images']));
    expect(count(svg, 'rect')).toBeGreaterThan(10);
    expect(count(svg, 'rule')).toBe(2); // the zero line, once per model
    // Every image is counted once: the bar heights (from their labels) add up per model.
    const bars = [...svg.matchAll(/aria-label="[^"]*; images: (\d+); model: ([^"]+)"/g)];
    const total = (m: string) => bars.filter((b) => b[2] === m).reduce((s, b) => s + Number(b[1]), 0);
    expect([total('resnet8'), total('resnet20')]).toEqual([200, 150]);
    expect(svg).toContain(`fill="${MODEL_COLOURS.resnet8}"`);
    expect(svg).toContain(`fill="${MODEL_COLOURS.resnet20}"`);
  });

  it('handles one model with a single, constant margin', async () => {
    const svg = await timed(() => marginHistogramSvg([{ model: 'resnet8', margin: 1.5 }, { model: 'resnet8', margin: 1.5 }], { title: 'constant' }));
    checkSvg(svg);
    expect(count(svg, 'rect')).toBe(1);
    await expect(marginHistogramSvg([{ model: 'm', margin: Number.NaN }], { title: 't' })).rejects.toThrow(RangeError);
  });
});
