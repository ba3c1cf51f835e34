// Loading a dataset the way a user has it: the project's generated data, a MedMNIST .npz, or
// a class-per-folder image tree (Kermany's chest_xray/{train,val,test}/{NORMAL,PNEUMONIA},
// OCT2017/{train,test}/{CNV,...}, {Melanoma,NotMelanoma}) with an optional labels.csv
// (path,label,...,patient_id). Decoded, resized datasets are cached on disk keyed by the
// source's files and the options, so a second run starts at once; nothing is cached from a
// failed read.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join, relative, resolve } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import { decodeSafetensors, encodeSafetensors } from '../../nn/safetensors.js';
import { validateLabels, type ImageDataset } from './dataset.js';
import { generateDataset } from './generated.js';
import { decodeImage, isGreyscale, toPlanes } from './images.js';
import { classLabels, imageScale, parseNpz, toNumbers } from './npy.js';
import { resizePlane, type ResizeMethod } from './resize.js';

export interface LoadOptions {
  imageSize: number;
  /** Channels to keep: 1 (grey), 3 (RGB) or 'auto' (1 when every image is grey). */
  channels?: 1 | 3 | 'auto';
  resize?: ResizeMethod;
  /** Folder for the decoded-dataset cache; null disables it. */
  cacheDir?: string | null;
  /** Skip unreadable images (counted and reported) instead of failing. */
  skipBad?: boolean;
  /**
   * Go on without patient ids when a folder's labels.csv lacks the path / patient_id columns
   * or some images have no row: the data can then only be split by image, which can put one
   * patient's images in two splits. Without this option such a labels.csv stops the load.
   */
  allowNoGroups?: boolean;
  /** Generated data only: how many images and which seed. */
  count?: number;
  seed?: number;
  log?: (line: string) => void;
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

export async function loadDataset(spec: string, o: LoadOptions): Promise<ImageDataset> {
  if (spec.startsWith('generated:')) return generateDataset(spec.slice('generated:'.length), { size: o.imageSize, count: o.count ?? 1200, seed: o.seed ?? 0 });
  const path = resolve(spec);
  if (!existsSync(path)) throw new Error(`medgrad: dataset ${spec} does not exist (give a .npz file, an image folder, or generated:chest|skin|retina)`);
  const isDir = statSync(path).isDirectory();
  if (!isDir && extname(path) !== '.npz') throw new Error(`medgrad: ${spec}: unsupported dataset file (a MedMNIST .npz or a folder of class folders)`);
  const files = isDir ? listImages(path) : [];
  const csv = join(path, 'labels.csv');
  // labels.csv is hashed too, so that fixing it rebuilds the cached patient ids.
  const key = cacheKey(path, isDir ? [...files.map((f) => f.file), ...(existsSync(csv) ? [csv] : [])] : [path], o);
  const cached = o.cacheDir ? readCache(join(o.cacheDir, `${key}.safetensors`)) : null;
  if (cached) { o.log?.(`dataset: ${cached.source} (cached)`); return cached; }
  const ds = isDir ? readFolder(path, files, o) : readNpz(path, o);
  validateLabels(ds);
  if (o.cacheDir) writeCache(join(o.cacheDir, `${key}.safetensors`), ds);
  return ds;
}

/**
 * A dataset's labels, classes, patient ids and own split without its pixels (x is empty), for
 * planning a study (split sizes, attacked sets) without decoding every image. Folders are only
 * listed; an .npz is parsed but not resized; generated data is generated at the given size.
 */
export async function describeDataset(spec: string, o: LoadOptions): Promise<ImageDataset> {
  if (spec.startsWith('generated:')) return { ...(await loadDataset(spec, { ...o, cacheDir: null })), x: new Float32Array(0) };
  const path = resolve(spec);
  if (!existsSync(path)) throw new Error(`medgrad: dataset ${spec} does not exist (give a .npz file, an image folder, or generated:chest|skin|retina)`);
  const empty = { x: new Float32Array(0), channels: 0, size: o.imageSize };
  if (statSync(path).isDirectory()) {
    const files = listImages(path);
    const classes = [...new Set(files.map((f) => f.cls))].sort();
    const patients = readLabelsCsv(path, o);
    return {
      ...empty, y: Int32Array.from(files, (f) => classes.indexOf(f.cls)), n: files.length, classes,
      groups: patients ? patientIds(path, files, patients, o) : undefined,
      split: files.every((f) => f.split) ? files.map((f) => f.split!) : undefined, source: `${path} (${files.length} images, ${classes.join('/')})`,
    };
  }
  const arrays = parseNpz(new Uint8Array(readFileSync(path)), path);
  const parts = (['train', 'val', 'test'] as const).filter((s) => arrays[`${s}_labels`]);
  if (parts.length === 0) throw new Error(`medgrad: ${path} has no train_labels array (keys: ${Object.keys(arrays).join(', ')})`);
  const ys = parts.map((s) => classLabels(arrays[`${s}_labels`]!, `${path}: ${s}_labels`));
  const y = Int32Array.from(ys.flatMap((v) => Array.from(v)));
  let nClasses = 0;
  for (const v of y) if (v + 1 > nClasses) nClasses = v + 1;
  return {
    ...empty, y, n: y.length, classes: Array.from({ length: nClasses }, (_, i) => String(i)),
    split: parts.flatMap((s, k) => Array.from(ys[k]!, () => s)), source: `${path} (${y.length} images)`,
  };
}

interface Listed { file: string; cls: string; split?: 'train' | 'val' | 'test' }

/** Images under root/[split/]class/, in a stable order. */
function listImages(root: string): Listed[] {
  const dirs = (p: string) => readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name).sort();
  const top = dirs(root);
  const splitNames = top.filter((d) => ['train', 'val', 'test'].includes(d));
  const roots: Array<[string, Listed['split']]> = splitNames.length ? splitNames.map((s) => [join(root, s), s as Listed['split']]) : [[root, undefined]];
  const out: Listed[] = [];
  for (const [dir, split] of roots) {
    const classes = dirs(dir);
    if (classes.length === 0) throw new Error(`medgrad: ${dir} has no class folders (expected ${dir}/<class>/<image>)`);
    for (const cls of classes) {
      const images = readdirSync(join(dir, cls)).filter((f) => IMAGE_EXT.has(extname(f).toLowerCase())).sort();
      if (images.length === 0) throw new Error(`medgrad: class folder ${join(dir, cls)} has no PNG or JPEG images`);
      for (const f of images) out.push({ file: join(dir, cls, f), cls, split });
    }
  }
  return out;
}

/** Patient id by image path (relative, with /) from root/labels.csv; null when there is none. */
function readLabelsCsv(root: string, o: LoadOptions): Map<string, string> | null {
  const csv = join(root, 'labels.csv');
  if (!existsSync(csv)) return null;
  const lines = readFileSync(csv, 'utf8').split(/\r?\n/).filter(Boolean);
  const head = (lines[0] ?? '').split(',').map((c) => c.trim());
  const pi = head.indexOf('path'), gi = head.indexOf('patient_id');
  if (pi < 0 || gi < 0) {
    const why = `${csv} has no ${pi < 0 ? "'path'" : ''}${pi < 0 && gi < 0 ? ' or ' : ''}${gi < 0 ? "'patient_id'" : ''} column (its header: ${JSON.stringify(lines[0] ?? '')}), so images cannot be grouped by patient and one patient's images may land in two splits`;
    if (!o.allowNoGroups) throw new Error(`medgrad: ${why}; fix the file (columns path,label,...,patient_id) or allow splitting by image (--allow-no-groups; allowNoGroups in code)`);
    o.log?.(`warning: ${why}; going on without patient ids (allowNoGroups)`);
    return null;
  }
  return new Map(lines.slice(1).map((l) => { const c = l.split(','); return [(c[pi] ?? '').trim(), (c[gi] ?? '').trim()]; }));
}

/** Each image's patient id; an image without a row stops the load unless allowNoGroups. */
function patientIds(root: string, files: Listed[], patients: Map<string, string>, o: LoadOptions): string[] {
  const rel = files.map((f) => relative(root, f.file).split('\\').join('/'));
  const missing = rel.filter((r) => !patients.has(r));
  if (missing.length) {
    const why = `${join(root, 'labels.csv')} has no row for ${missing.length} of ${files.length} images (${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', ...' : ''}), so their patients are unknown and may land in two splits`;
    if (!o.allowNoGroups) throw new Error(`medgrad: ${why}; add the rows or allow splitting those images alone (--allow-no-groups; allowNoGroups in code)`);
    o.log?.(`warning: ${why}; each is treated as a patient of its own (allowNoGroups)`);
  }
  return rel.map((r, i) => patients.get(r) ?? `file:${basename(files[i]!.file)}`);
}

function readFolder(root: string, files: Listed[], o: LoadOptions): ImageDataset {
  const classes = [...new Set(files.map((f) => f.cls))].sort();
  const patients = readLabelsCsv(root, o);
  const decoded: Array<{ f: Listed; img: ReturnType<typeof decodeImage> }> = [];
  const bad: string[] = [];
  files.forEach((f, i) => {
    try {
      decoded.push({ f, img: decodeImage(readFileSync(f.file), f.file) });
    } catch (e) {
      if (!o.skipBad) throw e;
      bad.push(`${f.file}: ${(e as Error).message.replace(/^medgrad: [^:]*: /, '')}`);
    }
    if (o.log && (i + 1) % 500 === 0) o.log(`decoding ${root}: ${i + 1}/${files.length}`);
  });
  if (bad.length) o.log?.(`skipped ${bad.length} unreadable images:\n  ${bad.join('\n  ')}`);
  const channels = o.channels === 'auto' || o.channels === undefined ? (decoded.every((d) => isGreyscale(d.img)) ? 1 : 3) : o.channels;
  const per = channels * o.imageSize * o.imageSize;
  const x = new Float32Array(decoded.length * per);
  decoded.forEach((d, k) => toPlanes(d.img, channels, o.imageSize, o.resize ?? 'bicubic', x.subarray(k * per, (k + 1) * per)));
  const groups = patients ? patientIds(root, decoded.map((d) => d.f), patients, o) : undefined;
  const hasSplit = decoded.every((d) => d.f.split);
  return {
    x, y: Int32Array.from(decoded, (d) => classes.indexOf(d.f.cls)), n: decoded.length, channels, size: o.imageSize, classes,
    groups, split: hasSplit ? decoded.map((d) => (d.f.split === 'val' ? 'val' : d.f.split!)) : undefined,
    source: `${root} (${decoded.length} images, ${classes.join('/')}${bad.length ? `, ${bad.length} skipped` : ''})`,
  };
}

function readNpz(path: string, o: LoadOptions): ImageDataset {
  const arrays = parseNpz(new Uint8Array(readFileSync(path)), path);
  const parts = (['train', 'val', 'test'] as const).filter((s) => arrays[`${s}_images`] || arrays[`${s}_labels`]);
  if (parts.length === 0) throw new Error(`medgrad: ${path} has no train_images / train_labels arrays (keys: ${Object.keys(arrays).join(', ')})`);
  const chunks: Array<{ x: Float32Array; y: Int32Array; split: 'train' | 'val' | 'test' }> = [];
  let channels = 1;
  for (const s of parts) {
    const im = arrays[`${s}_images`], lb = arrays[`${s}_labels`];
    if (!im) throw new Error(`medgrad: ${path} is missing ${s}_images`);
    if (!lb) throw new Error(`medgrad: ${path} is missing ${s}_labels`);
    const [n, h, w, c = 1] = im.shape as [number, number, number, number?];
    if (im.shape.length < 3 || (c !== 1 && c !== 3)) throw new Error(`medgrad: ${path}: ${s}_images has shape (${im.shape.join(', ')}); expected N x H x W or N x H x W x 3`);
    if (lb.shape[0] !== n) throw new Error(`medgrad: ${path}: ${s}_images has ${n} images but ${s}_labels has ${lb.shape[0]} labels`);
    channels = o.channels === 1 ? 1 : o.channels === 3 ? 3 : c;
    const scale = imageScale(im, `${path}: ${s}_images`);
    const y = classLabels(lb, `${path}: ${s}_labels`);
    const per = channels * o.imageSize * o.imageSize;
    const x = new Float32Array(n * per);
    // Every dtype read as what it is (int64 as numbers), scaled to [0, 1] by the array's rule.
    const src = im.data instanceof BigInt64Array ? toNumbers(im) : im.data;
    const plane = new Float32Array(h * w);
    for (let k = 0; k < n; k++) for (let ch = 0; ch < channels; ch++) {
      for (let p = 0; p < h * w; p++) {
        // Interleaved HWC source; a grey source repeated, an RGB one averaged for 1 channel.
        plane[p] = c === 1 ? src[k * h * w + p]! * scale
          : channels === 3 ? src[(k * h * w + p) * 3 + ch]! * scale
          : (src[(k * h * w + p) * 3]! + src[(k * h * w + p) * 3 + 1]! + src[(k * h * w + p) * 3 + 2]!) * scale / 3;
      }
      x.set(resizePlane(plane, h, w, o.imageSize, o.imageSize, o.resize ?? 'bicubic'), k * per + ch * o.imageSize * o.imageSize);
    }
    chunks.push({ x, y, split: s });
  }
  const n = chunks.reduce((t, c) => t + c.y.length, 0);
  const x = new Float32Array(n * channels * o.imageSize * o.imageSize);
  let at = 0;
  for (const c of chunks) { x.set(c.x, at); at += c.x.length; }
  const y = new Int32Array(n);
  let nClasses = 0;
  at = 0;
  // A loop, not Math.max(...y): spreading a large array overflows the call stack.
  for (const c of chunks) { y.set(c.y, at); at += c.y.length; for (const v of c.y) if (v + 1 > nClasses) nClasses = v + 1; }
  return {
    x, y, n, channels, size: o.imageSize, classes: Array.from({ length: nClasses }, (_, i) => String(i)),
    split: chunks.flatMap((c) => Array.from(c.y, () => c.split)), source: `${path} (${n} images)`,
  };
}

function cacheKey(path: string, files: string[], o: LoadOptions): string {
  const h = createHash('sha256');
  // allowNoGroups is hashed only when set, so existing cache entries keep their keys.
  h.update(JSON.stringify({ v: 1, path, size: o.imageSize, channels: o.channels ?? 'auto', resize: o.resize ?? 'bicubic', skipBad: !!o.skipBad, ...(o.allowNoGroups ? { allowNoGroups: true } : {}) }));
  for (const f of files) { const s = statSync(f); h.update(`${f}\0${s.size}\0${s.mtimeMs}\n`); }
  return h.digest('hex').slice(0, 24);
}

function writeCache(file: string, ds: ImageDataset): void {
  const meta = { classes: ds.classes, groups: ds.groups ?? null, split: ds.split ?? null, source: ds.source, channels: ds.channels, size: ds.size };
  writeFileAtomic(file, encodeSafetensors({
    x: { dtype: 'F32', shape: [ds.n, ds.channels, ds.size, ds.size], data: ds.x },
    y: { dtype: 'I32', shape: [ds.n], data: ds.y },
  }, { medgrad_dataset: JSON.stringify(meta) }));
}

function readCache(file: string): ImageDataset | null {
  if (!existsSync(file)) return null;
  try {
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)), file);
    const m = JSON.parse(metadata.medgrad_dataset!) as { classes: string[]; groups: string[] | null; split: ImageDataset['split'] | null; source: string; channels: number; size: number };
    const x = tensors.x!.data as Float32Array, y = tensors.y!.data as Int32Array;
    return { x, y, n: y.length, channels: m.channels, size: m.size, classes: m.classes, groups: m.groups ?? undefined, split: m.split ?? undefined, source: m.source };
  } catch {
    return null; // a damaged cache entry is simply rebuilt
  }
}
