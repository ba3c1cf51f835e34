// Data: .npy/.npz parsing, image-folder trees (PNG and JPEG, Kermany/OCT/ISIC layouts,
// labels.csv patient ids), the decoded cache, the protocol's exact splits, patient grouping,
// generated data, augmentation, and every bad-input error naming its file.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { PNG } from 'pngjs';
import jpeg from 'jpeg-js';
import { Generator } from '../engine/node.js';
import { loadDataset } from '../experiments/data/load.js';
import { parseNpy } from '../experiments/data/npy.js';
import { groupedSplit, protocolSplit } from '../experiments/data/splits.js';
import { generateDataset } from '../experiments/data/generated.js';
import { makeBatch } from '../experiments/data/augment.js';
import { classCounts, validateLabels } from '../experiments/data/dataset.js';
import { resizePlane } from '../experiments/data/resize.js';

const root = mkdtempSync(join(tmpdir(), 'medgrad-data-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function npy(shape: number[], descr: string, data: Uint8Array): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const out = new Uint8Array(10 + header.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(data, 10 + header.length);
  return out;
}

function png(w: number, h: number, f: (x: number, y: number) => [number, number, number]): Buffer {
  const p = new PNG({ width: w, height: h });
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) { const [r, g, b] = f(x, y); p.data.set([r, g, b, 255], (y * w + x) * 4); }
  return PNG.sync.write(p);
}

function jpg(w: number, h: number, grey: number): Uint8Array {
  const data = Buffer.alloc(w * h * 4, grey);
  return jpeg.encode({ data, width: w, height: h }, 95).data;
}

describe('npy and npz', () => {
  it('parses uint8 images and labels, and names the key that is missing', async () => {
    const imgs = Uint8Array.from({ length: 3 * 4 * 4 }, (_, i) => (i * 7) % 256);
    const a = parseNpy(npy([3, 4, 4], '|u1', imgs), 'x.npy');
    expect(a.shape).toEqual([3, 4, 4]);
    const file = join(root, 'tiny.npz');
    writeFileSync(file, zipSync({
      'train_images.npy': npy([3, 4, 4], '|u1', imgs), 'train_labels.npy': npy([3, 1], '|u1', Uint8Array.from([0, 1, 1])),
      'test_images.npy': npy([1, 4, 4], '|u1', imgs.subarray(0, 16)), 'test_labels.npy': npy([1, 1], '|u1', Uint8Array.from([1])),
    }));
    const ds = await loadDataset(file, { imageSize: 4, cacheDir: null });
    expect([ds.n, ds.channels, ds.size]).toEqual([4, 1, 4]);
    expect(Array.from(ds.y)).toEqual([0, 1, 1, 1]);
    expect(ds.split).toEqual(['train', 'train', 'train', 'test']);
    expect(ds.x[1]).toBeCloseTo(7 / 255, 6);
    const bad = join(root, 'bad.npz');
    writeFileSync(bad, zipSync({ 'train_images.npy': npy([3, 4, 4], '|u1', imgs) }));
    await expect(loadDataset(bad, { imageSize: 4, cacheDir: null })).rejects.toThrow(/bad\.npz is missing train_labels/);
    const mismatch = join(root, 'mismatch.npz');
    writeFileSync(mismatch, zipSync({ 'train_images.npy': npy([3, 4, 4], '|u1', imgs), 'train_labels.npy': npy([2, 1], '|u1', Uint8Array.from([0, 1])) }));
    await expect(loadDataset(mismatch, { imageSize: 4, cacheDir: null })).rejects.toThrow(/mismatch\.npz: train_images has 3 images but train_labels has 2 labels/);
    expect(() => parseNpy(npy([3, 4, 4], '|u1', imgs).subarray(0, 100), 'cut.npy')).toThrow(/cut\.npy is truncated/);
  });

  it('reads each image dtype as what it is, by a documented rule, and refuses what cannot be an image', async () => {
    const n = 2, px = 4 * 4;
    const labels = npy([n, 1], '|u1', Uint8Array.from([0, 1]));
    const bytes = (a: Float32Array | Float64Array | Int32Array) => new Uint8Array(a.buffer);
    const write = (name: string, images: Uint8Array, lb = labels) => {
      const file = join(root, `${name}.npz`);
      writeFileSync(file, zipSync({ 'train_images.npy': images, 'train_labels.npy': lb }));
      return file;
    };
    const load = (file: string) => loadDataset(file, { imageSize: 4, cacheDir: null });
    const ramp = (k: number) => Array.from({ length: n * px }, (_, i) => (i % px) * k);
    // float32 in [0, 1]: taken as is (it was read as bytes and divided by 255 before).
    const f01 = await load(write('f32-unit', npy([n, 4, 4], '<f4', bytes(Float32Array.from(ramp(1 / 15))))));
    expect(f01.x[15]).toBeCloseTo(1, 6);
    expect(f01.x[5]).toBeCloseTo(5 / 15, 6);
    // float64 in [0, 255]: divided by 255.
    const f255 = await load(write('f64-255', npy([n, 4, 4], '<f8', bytes(Float64Array.from(ramp(17))))));
    expect(f255.x[15]).toBeCloseTo(1, 6);
    expect(f255.x[3]).toBeCloseTo(51 / 255, 6);
    // int32 0..255: divided by 255.
    const i32 = await load(write('i32', npy([n, 4, 4], '<i4', bytes(Int32Array.from(ramp(17))))));
    expect(i32.x[15]).toBeCloseTo(1, 6);
    // Values no image has are refused, naming the file and the array.
    const neg = write('neg', npy([n, 4, 4], '<f4', bytes(Float32Array.from(ramp(1), (v) => v - 3))));
    await expect(load(neg)).rejects.toThrow(/neg\.npz: train_images \(<f4\) has values in \[-3, 12\]; images must lie in \[0, 1\] \(float\) or \[0, 255\]/);
    const big = write('big', npy([n, 4, 4], '<f8', bytes(Float64Array.from(ramp(100)))));
    await expect(load(big)).rejects.toThrow(/big\.npz: train_images \(<f8\) has values in \[0, 1500\]/);
    const nan = write('nan', npy([n, 4, 4], '<f4', bytes(Float32Array.from(ramp(0.01), (v, i) => (i === 7 ? NaN : v)))));
    await expect(load(nan)).rejects.toThrow(/nan\.npz: train_images holds NaN at element 7; an image array must be finite/);
    // Labels: one class index per image.
    const images = npy([n, 4, 4], '|u1', new Uint8Array(n * px));
    const multi = write('multi', images, npy([n, 3], '|u1', Uint8Array.from([0, 1, 1, 1, 0, 0])));
    await expect(load(multi)).rejects.toThrow(/multi\.npz: train_labels has shape \(2, 3\); expected one class label per image \(N or N x 1\): multi-label data is not supported/);
    const frac = write('frac', images, npy([n], '<f4', bytes(Float32Array.from([0, 1.5]))));
    await expect(load(frac)).rejects.toThrow(/frac\.npz: train_labels: label 1\.5 of image 1 is not a class index/);
  });

  it('counts classes of a large label array without overflowing the stack', async () => {
    const n = 400_000;
    const file = join(root, 'many.npz');
    writeFileSync(file, zipSync({
      'train_images.npy': npy([n, 1, 1], '|u1', new Uint8Array(n)),
      'train_labels.npy': npy([n], '<i4', new Uint8Array(Int32Array.from({ length: n }, (_, i) => i % 3).buffer)),
    }));
    const ds = await loadDataset(file, { imageSize: 1, cacheDir: null });
    expect(ds.classes).toEqual(['0', '1', '2']);
    expect(ds.n).toBe(n);
  });

  it('reads the real PneumoniaMNIST with its own split (skipped without ../shared)', async (ctx) => {
    const file = join(__dirname, '../../shared/datasets/pneumoniamnist/pneumoniamnist.npz');
    try { readdirSync(join(__dirname, '../../shared/datasets/pneumoniamnist')); } catch { ctx.skip('../shared/datasets/pneumoniamnist is not beside this checkout (a user\'s download; CI has it)'); return; }
    const ds = await loadDataset(file, { imageSize: 28, cacheDir: null });
    expect(ds.n).toBe(4708 + 524 + 624);
    expect(classCounts(ds)).toEqual([1214 + 135 + 234, 3494 + 389 + 390]);
  });
});

describe('image folders', () => {
  const oct = join(root, 'OCT2017');
  for (const [split, n] of [['train', 3], ['test', 1]] as const) for (const cls of ['CNV', 'DME', 'DRUSEN', 'NORMAL']) {
    mkdirSync(join(oct, split, cls), { recursive: true });
    for (let i = 0; i < n; i++) writeFileSync(join(oct, split, cls, `${cls}-${i}.jpeg`), jpg(24 + i, 16, 40 * (i + 1)));
  }

  it('reads an OCT2017-like tree (JPEG, greyscale, any size) into 4 classes with its split', async () => {
    const ds = await loadDataset(oct, { imageSize: 8, cacheDir: null });
    expect(ds.classes).toEqual(['CNV', 'DME', 'DRUSEN', 'NORMAL']);
    expect([ds.n, ds.channels, ds.size]).toEqual([16, 1, 8]);
    expect(ds.split!.filter((s) => s === 'test')).toHaveLength(4);
    expect(ds.x[0]).toBeCloseTo(40 / 255, 1);
  });

  it('reads RGB PNGs, uses labels.csv patient ids, and caches the decoded set', async () => {
    const skin = join(root, 'skin');
    const rows = ['path,label,subtype,patient_id'];
    for (const cls of ['Melanoma', 'NotMelanoma']) {
      mkdirSync(join(skin, cls), { recursive: true });
      for (let i = 0; i < 6; i++) {
        writeFileSync(join(skin, cls, `${i}.png`), png(10, 10, (x, y) => [200, 50 + 10 * i, (x * y) % 255]));
        rows.push(`${cls}/${i}.png,${cls},,P${i % 3}`);
      }
    }
    writeFileSync(join(skin, 'labels.csv'), rows.join('\n'));
    const cache = join(root, 'cache');
    const ds = await loadDataset(skin, { imageSize: 6, cacheDir: cache });
    expect([ds.channels, ds.n]).toEqual([3, 12]);
    expect(readdirSync(cache).filter((f) => f.endsWith('.safetensors'))).toHaveLength(1);
    const again = await loadDataset(skin, { imageSize: 6, cacheDir: cache });
    expect(Array.from(again.x)).toEqual(Array.from(ds.x));
    expect(again.groups).toEqual(ds.groups);
    const sp = groupedSplit(ds, 1, [0.5, 0.25, 0.25]);
    const pat = (idx: number[]) => new Set(idx.map((i) => ds.groups![i]));
    const [a, b, c] = [pat(sp.train), pat(sp.val), pat(sp.test)];
    for (const p of a) { expect(b.has(p)).toBe(false); expect(c.has(p)).toBe(false); }
    for (const p of b) expect(c.has(p)).toBe(false);
  });

  it('stops on a labels.csv without patient ids unless told to split by image (allowNoGroups)', async () => {
    const dir = join(root, 'nocsvcols');
    for (const cls of ['A', 'B']) {
      mkdirSync(join(dir, cls), { recursive: true });
      for (let i = 0; i < 2; i++) writeFileSync(join(dir, cls, `${i}.png`), png(4, 4, () => [10 * i, 0, 0]));
    }
    writeFileSync(join(dir, 'labels.csv'), 'file,label,patient\nA/0.png,A,P1\n');
    await expect(loadDataset(dir, { imageSize: 4, cacheDir: null })).rejects.toThrow(/nocsvcols\/labels\.csv has no 'path' or 'patient_id' column .*one patient's images may land in two splits; .*\(--allow-no-groups; allowNoGroups in code\)/);
    const lines: string[] = [];
    const ds = await loadDataset(dir, { imageSize: 4, cacheDir: null, allowNoGroups: true, log: (l) => lines.push(l) });
    expect(ds.groups).toBeUndefined();
    expect(lines.join('\n')).toMatch(/warning: .*labels\.csv has no 'path' or 'patient_id' column/);
    // The columns are there but an image has no row: its patient is unknown.
    writeFileSync(join(dir, 'labels.csv'), 'path,label,patient_id\nA/0.png,A,P1\nA/1.png,A,P1\nB/0.png,B,P2\n');
    await expect(loadDataset(dir, { imageSize: 4, cacheDir: null })).rejects.toThrow(/labels\.csv has no row for 1 of 4 images \(B\/1\.png\)/);
    const partial = await loadDataset(dir, { imageSize: 4, cacheDir: null, allowNoGroups: true });
    expect(partial.groups).toEqual(['P1', 'P1', 'P2', 'file:1.png']);
  });

  it('refuses a batch whose label is outside the classes (crossEntropy would give NaN)', () => {
    const ds = { x: new Float32Array(2 * 16), y: Int32Array.from([1, 2]), n: 2, channels: 1, size: 4, classes: ['a', 'b'], source: 'toy' };
    expect(makeBatch(ds, [0], { channels: 1 }).y).toEqual(Int32Array.from([1]));
    expect(() => makeBatch(ds, [0, 1], { channels: 1 })).toThrow(/toy: label 2 of image 1 is outside \[0, 2\) \(classes a, b\)/);
    expect(() => makeBatch(ds, [2], { channels: 1 })).toThrow(/batch index 2 is outside the 2 images of toy/);
  });

  it('names the unreadable file, skips it on request, and caches nothing from a failed read', async () => {
    const dir = join(root, 'broken');
    mkdirSync(join(dir, 'A'), { recursive: true });
    mkdirSync(join(dir, 'B'), { recursive: true });
    writeFileSync(join(dir, 'A', 'ok.png'), png(4, 4, () => [1, 2, 3]));
    writeFileSync(join(dir, 'B', 'ok.png'), png(4, 4, () => [9, 9, 9]));
    writeFileSync(join(dir, 'B', 'cut.png'), png(4, 4, () => [9, 9, 9]).subarray(0, 30));
    writeFileSync(join(dir, 'B', 'fake.jpg'), Buffer.from('GIF89a not an image'));
    const cache = join(root, 'cache-broken');
    await expect(loadDataset(dir, { imageSize: 4, cacheDir: cache })).rejects.toThrow(/broken\/B\/cut\.png: cannot decode image/);
    expect(() => readdirSync(cache)).toThrow();
    const lines: string[] = [];
    const ds = await loadDataset(dir, { imageSize: 4, cacheDir: null, skipBad: true, log: (l) => lines.push(l) });
    expect(ds.n).toBe(2);
    expect(lines.join('\n')).toMatch(/skipped 2 unreadable images/);
    expect(lines.join('\n')).toMatch(/fake\.jpg: unsupported image format/);
  });

  it('refuses an empty class folder and a missing dataset', async () => {
    const dir = join(root, 'empty');
    mkdirSync(join(dir, 'A'), { recursive: true });
    mkdirSync(join(dir, 'B'), { recursive: true });
    writeFileSync(join(dir, 'A', 'x.png'), png(2, 2, () => [0, 0, 0]));
    await expect(loadDataset(dir, { imageSize: 2, cacheDir: null })).rejects.toThrow(/class folder .*empty\/B has no PNG or JPEG images/);
    await expect(loadDataset(join(root, 'nope'), { imageSize: 2, cacheDir: null })).rejects.toThrow(/nope does not exist/);
  });

  it('refuses a label out of range', () => {
    const ds = generateDataset('chest', { size: 8, count: 4 });
    ds.y[2] = 5;
    expect(() => validateLabels(ds)).toThrow(/label 5 of image 2 is outside \[0, 2\)/);
  });
});

describe('splits', () => {
  it('reproduce scikit-learn\'s train_test_split with NumPy\'s RandomState exactly', () => {
    // From NumPy 1.24: RandomState(127).permutation, ShuffleSplit's test-first order, twice.
    const s = protocolSplit(20, 127);
    expect(s.train).toEqual([18, 16, 1, 10, 14, 7, 17, 19, 11, 13, 3, 4, 2, 9]);
    expect(s.val).toEqual([15, 8, 5]);
    expect(s.test).toEqual([0, 12, 6]);
  });
});

describe('generated data', () => {
  it('is deterministic, sized as asked, balanced, and differs between classes', () => {
    for (const name of ['chest', 'skin', 'retina'] as const) {
      const a = generateDataset(name, { size: 16, count: 40, seed: 3 });
      const b = generateDataset(name, { size: 16, count: 40, seed: 3 });
      expect(Array.from(a.x)).toEqual(Array.from(b.x));
      expect(a.x.length).toBe(40 * a.channels * 16 * 16);
      expect(new Set(classCounts(a)).size).toBe(1);
      const per = a.channels * 256;
      const means = a.classes.map((_, c) => {
        let s = 0, n = 0;
        for (let k = 0; k < a.n; k++) if (a.y[k] === c) { for (let i = 0; i < per; i++) s += a.x[k * per + i]!; n += per; }
        return s / n;
      });
      expect(Math.max(...means) - Math.min(...means)).toBeGreaterThan(0.005);
    }
    expect(() => generateDataset('brain', { size: 16, count: 2 })).toThrow(/unknown generated dataset 'brain'/);
  });
});

describe('augmentation and resizing', () => {
  it('shifts with nearest fill, flips, and repeats grey to three channels', () => {
    const ds = { x: Float32Array.from({ length: 16 }, (_, i) => i), y: Int32Array.from([0]), n: 1, channels: 1, size: 4, classes: ['a'], source: 't' };
    const plain = makeBatch(ds, [0], { channels: 3 });
    expect(Array.from(plain.x.subarray(16, 32))).toEqual(Array.from(ds.x));
    // shift 0.25 of 4 px allows shifts of -1, 0 and 1 px on each axis. A twin generator replays
    // the draws (dx, dy, flip), and the expected image is built here independently.
    const seen = new Set<string>();
    for (let seed = 0; seed < 60; seed++) {
      const twin = new Generator(seed);
      const dx = twin.int(3) - 1, dy = twin.int(3) - 1, flip = twin.random() < 0.5;
      const b = makeBatch(ds, [0], { channels: 1, augment: { shift: 0.25, flip: true, generator: new Generator(seed) } });
      const clip = (v: number) => Math.min(3, Math.max(0, v));
      const want: number[] = [];
      for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) want.push(clip(r - dy) * 4 + clip((flip ? 3 - c : c) - dx));
      expect(Array.from(b.x), `seed ${seed}: dx ${dx}, dy ${dy}, flip ${flip}`).toEqual(want);
      seen.add(`${dx},${dy},${flip}`);
    }
    // Every shift was drawn, so the check above covered real shifts, not only shift 0.
    for (const dx of [-1, 0, 1]) for (const dy of [-1, 0, 1]) expect([...seen].some((k) => k.startsWith(`${dx},${dy},`)), `shift ${dx},${dy}`).toBe(true);
    expect([...seen].some((k) => k.endsWith('true') && !k.startsWith('0,0'))).toBe(true);
  });

  it('keeps constants constant and averages when shrinking', () => {
    const c = resizePlane(new Float32Array(36).fill(0.4), 6, 6, 4, 4);
    c.forEach((v) => expect(v).toBeCloseTo(0.4, 6));
    const stripes = resizePlane(Float32Array.from({ length: 64 }, (_, i) => (i % 2 ? 1 : 0)), 8, 8, 4, 4, 'bilinear');
    // Away from the clamped edges every output averages as many 0 as 1 columns.
    for (let r = 0; r < 4; r++) for (const c of [1, 2]) expect(stripes[r * 4 + c]).toBeCloseTo(0.5, 1);
  });
});
