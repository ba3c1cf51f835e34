// Drawing figures to PNG in Node without a browser: pureimage's canvas-like context, with the
// DejaVu Sans font from the dejavu-fonts-ttf package (so labels look the same on every machine).
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as PImage from 'pureimage';
import { heat } from './colors.js';

export { heat, PALETTE } from './colors.js';

export type Bitmap = ReturnType<typeof PImage.make>;
export type Context = ReturnType<Bitmap['getContext']>;

export const FONT = 'DejaVu Sans';
let fontLoaded = false;

function loadFont(): void {
  if (fontLoaded) return;
  const require = createRequire(import.meta.url);
  const dir = dirname(require.resolve('dejavu-fonts-ttf/package.json'));
  PImage.registerFont(join(dir, 'ttf', 'DejaVuSans.ttf'), FONT).loadSync();
  fontLoaded = true;
}

/** A white canvas of w x h pixels and its drawing context. */
export function canvas(w: number, h: number): { bitmap: Bitmap; ctx: Context } {
  loadFont();
  const bitmap = PImage.make(w, h);
  const ctx = bitmap.getContext('2d');
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, w, h);
  return { bitmap, ctx };
}

export function text(ctx: Context, s: string, x: number, y: number, o: { size?: number; color?: string; align?: 'left' | 'center' | 'right' } = {}): void {
  ctx.font = `${o.size ?? 12}px '${FONT}'`;
  ctx.fillStyle = o.color ?? '#222222';
  const w = ctx.measureText(s).width;
  ctx.fillText(s, o.align === 'center' ? x - w / 2 : o.align === 'right' ? x - w : x, y);
}

export function line(ctx: Context, x0: number, y0: number, x1: number, y1: number, color: string, width = 1): void {
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.beginPath();
  ctx.moveTo(x0, y0);
  ctx.lineTo(x1, y1);
  ctx.stroke();
}

/** Paints an RGB image (values in [0, 1], planar C x H x W with C = 1 or 3) at (x, y), scaled by an integer factor. */
export function image(bitmap: Bitmap, planes: Float32Array, channels: number, h: number, w: number, x: number, y: number, scale = 1): void {
  for (let r = 0; r < h * scale; r++) {
    for (let c = 0; c < w * scale; c++) {
      const i = Math.floor(r / scale) * w + Math.floor(c / scale);
      const v = (k: number) => Math.round(255 * Math.min(1, Math.max(0, planes[(channels === 1 ? 0 : k) * h * w + i]!)));
      bitmap.setPixelRGBA_i(x + c, y + r, v(0), v(1), v(2), 255);
    }
  }
}

export async function toPng(bitmap: Bitmap): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => chunks.push(c));
  await PImage.encodePNGToStream(bitmap, sink);
  return new Uint8Array(Buffer.concat(chunks));
}


/** Paints a map in [0, 1] (H x W) with the heat ramp at (x, y), scaled by an integer factor. */
export function heatmap(bitmap: Bitmap, map: Float32Array, h: number, w: number, x: number, y: number, scale = 1): void {
  for (let r = 0; r < h * scale; r++) {
    for (let c = 0; c < w * scale; c++) {
      const [R, G, B] = heat(map[Math.floor(r / scale) * w + Math.floor(c / scale)]!);
      bitmap.setPixelRGBA_i(x + c, y + r, R, G, B, 255);
    }
  }
}
