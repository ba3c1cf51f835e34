// `npm run web:example`: the page's bundled example model and images, made by the project
// itself: ResNet-8 (small-input variant) trained on generated chest X-ray-like images at
// 32 px, and four test images of that data as PNG. Deterministic; the output is committed in
// experiments/web/public/example/ so that the page works without training first.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import * as E from '../../engine/node.js';
import { generateDataset } from '../data/generated.js';
import { protocolSplit } from '../data/splits.js';
import { train } from '../train/trainer.js';
import { writeFileAtomic } from '../io/atomic.js';

const OUT = join(import.meta.dirname, 'public', 'example');
const SIZE = 32;

await E.init();
const ds = generateDataset('chest', { size: SIZE, count: 1200, seed: 0 });
const splits = protocolSplit(ds.n, 127);
const dir = join(OUT, '.run');
rmSync(dir, { recursive: true, force: true });
await train({
  model: 'resnet8', imageSize: SIZE, channels: 3, classes: ds.classes.length, smallInput: true, epochs: 5, batchSize: 32, lr: 1e-3,
  lrDropEpoch: 4, l2: 1e-4, augment: true, seed: 0, bnMomentum: 0.1,
}, { out: dir, ds, splits, run: { data: 'generated:chest', split: splits.kind, splitSeed: 127, count: 1200 } });
copyFileSync(join(dir, 'best.safetensors'), join(OUT, 'model.safetensors'));
copyFileSync(join(dir, 'checkpoint.json'), join(OUT, 'checkpoint.json'));
rmSync(dir, { recursive: true, force: true });
// Two test images per class, grey PNGs at the model's size.
const plane = SIZE * SIZE;
const picks = ds.classes.flatMap((_, c) => splits.test.filter((i) => ds.y[i] === c).slice(0, 2));
mkdirSync(join(OUT, 'images'), { recursive: true });
const files = picks.map((i, k) => `${k}-${ds.classes[ds.y[i]!]}.png`);
writeFileAtomic(join(OUT, 'images', 'index.json'), JSON.stringify(files) + '\n');
picks.forEach((i, k) => {
  const png = new PNG({ width: SIZE, height: SIZE });
  for (let p = 0; p < plane; p++) {
    const v = Math.round(255 * ds.x[i * ds.channels * plane + p]!);
    png.data.set([v, v, v, 255], 4 * p);
  }
  writeFileAtomic(join(OUT, 'images', files[k]!), PNG.sync.write(png));
});
console.log(`example model and ${picks.length} images in ${OUT}`);
