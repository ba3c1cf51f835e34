// Small browser helpers for the page: planar images and maps to canvases, probability bars,
// image files to planes at the model's size (resized as the Node loader resizes), a loss curve.
import { resizePlane } from '../data/resize.js';
import { heat } from '../report/colors.js';

/** Paints C x S x S planes in [0, 1] (C = 1 or 3) onto a canvas of S x S pixels. */
export function drawPlanes(canvas: HTMLCanvasElement, planes: Float32Array, channels: number, size: number, map?: (v: number) => [number, number, number]): void {
  canvas.width = size; canvas.height = size;
  const ctx = canvas.getContext('2d')!;
  const img = ctx.createImageData(size, size);
  const plane = size * size;
  for (let p = 0; p < plane; p++) {
    const v = (c: number) => planes[(channels === 1 ? 0 : c) * plane + p]!;
    const rgb: [number, number, number] = map ? map(v(0)) : [v(0), v(1), v(2)].map((u) => Math.round(255 * Math.min(1, Math.max(0, u)))) as [number, number, number];
    img.data.set([...rgb, 255], 4 * p);
  }
  ctx.putImageData(img, 0, 0);
}

export const drawHeat = (canvas: HTMLCanvasElement, map: Float32Array, size: number): void => drawPlanes(canvas, map, 1, size, heat);

/** Probability bars; the element records the predicted class and its probability for tests. */
export function drawBars(el: HTMLElement, probs: ArrayLike<number>, classes: string[]): void {
  const best = Array.from(probs).indexOf(Math.max(...Array.from(probs)));
  el.dataset.class = classes[best];
  el.dataset.prob = String(probs[best]);
  el.replaceChildren(...classes.map((c, i) => {
    const row = document.createElement('div');
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.style.width = `${Math.round(100 * probs[i]!)}px`;
    row.append(`${c}`, bar, `${(100 * probs[i]!).toFixed(1)}%`);
    if (i === best) row.style.fontWeight = 'bold';
    return row;
  }));
}

/** A PNG or JPEG file as C x size x size planes in [0, 1] (grey when every pixel is grey). */
export async function imageToPlanes(blob: Blob, size: number, channels: number): Promise<Float32Array> {
  const bitmap = await createImageBitmap(blob).catch(() => { throw new Error(`cannot decode this image (${blob.type || 'unknown type'}); use a PNG or JPEG`); });
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width; canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0);
  const { data } = ctx.getImageData(0, 0, bitmap.width, bitmap.height);
  const n = bitmap.width * bitmap.height;
  const src = [0, 1, 2].map((c) => Float32Array.from({ length: n }, (_, p) => data[4 * p + c]! / 255));
  const grey = src[0]!.every((v, p) => v === src[1]![p] && v === src[2]![p]);
  const planes = (grey ? [src[0]!] : src).map((pl) => resizePlane(pl, bitmap.height, bitmap.width, size, size));
  const out = new Float32Array(channels * size * size);
  for (let c = 0; c < channels; c++) out.set(planes[Math.min(c, planes.length - 1)]!, c * size * size);
  return out;
}

/** A loss curve over steps. */
export function drawCurve(canvas: HTMLCanvasElement, values: number[]): void {
  const ctx = canvas.getContext('2d')!;
  const { width: W, height: H } = canvas;
  ctx.clearRect(0, 0, W, H);
  if (values.length < 2) return;
  const hi = Math.max(...values), lo = Math.min(0, ...values);
  ctx.strokeStyle = '#0072B2'; ctx.lineWidth = 2; ctx.beginPath();
  values.forEach((v, i) => {
    const x = 30 + (i / (values.length - 1)) * (W - 40), y = H - 20 - ((v - lo) / (hi - lo || 1)) * (H - 40);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = '#222'; ctx.font = '12px sans-serif';
  ctx.fillText(`loss ${values[values.length - 1]!.toFixed(3)} (step ${values.length})`, 34, 16);
}
