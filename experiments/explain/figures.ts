// The saliency figure (the paper's Figures 3 and 4): per image, the clean image and its
// saliency map, then the adversarial image and its map, each captioned with the predicted
// label and its confidence, so a reader sees at a glance whether the attention moved.
import { canvas, heatmap, image, text, toPng } from '../report/canvas.js';

export interface SaliencyRow {
  /** C x H x W in [0, 1]. */
  clean: Float32Array;
  adversarial: Float32Array;
  cleanMap: Float32Array;
  adversarialMap: Float32Array;
  label: string;
  cleanPred: string;
  cleanConfidence: number;
  adversarialPred: string;
  adversarialConfidence: number;
}

export async function saliencyFigure(rows: SaliencyRow[], o: { channels: number; size: number; title: string }): Promise<{ png: Uint8Array; width: number; height: number }> {
  const scale = Math.max(1, Math.floor(112 / o.size)), cellW = o.size * scale, gap = 10, capH = 32, headH = 44;
  const width = 4 * cellW + 5 * gap, height = headH + rows.length * (cellW + capH + gap);
  const { bitmap, ctx } = canvas(width, height);
  text(ctx, o.title, width / 2, 16, { size: 13, align: 'center' });
  ['clean image', 'saliency (clean)', 'attacked image', 'saliency (attacked)'].forEach((h, k) => text(ctx, h, gap + k * (cellW + gap) + cellW / 2, 36, { size: 11, align: 'center' }));
  rows.forEach((r, i) => {
    const y = headH + i * (cellW + capH + gap);
    const xAt = (k: number) => gap + k * (cellW + gap);
    image(bitmap, r.clean, o.channels, o.size, o.size, xAt(0), y, scale);
    heatmap(bitmap, r.cleanMap, o.size, o.size, xAt(1), y, scale);
    image(bitmap, r.adversarial, o.channels, o.size, o.size, xAt(2), y, scale);
    heatmap(bitmap, r.adversarialMap, o.size, o.size, xAt(3), y, scale);
    const wrong = (p: string) => (p === r.label ? '#1a7f37' : '#c0392b');
    text(ctx, `true ${r.label}`, xAt(0) + cellW / 2, y + cellW + 13, { size: 10, align: 'center' });
    text(ctx, `pred ${r.cleanPred} ${(100 * r.cleanConfidence).toFixed(0)}%`, xAt(1) + cellW / 2, y + cellW + 13, { size: 10, align: 'center', color: wrong(r.cleanPred) });
    text(ctx, `pred ${r.adversarialPred} ${(100 * r.adversarialConfidence).toFixed(0)}%`, xAt(3) + cellW / 2, y + cellW + 13, { size: 10, align: 'center', color: wrong(r.adversarialPred) });
  });
  return { png: await toPng(bitmap), width, height };
}
