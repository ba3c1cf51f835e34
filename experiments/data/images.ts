// Decoding PNG (pngjs) and JPEG (jpeg-js) into planes in [0, 1]. Greyscale sources are
// detected (equal R, G, B) so that a model asking for 3 channels gets the grey repeated and a
// model asking for 1 gets a single plane.
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { resizePlane, type ResizeMethod } from './resize.js';

export interface Decoded { width: number; height: number; rgba: Uint8Array }

export function decodeImage(bytes: Uint8Array, file: string): Decoded {
  const isPng = bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47;
  const isJpeg = bytes[0] === 0xff && bytes[1] === 0xd8;
  try {
    if (isPng) {
      const p = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: p.width, height: p.height, rgba: new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength) };
    }
    if (isJpeg) {
      const j = jpeg.decode(bytes, { useTArray: true, maxMemoryUsageInMB: 1024 });
      return { width: j.width, height: j.height, rgba: j.data };
    }
  } catch (e) {
    throw new Error(`medgrad: ${file}: cannot decode image: ${(e as Error).message}`);
  }
  throw new Error(`medgrad: ${file}: unsupported image format (PNG and JPEG are read)`);
}

/** Decoded image -> `channels` planes of size x size in [0, 1] (written into out). */
export function toPlanes(img: Decoded, channels: 1 | 3, size: number, method: ResizeMethod, out: Float32Array): void {
  const n = img.width * img.height;
  const planes = [0, 1, 2].map((c) => {
    const p = new Float32Array(n);
    for (let i = 0; i < n; i++) p[i] = img.rgba[i * 4 + c]! / 255;
    return p;
  });
  const grey = new Float32Array(n);
  for (let i = 0; i < n; i++) grey[i] = (planes[0]![i]! + planes[1]![i]! + planes[2]![i]!) / 3;
  const src = channels === 1 ? [grey] : planes;
  src.forEach((p, c) => out.set(resizePlane(p, img.height, img.width, size, size, method), c * size * size));
}

export function isGreyscale(img: Decoded): boolean {
  for (let i = 0; i < img.rgba.length; i += 4 * 7) {
    if (img.rgba[i] !== img.rgba[i + 1] || img.rgba[i] !== img.rgba[i + 2]) return false;
  }
  return true;
}
