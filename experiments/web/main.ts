// The page: the engine, nn, the attacks and saliency from the same source files as Node, on
// navigator.gpu. Attacks run step by step with waits for the GPU between steps, so the page
// stays responsive and shows progress.
import * as E from '../../engine/browser.js';
import { createModel, type ModelName } from '../../nn/models.js';
import { decodeSafetensors, fromRaw } from '../../nn/safetensors.js';
import { freeze, type Classifier } from '../attacks/gradient.js';
import { perturbAsync } from '../attacks/pgd.js';
import { attackConfig } from '../attacks/spec.js';
import { saliency } from '../explain/saliency.js';
import { generateDataset } from '../data/generated.js';
import { adamFor, trainEpoch } from '../train/step.js';
import { drawBars, drawCurve, drawHeat, drawPlanes, imageToPlanes } from './draw.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = $('status');

interface Loaded { model: Classifier; classes: string[]; size: number; channels: number; name: string }
let current: Loaded | null = null;
let image: Float32Array | null = null;
let busy = false;

function say(text: string, state: string, error = false): void {
  status.textContent = text;
  status.dataset.state = state;
  status.classList.toggle('error', error);
}

interface Sidecar { architecture: ModelName; modelOptions: { imageSize: number; inChannels: number; classes: number; smallInput: boolean }; state?: { data?: { classes?: string[] } } }

/** A model from a checkpoint: the JSON sidecar (architecture, options) and safetensors weights. */
function loadCheckpoint(side: Sidecar, weights: Uint8Array, name: string): Loaded {
  const o = side.modelOptions;
  const model = createModel(side.architecture, { imageSize: o.imageSize, inChannels: o.inChannels, classes: o.classes, smallInput: o.smallInput });
  const tensors = fromRaw(decodeSafetensors(weights, name).tensors);
  model.loadStateDict(tensors);
  E.dispose(tensors);
  model.eval();
  const classes = side.state?.data?.classes ?? Array.from({ length: o.classes }, (_, i) => `class ${i}`);
  return { model, classes, size: o.imageSize, channels: o.inChannels, name };
}

function setModel(m: Loaded): void {
  current?.model.dispose();
  current = m;
  $('model-info').textContent = ` ${m.name}: ${m.classes.length} classes (${m.classes.join(', ')}), ${m.channels}x${m.size}x${m.size} input`;
  $<HTMLButtonElement>('run-attack').disabled = !image;
  void showPrediction();
}

async function setImage(blob: Blob): Promise<void> {
  if (!current) { say('Load a model first.', 'ready'); return; }
  image = await imageToPlanes(blob, current.size, current.channels);
  $<HTMLButtonElement>('run-attack').disabled = false;
  await showPrediction();
}

const input = (planes: Float32Array, m: Loaded) => E.tensor(planes, [1, m.channels, m.size, m.size]);

async function showPrediction(): Promise<void> {
  if (!current || !image) return;
  const m = current;
  const x = input(image, m);
  drawPlanes($('clean'), image, m.channels, m.size);
  const probs = E.noGrad(() => E.tidy(() => E.softmax(m.model.forward(x), -1)));
  drawBars($('clean-pred'), await probs.data(), m.classes);
  drawHeat($('clean-sal'), (await saliency(m.model, x)).maps, m.size);
  E.dispose([x, probs]);
  say(`Prediction by ${m.name}.`, 'predicted');
}

async function runAttack(): Promise<void> {
  if (!current || !image || busy) return;
  busy = true;
  const m = current, kind = $<HTMLSelectElement>('attack-kind').value, eps = Number($<HTMLInputElement>('eps').value) / 255;
  const spec = attackConfig(kind);
  const progress = $<HTMLProgressElement>('attack-progress');
  const x = input(image, m);
  const y = E.noGrad(() => E.tidy(() => E.argmax(m.model.forward(x), -1)));
  const restore = freeze(m.model);
  try {
    say(`Running ${spec.name} at eps ${+(eps * 255).toFixed(2)}/255…`, 'attacking');
    // Untargeted, against the clean prediction; seeded so that Node reproduces it exactly.
    const p = await perturbAsync(m.model, x, y, null, spec, eps, new E.Generator(0), (done, total) => { progress.value = done / total; });
    const [adv, probs, linf] = E.noGrad(() => E.tidy(() => [p.xAdv, E.softmax(p.logits, -1), E.max(E.abs(E.sub(p.xAdv, x)))]));
    const advPlanes = await adv!.data() as Float32Array;
    drawPlanes($('adv'), advPlanes, m.channels, m.size);
    drawBars($('adv-pred'), await probs!.data(), m.classes);
    const l = await linf!.item();
    const linfEl = $('linf');
    linfEl.dataset.linf = String(l);
    linfEl.textContent = `max |δ| = ${(l * 255).toFixed(2)}/255`;
    // The perturbation, scaled so that -eps..eps fills the grey range.
    drawPlanes($('delta'), advPlanes.map((v, i) => 0.5 + (v - image![i]!) / (2 * Math.max(eps, 1e-12))), m.channels, m.size);
    drawHeat($('adv-sal'), (await saliency(m.model, adv!)).maps, m.size);
    E.dispose([p, adv, probs, linf]);
    say(`${spec.name} at eps ${+(eps * 255).toFixed(2)}/255 done.`, 'attacked');
  } catch (e) {
    say(`Attack failed: ${(e as Error).message}`, 'error', true);
  } finally {
    restore();
    E.dispose([x, y]);
    busy = false;
  }
}

async function trainHere(): Promise<void> {
  if (busy) return;
  busy = true;
  const size = 24, ds = generateDataset('chest', { size, count: 480, seed: 0 });
  const model = createModel('resnet8', { imageSize: size, smallInput: true, inChannels: 3, classes: 2, seed: 0, bnMomentum: 0.5 });
  const opt = adamFor(model);
  const losses: number[] = [];
  const gen = new E.Generator(1);
  const train = Array.from({ length: 400 }, (_, i) => i);
  try {
    // The Node trainer's step and epoch loop (experiments/train/step.ts), reading each step's loss for the curve.
    for (let epoch = 1; epoch <= 3; epoch++) {
      await trainEpoch(model, opt, {
        ds, order: gen.shuffle([...train]), batchSize: 16, channels: 3, augment: { shift: 0.1, flip: true, generator: gen },
        onStep: async ({ step, steps, loss }) => {
          losses.push(await loss.item());
          drawCurve($('loss-curve'), losses);
          $('train-status').textContent = `epoch ${epoch}/3, step ${step}/${steps}`;
        },
      });
    }
    model.eval();
    opt.dispose();
    setModel({ model, classes: ['NORMAL', 'PNEUMONIA'], size, channels: 3, name: 'ResNet-8 trained in this tab' });
    $('train-status').textContent = 'done: this model is now the current one';
  } finally {
    busy = false;
  }
}

async function exampleImages(): Promise<void> {
  const files = await (await fetch('example/images/index.json')).json() as string[];
  $('examples').replaceChildren(...files.map((f, k) => {
    const img = document.createElement('img');
    img.src = `example/images/${f}`;
    img.alt = f;
    img.dataset.index = String(k);
    img.title = f;
    img.onclick = async () => {
      document.querySelectorAll('#examples img').forEach((e) => e.classList.remove('selected'));
      img.classList.add('selected');
      await setImage(await (await fetch(img.src)).blob());
    };
    return img;
  }));
}

async function start(): Promise<void> {
  try {
    await E.init();
  } catch (e) {
    say(`${(e as Error).message}\nTo enable WebGPU: Chrome or Edge 113+ have it on by default on most systems (check chrome://gpu); on Linux start Chrome with --enable-unsafe-webgpu (and --enable-features=Vulkan); Firefox 141+ on Windows, Safari 26+.`, 'no-webgpu', true);
    return;
  }
  const info = E.getDevice().info;
  say(`WebGPU ready on ${info.description || info.vendor || 'an adapter'}. Load a model.`, 'ready');
  $('use-example').onclick = async () => {
    const side = await (await fetch('example/checkpoint.json')).json() as Sidecar;
    const weights = new Uint8Array(await (await fetch('example/model.safetensors')).arrayBuffer());
    setModel(loadCheckpoint(side, weights, 'example ResNet-8 (generated chest data)'));
  };
  $<HTMLInputElement>('ckpt-files').onchange = async (ev) => {
    const files = [...((ev.target as HTMLInputElement).files ?? [])];
    const json = files.find((f) => f.name.endsWith('.json')), st = files.find((f) => f.name.endsWith('.safetensors'));
    if (!json || !st) { say('Choose both files of a checkpoint: checkpoint.json and a .safetensors file.', 'ready', true); return; }
    try {
      setModel(loadCheckpoint(JSON.parse(await json.text()) as Sidecar, new Uint8Array(await st.arrayBuffer()), st.name));
    } catch (e) { say(`Cannot load ${st.name}: ${(e as Error).message}`, 'ready', true); }
  };
  $<HTMLInputElement>('image-file').onchange = async (ev) => { const f = (ev.target as HTMLInputElement).files?.[0]; if (f) await setImage(f).catch((e: Error) => say(e.message, 'ready', true)); };
  const drop = $('drop');
  drop.ondragover = (ev) => { ev.preventDefault(); drop.classList.add('over'); };
  drop.ondragleave = () => drop.classList.remove('over');
  drop.ondrop = async (ev) => { ev.preventDefault(); drop.classList.remove('over'); const f = ev.dataTransfer?.files[0]; if (f) await setImage(f).catch((e: Error) => say(e.message, 'ready', true)); };
  const epsEl = $<HTMLInputElement>('eps');
  epsEl.oninput = () => { $('eps-out').textContent = `${epsEl.value}/255`; };
  $('run-attack').onclick = () => void runAttack();
  $('train').onclick = () => void trainHere().catch((e: Error) => say(`Training failed: ${e.message}`, 'error', true));
  await exampleImages();
}

void start();
