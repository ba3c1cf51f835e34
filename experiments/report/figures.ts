// The report's Vega-Lite figures in one import: spec builders, SVG renderers and colours.
export { BASE_CONFIG, FONT, MODEL_COLOURS, colourScale, renderSvg } from './vega.js';
export { accuracyCurvesSpec, accuracyCurvesSvg, type CurveSeries, type FigureOptions } from './curves.js';
export {
  formatP, marginHistogramSpec, marginHistogramSvg, pairedComparisonSpec, pairedComparisonSvg,
  type ComparisonRow, type MarginSample,
} from './compare.js';
