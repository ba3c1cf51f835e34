// Rendering Vega-Lite specifications to standalone SVG in Node, and the colours that keep a
// model recognisable across every figure. Vega's 'none' renderer builds the scenegraph
// without a canvas (text widths are estimated), so this needs no native code and no network.
import { compile, type Config, type TopLevelSpec } from 'vega-lite';
import { parse, textMetrics, View } from 'vega';
import type { ModelName } from '../../nn/models.js';

// vega exports its text measurer at run time but its typings omit it.
declare module 'vega' {
  export const textMetrics: { width: (item: { fontSize?: number; fontWeight?: string | number }, text: string) => number };
}

// Advance widths of Helvetica/Arial in 1/1000 em (Adobe's core-font metrics); sans-serif
// faces agree with them closely. Characters not listed count as 556, the digit width.
const ADVANCE = new Map<string, number>(([
  [191, "'"], [222, 'ijl'], [278, ' .,:;!/[]\\|ftI'], [333, '-()r`{}'], [355, '"'], [389, '*'],
  [500, 'cksvxyzJ^ε'], [584, '+<>=±×−~'], [611, 'FTZ'], [667, 'ABEKPSVXY&'], [722, 'wCDHNRU'],
  [778, 'GOQ'], [833, 'mM'], [889, '%'], [944, 'W'], [1000, '…—@'],
] as const).flatMap(([w, chars]) => [...chars].map((ch): [string, number] => [ch, w])));

/**
 * Text width in px for a sans-serif face. Without a canvas, Vega estimates 0.8 em for every
 * character, about 1.6 times the real average, which cuts axis labels short and pads the
 * figures with blank space; per-character widths, widened 10% to cover DejaVu Sans (wider
 * than Arial, and the usual sans-serif on Linux), keep the layout tight without clipping.
 */
export function sansTextWidth(text: string, fontSize = 11, bold = false): number {
  let units = 0;
  for (const ch of text) units += ADVANCE.get(ch) ?? 556;
  return (units / 1000) * fontSize * 1.1 * (bold ? 1.07 : 1);
}

textMetrics.width = (item, text) => sansTextWidth(String(text ?? ''), item.fontSize ?? 11, item.fontWeight === 'bold' || Number(item.fontWeight) >= 600);

/** Generic family, so the SVG inlined into the report renders with whatever the reader has. */
export const FONT = 'sans-serif';

/**
 * Okabe-Ito colours (colour-blind safe) fixed per model: a Record over ModelName, so adding a
 * model without a colour is a type error rather than a silent reuse.
 */
export const MODEL_COLOURS: Readonly<Record<ModelName, string>> = {
  'cbr-larget': '#0072B2',
  resnet8: '#D55E00',
  resnet20: '#009E73',
  resnet32: '#CC79A7',
  resnet50: '#E69F00',
};

// For names outside the model list; yellow (#F0E442) is left out as unreadable on white.
const SPARE_COLOURS = ['#56B4E9', '#000000', '#999999', '#882255', '#44AA99'];

const isModelName = (name: string): name is ModelName => Object.hasOwn(MODEL_COLOURS, name);

/**
 * A Vega-Lite colour scale for the names of one figure: known models keep their fixed colour,
 * other names take the spare colours in order of first appearance (so they are stable within
 * a figure, and across figures that list them in the same order).
 */
export function colourScale(names: readonly string[]): { domain: string[]; range: string[] } {
  const domain = [...new Set(names)];
  let spare = 0;
  const range = domain.map((n) => (isModelName(n) ? MODEL_COLOURS[n] : SPARE_COLOURS[spare++ % SPARE_COLOURS.length]!));
  return { domain, range };
}

// Pieces of a specification, named from the public TopLevelSpec so that literals typed with
// them are checked where they are written (vega-lite exports no names for these).
type HConcatSpec = Extract<TopLevelSpec, { hconcat: unknown }>;
/** One panel of an hconcat. */
export type Panel = HConcatSpec['hconcat'][number];
/** One layer of a layered panel. */
export type Layer = Extract<Panel, { layer: unknown }>['layer'][number];
/** The encoding channels of a layer. */
export type Encoding = NonNullable<Extract<Layer, { mark: unknown }>['encoding']>;

/** Shared look: generic font, light grid, no frame around the plot areas. */
export const BASE_CONFIG: Config = {
  font: FONT,
  background: 'white',
  padding: 8,
  view: { stroke: null },
  title: { fontSize: 15, fontWeight: 'normal', anchor: 'start', offset: 10 },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#e6e6e6', domainColor: '#666', tickColor: '#666' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', orient: 'right' },
  header: { labelFontSize: 12, titleFontSize: 12 },
};

/**
 * Compile a Vega-Lite specification and render it to one standalone <svg> element, ready to
 * inline into HTML. Rejects output carrying a script or event handler: the report must stay
 * inert, and user text (model names, titles) passes through here.
 */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    if (/<script|<[^>]*\son[a-z]+\s*=/i.test(svg)) throw new Error('renderSvg: the SVG carries script, which the report forbids');
    return svg;
  } finally {
    view.finalize();
  }
}
