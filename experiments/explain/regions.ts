// Decision regions in the t-SNE plane (the paper's Figures 5 and 6): a k-nearest-neighbour
// classifier (k = 11) fitted on the 2-D points labelled with the model's predictions, its
// regions painted under the points; and the number the picture suggests, a margin proxy in
// the model's own feature space.
import { canvas, line, PALETTE, text, toPng } from '../report/canvas.js';

/** Majority label of the k nearest points (ties go to the nearer neighbours' label). */
export function knnPredict(points: Float32Array, labels: readonly number[], k: number, qx: number, qy: number): number {
  const n = labels.length;
  const best: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const d = (points[2 * i]! - qx) ** 2 + (points[2 * i + 1]! - qy) ** 2;
    if (best.length < k) { best.push([d, labels[i]!]); best.sort((a, b) => a[0] - b[0]); } else if (d < best[k - 1]![0]) { best[k - 1] = [d, labels[i]!]; best.sort((a, b) => a[0] - b[0]); }
  }
  const votes = new Map<number, { count: number; first: number }>();
  best.forEach(([, l], rank) => { const v = votes.get(l) ?? { count: 0, first: rank }; v.count++; votes.set(l, v); });
  return [...votes].sort((a, b) => b[1].count - a[1].count || a[1].first - b[1].first)[0]![0];
}

/**
 * Mean distance, in feature space, of each clean point to the nearest point (clean or
 * adversarial) that the model assigns to another class; and the same divided by the median
 * distance between clean points, so that models with differently scaled features compare.
 */
export function marginProxy(features: Float32Array, dims: number, preds: readonly number[], clean: readonly boolean[]): { margin: number; relative: number } {
  const n = preds.length;
  const dist = (i: number, j: number) => { let s = 0; for (let k = 0; k < dims; k++) s += (features[i * dims + k]! - features[j * dims + k]!) ** 2; return Math.sqrt(s); };
  const margins: number[] = [], pair: number[] = [];
  for (let i = 0; i < n; i++) {
    if (!clean[i]) continue;
    let m = Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = dist(i, j);
      if (preds[j] !== preds[i] && d < m) m = d;
      if (clean[j] && j > i) pair.push(d);
    }
    if (Number.isFinite(m)) margins.push(m);
  }
  pair.sort((a, b) => a - b);
  const median = pair.length ? pair[Math.floor(pair.length / 2)]! : 1;
  const margin = margins.length ? margins.reduce((a, b) => a + b, 0) / margins.length : NaN;
  return { margin, relative: margin / (median || 1) };
}

export interface RegionPoint { x: number; y: number; pred: number; adversarial: boolean }

/** The regions of a k-NN classifier over the points' bounding box, with the points on top. */
export async function regionsFigure(points: RegionPoint[], classes: string[], o: { title: string; k?: number; size?: number; grid?: number }): Promise<Uint8Array> {
  const S = o.size ?? 480, pad = 30, legendH = 46, grid = o.grid ?? 120, k = Math.min(o.k ?? 11, points.length);
  const { bitmap, ctx } = canvas(S, S + legendH + 24);
  text(ctx, o.title, S / 2, 18, { size: 12, align: 'center' });
  const xs = points.map((p) => p.x), ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0, 1e-9) * 1.08, cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const px = (x: number) => pad + ((x - cx) / span + 0.5) * (S - 2 * pad);
  const py = (y: number) => 24 + pad + (0.5 - (y - cy) / span) * (S - 2 * pad);
  const flat = Float32Array.from(points.flatMap((p) => [p.x, p.y]));
  const labels = points.map((p) => p.pred);
  const cell = (S - 2 * pad) / grid;
  for (let gy = 0; gy < grid; gy++) {
    for (let gx = 0; gx < grid; gx++) {
      const qx = cx + ((gx + 0.5) / grid - 0.5) * span, qy = cy - ((gy + 0.5) / grid - 0.5) * span;
      ctx.fillStyle = tint(PALETTE[knnPredict(flat, labels, k, qx, qy) % PALETTE.length]!);
      ctx.fillRect(pad + gx * cell, 24 + pad + gy * cell, Math.ceil(cell), Math.ceil(cell));
    }
  }
  for (const p of points) {
    const color = PALETTE[p.pred % PALETTE.length]!, x = px(p.x), y = py(p.y);
    if (p.adversarial) { line(ctx, x - 4, y - 4, x + 4, y + 4, color, 2); line(ctx, x - 4, y + 4, x + 4, y - 4, color, 2); } else { ctx.fillStyle = color; ctx.fillRect(x - 3, y - 3, 7, 7); }
  }
  const ly = S + 30;
  classes.forEach((c, i) => {
    ctx.fillStyle = PALETTE[i % PALETTE.length]!;
    ctx.fillRect(pad + i * 130, ly - 8, 10, 10);
    text(ctx, `predicted ${c}`, pad + 16 + i * 130, ly + 2, { size: 11 });
  });
  text(ctx, `square: clean   x: adversarial   background: ${k}-NN on the 2-D points`, pad, ly + 22, { size: 11 });
  return toPng(bitmap);
}

/** A light version of a #rrggbb colour for region backgrounds. */
function tint(hex: string): string {
  const c = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  return `#${c.map((v) => Math.round(v + (255 - v) * 0.78).toString(16).padStart(2, '0')).join('')}`;
}
