// The page's example model and images, made by the project itself (nothing is committed):
// ResNet-8 (small-input variant) trained on generated chest X-ray-like images at 32 px, and
// four test images of that data as PNG, written to experiments/web/public/example/.
// Deterministic (seeded data, initialisation and order); about a minute on two CPU cores.
// `npm run web`, `web:build`, the page's test and the browser bench call ensureExample() first;
// `npm run web:example` remakes it.
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import * as E from '../../engine/node.js';
import { generateDataset } from '../data/generated.js';
import { protocolSplit } from '../data/splits.js';
import { train } from '../train/trainer.js';
import { Progress } from '../train/progress.js';
import { writeFileAtomic } from '../io/atomic.js';

export const EXAMPLE_DIR = join(import.meta.dirname, 'public', 'example');
const SIZE = 32, COUNT = 600;

/** Makes the example unless a complete one is there (images/index.json is written last). */
export async function ensureExample(o: { force?: boolean; log?: (line: string) => void } = {}): Promise<string> {
  const log = o.log ?? console.log;
  if (!o.force && existsSync(join(EXAMPLE_DIR, 'images', 'index.json'))) return EXAMPLE_DIR;
  log(`making the page's example model in ${EXAMPLE_DIR} (about a minute)`);
  rmSync(EXAMPLE_DIR, { recursive: true, force: true });
  await E.init();
  const ds = generateDataset('chest', { size: SIZE, count: COUNT, seed: 0 });
  const splits = protocolSplit(ds.n, 127);
  const dir = join(EXAMPLE_DIR, '.run');
  await train({
    model: 'resnet8', imageSize: SIZE, channels: 3, classes: ds.classes.length, smallInput: true, epochs: 3, batchSize: 32, lr: 1e-3,
    lrDropEpoch: 2, l2: 1e-4, augment: true, seed: 0, bnMomentum: 0.1,
  }, { out: dir, ds, splits, run: { data: 'generated:chest', split: splits.kind, splitSeed: 127, count: COUNT }, log, progress: new Progress(false, log) });
  copyFileSync(join(dir, 'best.safetensors'), join(EXAMPLE_DIR, 'model.safetensors'));
  copyFileSync(join(dir, 'checkpoint.json'), join(EXAMPLE_DIR, 'checkpoint.json'));
  rmSync(dir, { recursive: true, force: true });
  // Two test images per class, grey PNGs at the model's size.
  const plane = SIZE * SIZE;
  const picks = ds.classes.flatMap((_, c) => splits.test.filter((i) => ds.y[i] === c).slice(0, 2));
  const files = picks.map((i, k) => `${k}-${ds.classes[ds.y[i]!]}.png`);
  mkdirSync(join(EXAMPLE_DIR, 'images'), { recursive: true });
  picks.forEach((i, k) => {
    const png = new PNG({ width: SIZE, height: SIZE });
    for (let p = 0; p < plane; p++) {
      const v = Math.round(255 * ds.x[i * ds.channels * plane + p]!);
      png.data.set([v, v, v, 255], 4 * p);
    }
    writeFileAtomic(join(EXAMPLE_DIR, 'images', files[k]!), PNG.sync.write(png));
  });
  writeFileAtomic(join(EXAMPLE_DIR, 'images', 'index.json'), JSON.stringify(files) + '\n');
  return EXAMPLE_DIR;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const force = !process.argv.includes('--if-missing');
  await ensureExample({ force });
  console.log(`example model and images in ${EXAMPLE_DIR}`);
}
