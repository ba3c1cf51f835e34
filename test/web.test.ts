// The page end to end in Debian's Chromium (playwright-core, no browser download): built with
// Vite, served from loopback, it loads the example model (made by make-example.ts if missing)
// and image, runs PGD at 4/255, and must show the adversarial prediction and perturbation bound
// that the Node engine computes for the same inputs, with no console errors (a screenshot is
// kept in test-results/); and its Train button trains a model with the trainer's shared step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { CHROMIUM, CHROMIUM_FLAGS, serveStatic } from '../bench/browser/serve.js';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { chromium, type Browser } from 'playwright-core';
import * as E from '../engine/node.js';
import { createModel, type ModelName } from '../nn/models.js';
import { loadTensors } from '../experiments/train/checkpoint.js';
import { freeze } from '../experiments/attacks/gradient.js';
import { perturb } from '../experiments/attacks/pgd.js';
import { attackConfig } from '../experiments/attacks/spec.js';
import { ensureExample, EXAMPLE_DIR as EXAMPLE } from '../experiments/web/make-example.js';

const WEB = join(__dirname, '..', 'experiments', 'web');

describe.skipIf(!existsSync(CHROMIUM))('the web page in headless Chromium (skipped where /usr/bin/chromium is missing; .ci/setup installs it)', () => {
  let served: { url: string; close: () => void }, url: string, browser: Browser;
  beforeAll(async () => {
    // The example model is made by code, once per checkout (about a minute), never committed.
    await ensureExample({ log: () => {} });
    const { build } = await import('vite');
    await build({ configFile: join(WEB, 'vite.config.ts'), logLevel: 'silent' });
    served = await serveStatic(join(WEB, 'dist'));
    url = served.url;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
  }, 300_000);
  afterAll(async () => { await browser?.close(); served?.close(); });

  it('attacks the example model with PGD and shows what the Node engine computes', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    const state = (s: string) => page.waitForSelector(`#status[data-state="${s}"]`, { timeout: 120_000 });
    await state('ready');
    await page.click('#use-example');
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.includes('classes'));
    const files = JSON.parse(readFileSync(join(EXAMPLE, 'images', 'index.json'), 'utf8')) as string[];
    const pick = files.findIndex((f) => f.includes('PNEUMONIA'));
    await page.click(`#examples img[data-index="${pick}"]`);
    await state('predicted');
    await page.selectOption('#attack-kind', 'pgd');
    await page.$eval('#eps', (el) => { (el as HTMLInputElement).value = '4'; el.dispatchEvent(new Event('input')); });
    await page.click('#run-attack');
    await state('attacked');
    const shown = {
      cls: await page.getAttribute('#adv-pred', 'data-class'),
      prob: Number(await page.getAttribute('#adv-pred', 'data-prob')),
      linf: Number(await page.getAttribute('#linf', 'data-linf')),
      text: await page.textContent('#linf'),
    };
    mkdirSync(join(__dirname, '..', 'test-results'), { recursive: true });
    await page.screenshot({ path: join(__dirname, '..', 'test-results', 'web-pgd.png'), fullPage: true });

    // The same attack in Node on the same checkpoint and image file.
    await E.init();
    const side = JSON.parse(readFileSync(join(EXAMPLE, 'checkpoint.json'), 'utf8')) as { architecture: ModelName; modelOptions: { imageSize: number; inChannels: number; classes: number; smallInput: boolean }; state: { data: { classes: string[] } } };
    const o = side.modelOptions;
    const model = createModel(side.architecture, { imageSize: o.imageSize, inChannels: o.inChannels, classes: o.classes, smallInput: o.smallInput });
    const w = loadTensors(join(EXAMPLE, 'model.safetensors'));
    model.loadStateDict(w); E.dispose(w);
    const png = PNG.sync.read(readFileSync(join(EXAMPLE, 'images', files[pick]!)));
    const plane = o.imageSize * o.imageSize;
    const planes = Float32Array.from({ length: 3 * plane }, (_, i) => png.data[4 * (i % plane)]! / 255);
    const restore = freeze(model);
    const x = E.tensor(planes, [1, 3, o.imageSize, o.imageSize]);
    const y = E.noGrad(() => E.argmax(model.forward(x), -1));
    const p = perturb(model, x, y, null, attackConfig('pgd'), 4 / 255, new E.Generator(0));
    const probs = await E.noGrad(() => E.softmax(p.logits, -1)).data();
    const linf = await E.max(E.abs(E.sub(p.xAdv, x))).item();
    restore();
    const best = Array.from(probs).indexOf(Math.max(...probs));
    expect(shown.cls).toBe(side.state.data.classes[best]);
    expect(Math.abs(shown.prob - probs[best]!)).toBeLessThan(0.02);
    expect(Math.abs(shown.linf - linf)).toBeLessThan(1e-5);
    expect(shown.linf).toBeLessThanOrEqual(4 / 255 + 1e-6);
    expect(shown.text).toBe(`max |δ| = ${(linf * 255).toFixed(2)}/255`);
    expect(errors).toEqual([]);
    model.dispose();
  }, 300_000);

  it('trains in the tab with the Node trainer\'s step and epoch loop (experiments/train/step.ts)', async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForSelector('#status[data-state="ready"]', { timeout: 120_000 });
    await page.click('#train');
    // Three steps or more (all 75 take minutes on SwiftShader): the loop runs, reads each step's loss and draws the curve.
    const shown = await (await page.waitForFunction(() => {
      const t = document.getElementById('train-status')!.textContent ?? '', m = /^epoch (\d)\/3, step (\d+)\//.exec(t);
      return document.getElementById('status')!.dataset.state === 'error' || /^done/.test(t) || (m && (Number(m[1]) > 1 || Number(m[2]) >= 3)) ? t : false;
    }, undefined, { timeout: 120_000 })).jsonValue();
    expect(await page.textContent('#status')).not.toMatch(/Training failed/);
    expect(shown).toMatch(/^(epoch [1-3]\/3, step \d+\/25|done: this model is now the current one)$/);
    const drawn = await page.$eval('#loss-curve', (c) => (c as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, (c as HTMLCanvasElement).width, (c as HTMLCanvasElement).height).data.some((v) => v !== 0));
    expect(drawn).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 300_000);

  it('says plainly when the browser has no WebGPU, and what to enable', async () => {
    const plain = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS.filter((f) => f !== '--enable-unsafe-webgpu').concat('--disable-webgpu') });
    try {
      const page = await plain.newPage();
      await page.goto(url);
      await page.waitForSelector('#status[data-state="no-webgpu"]', { timeout: 60_000 });
      expect(await page.textContent('#status')).toMatch(/no WebGPU[\s\S]*To enable WebGPU: .*--enable-unsafe-webgpu/);
    } finally {
      await plain.close();
    }
  });
});
