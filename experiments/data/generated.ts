// The project's own data: seeded synthetic images in the three modalities' shapes, with class
// evidence a small CNN can learn (and noise so that it is not trivial). Deterministic for a
// given (name, size, count, seed); no download, no real patient.
//   chest  greyscale, 2 classes (NORMAL, PNEUMONIA): dark lung fields in a bright body;
//          pneumonia adds soft bright opacities inside the lungs.
//   skin   RGB, 2 classes (Melanoma, NotMelanoma): a lesion on skin; melanoma is larger,
//          irregular and darker with blue-black patches, a nevus small, round and even.
//   retina greyscale, 4 classes (CNV, DME, DRUSEN, NORMAL): OCT-like layers; CNV lifts the deep
//          layer in one large bump, DME opens dark cysts, DRUSEN adds small deep bumps.
import { Generator } from '../../engine/index.js';
import type { ImageDataset } from './dataset.js';

export const GENERATED = {
  chest: { channels: 1, classes: ['NORMAL', 'PNEUMONIA'] },
  skin: { channels: 3, classes: ['Melanoma', 'NotMelanoma'] },
  retina: { channels: 1, classes: ['CNV', 'DME', 'DRUSEN', 'NORMAL'] },
} as const;
export type GeneratedName = keyof typeof GENERATED;

const clamp01 = (v: number) => (v < 0 ? 0 : v > 1 ? 1 : v);
const gauss = (dx: number, dy: number, r: number) => Math.exp(-(dx * dx + dy * dy) / (2 * r * r));

function chest(g: Generator, s: number, label: number, out: Float32Array): void {
  const cx = 0.5 + (g.random() - 0.5) * 0.08, cy = 0.52 + (g.random() - 0.5) * 0.08;
  const lungs = [[cx - 0.18, cy], [cx + 0.18, cy]] as const;
  const blobs = label === 1 ? Array.from({ length: 1 + g.int(3) }, () => {
    const l = lungs[g.int(2)]!;
    return [l[0] + (g.random() - 0.5) * 0.16, l[1] + (g.random() - 0.5) * 0.3, 0.05 + g.random() * 0.06, 0.2 + g.random() * 0.2];
  }) : [];
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
    const x = (j + 0.5) / s, y = (i + 0.5) / s;
    let v = 0.62 - 0.25 * ((x - 0.5) ** 2 + (y - 0.5) ** 2);
    for (const [lx, ly] of lungs) if (((x - lx) / 0.13) ** 2 + ((y - ly) / 0.28) ** 2 < 1) v = 0.22 + 0.05 * (y - ly);
    for (const [bx, by, r, a] of blobs) v += a! * gauss(x - bx!, y - by!, r!);
    out[i * s + j] = clamp01(v + 0.05 * (g.random() - 0.5) * 2);
  }
}

function skin(g: Generator, s: number, label: number, out: Float32Array): void {
  const mel = label === 0;
  const base = [0.86 + 0.06 * (g.random() - 0.5), 0.66 + 0.06 * (g.random() - 0.5), 0.56 + 0.06 * (g.random() - 0.5)];
  const cx = 0.5 + (g.random() - 0.5) * 0.2, cy = 0.5 + (g.random() - 0.5) * 0.2;
  const r0 = mel ? 0.22 + g.random() * 0.08 : 0.12 + g.random() * 0.06;
  const harmonics = mel ? [[3 + g.int(3), 0.12 + g.random() * 0.1, g.random() * 6.28], [7 + g.int(4), 0.06, g.random() * 6.28]] : [[2, 0.03, g.random() * 6.28]];
  const color = mel ? [0.32, 0.2, 0.16] : [0.5, 0.34, 0.24];
  const patches = mel ? Array.from({ length: 2 + g.int(3) }, () => [cx + (g.random() - 0.5) * r0, cy + (g.random() - 0.5) * r0, 0.03 + g.random() * 0.04]) : [];
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
    const x = (j + 0.5) / s, y = (i + 0.5) / s;
    const a = Math.atan2(y - cy, x - cx), d = Math.hypot(x - cx, y - cy);
    const r = r0 * (1 + harmonics.reduce((t, [k, amp, ph]) => t + amp! * Math.sin(k! * a + ph!), 0));
    const inside = clamp01((r - d) / 0.02 + 0.5);
    const dark = patches.reduce((t, [px, py, pr]) => Math.max(t, gauss(x - px!, y - py!, pr!)), 0);
    const n = 0.04 * (g.random() - 0.5) * 2;
    for (let c = 0; c < 3; c++) {
      let v = base[c]! * (1 - inside) + color[c]! * inside;
      if (mel) v = v * (1 - 0.6 * dark * inside) + (c === 2 ? 0.25 : 0.05) * dark * inside;
      out[(c * s + i) * s + j] = clamp01(v + n);
    }
  }
}

function retina(g: Generator, s: number, label: number, out: Float32Array): void {
  const tilt = (g.random() - 0.5) * 0.1, top = 0.35 + (g.random() - 0.5) * 0.06;
  const bump = label === 0 ? [0.3 + g.random() * 0.4, 0.08 + g.random() * 0.04, 0.1 + g.random() * 0.05] : null;
  const cysts = label === 1 ? Array.from({ length: 2 + g.int(3) }, () => [0.25 + g.random() * 0.5, top + 0.08 + g.random() * 0.1, 0.025 + g.random() * 0.03]) : [];
  const drusen = label === 2 ? Array.from({ length: 3 + g.int(4) }, () => [0.1 + g.random() * 0.8, 0.025 + g.random() * 0.015]) : [];
  for (let i = 0; i < s; i++) for (let j = 0; j < s; j++) {
    const x = (j + 0.5) / s, y = (i + 0.5) / s;
    const surface = top + tilt * (x - 0.5) + 0.03 * Math.cos(6 * x);
    let deep = surface + 0.25;
    if (bump) deep -= bump[2]! * gauss(x - bump[0]!, 0, bump[1]!);
    for (const [dx, dr] of drusen) deep -= 0.4 * dr! * gauss(x - dx!, 0, dr!);
    const t = y - surface;
    let v = 0.08;
    if (t > 0 && y < deep) v = 0.35 + 0.25 * Math.cos(40 * t) ** 2; // layered tissue
    if (Math.abs(y - deep) < 0.025) v = 0.9;                          // the bright deep layer
    for (const [cx, cy, r] of cysts) if (Math.hypot(x - cx!, y - cy!) < r!) v = 0.05;
    out[i * s + j] = clamp01(v + 0.06 * (g.random() - 0.5) * 2);
  }
}

const DRAW: Record<GeneratedName, (g: Generator, s: number, label: number, out: Float32Array) => void> = { chest, skin, retina };

/** `count` images of `size` px, classes balanced in turn, drawn from `seed`. */
export function generateDataset(name: string, o: { size: number; count: number; seed?: number }): ImageDataset {
  if (!(name in GENERATED)) throw new Error(`medgrad: unknown generated dataset '${name}' (have ${Object.keys(GENERATED).join(', ')})`);
  if (!Number.isInteger(o.size) || o.size < 8) throw new Error(`medgrad: generated images need a size of at least 8 px, got ${o.size}`);
  const spec = GENERATED[name as GeneratedName];
  const per = spec.channels * o.size * o.size;
  const x = new Float32Array(o.count * per);
  const y = new Int32Array(o.count);
  const g = new Generator(o.seed ?? 0);
  for (let k = 0; k < o.count; k++) {
    y[k] = k % spec.classes.length;
    DRAW[name as GeneratedName](g, o.size, y[k]!, x.subarray(k * per, (k + 1) * per));
  }
  return { x, y, n: o.count, channels: spec.channels, size: o.size, classes: [...spec.classes], source: `generated:${name} (${o.count} images, ${o.size} px, seed ${o.seed ?? 0})` };
}
