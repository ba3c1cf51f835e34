// Colours shared by the Node figures and the browser page (no Node module here).

/** Colour-blind-safe palette (Okabe and Ito). */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#F0E442', '#000000'];

/** A perceptual black-red-yellow-white ramp for maps in [0, 1] (saliency). */
export function heat(v: number): [number, number, number] {
  const t = Math.min(1, Math.max(0, v));
  const r = Math.min(1, 3 * t), g = Math.min(1, Math.max(0, 3 * t - 1)), b = Math.max(0, 3 * t - 2);
  return [Math.round(255 * r), Math.round(255 * g), Math.round(255 * b)];
}
