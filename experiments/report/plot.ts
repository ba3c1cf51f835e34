// Accuracy-versus-epsilon curves: one line per model with +-1 std error bars, epsilon on a
// log axis with every point at its own value (the original plotting script shifted them by
// one), and eps = 0 (clean accuracy) left of an axis break, since log 0 does not exist.
import { canvas, line, PALETTE, text, toPng } from './canvas.js';

export interface Series { name: string; points: Array<{ eps: number; mean: number; std: number }> }

export interface CurveOptions { title: string; width?: number; height?: number }

export async function accuracyCurves(series: Series[], o: CurveOptions): Promise<Uint8Array> {
  const W = o.width ?? 720, H = o.height ?? 440;
  const { bitmap, ctx } = canvas(W, H);
  const left = 64, right = W - 170, top = 40, bottom = H - 56;
  const all = series.flatMap((s) => s.points);
  const pos = [...new Set(all.map((p) => p.eps).filter((e) => e > 0))].sort((a, b) => a - b);
  const hasClean = all.some((p) => p.eps === 0);
  const lo = Math.log10(pos[0] ?? 1 / 255) - 0.15, hi = Math.log10(pos[pos.length - 1] ?? 1 / 255) + 0.15;
  const cleanX = left + 18, axisStart = hasClean ? left + 52 : left;
  const xOf = (eps: number) => (eps === 0 ? cleanX : axisStart + ((Math.log10(eps) - lo) / Math.max(hi - lo, 1e-9)) * (right - axisStart));
  const yOf = (acc: number) => bottom - acc * (bottom - top);
  text(ctx, o.title, W / 2, 24, { size: 15, align: 'center' });
  // Axes and grid.
  for (let a = 0; a <= 1.0001; a += 0.2) {
    line(ctx, left, yOf(a), right, yOf(a), '#e4e4e4');
    text(ctx, `${Math.round(a * 100)}`, left - 8, yOf(a) + 4, { align: 'right', size: 11 });
  }
  line(ctx, left, top, left, bottom, '#444444');
  line(ctx, left, bottom, right, bottom, '#444444');
  if (hasClean) {
    // Axis break between the clean point and the log axis.
    const bx = (cleanX + axisStart) / 2;
    line(ctx, bx - 5, bottom + 5, bx - 1, bottom - 5, '#444444');
    line(ctx, bx + 1, bottom + 5, bx + 5, bottom - 5, '#444444');
    text(ctx, 'clean', cleanX, bottom + 18, { align: 'center', size: 11 });
  }
  for (const e of pos) {
    line(ctx, xOf(e), bottom, xOf(e), bottom + 5, '#444444');
    text(ctx, `${+(e * 255).toFixed(3)}`, xOf(e), bottom + 18, { align: 'center', size: 11 });
  }
  text(ctx, 'epsilon (1/255 units, log scale)', (axisStart + right) / 2, H - 14, { align: 'center', size: 12 });
  ctx.save();
  ctx.translate(18, (top + bottom) / 2);
  ctx.rotate(-Math.PI / 2);
  text(ctx, 'accuracy (%)', 0, 0, { align: 'center', size: 12 });
  ctx.restore();
  // Lines, error bars, markers, legend.
  series.forEach((s, k) => {
    const color = PALETTE[k % PALETTE.length]!;
    const pts = [...s.points].sort((a, b) => a.eps - b.eps);
    pts.forEach((p, i) => {
      const x = xOf(p.eps), y = yOf(p.mean);
      if (i > 0) line(ctx, xOf(pts[i - 1]!.eps), yOf(pts[i - 1]!.mean), x, y, color, 2);
      if (p.std > 0) {
        line(ctx, x, yOf(Math.min(1, p.mean + p.std)), x, yOf(Math.max(0, p.mean - p.std)), color, 1);
        line(ctx, x - 4, yOf(Math.min(1, p.mean + p.std)), x + 4, yOf(Math.min(1, p.mean + p.std)), color, 1);
        line(ctx, x - 4, yOf(Math.max(0, p.mean - p.std)), x + 4, yOf(Math.max(0, p.mean - p.std)), color, 1);
      }
      ctx.fillStyle = color;
      ctx.fillRect(x - 3, y - 3, 7, 7);
    });
    const ly = top + 10 + 20 * k;
    line(ctx, right + 16, ly, right + 40, ly, color, 3);
    text(ctx, s.name, right + 46, ly + 4, { size: 12 });
  });
  return toPng(bitmap);
}
