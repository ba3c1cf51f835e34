// Makes the README's two pictures, docs/report.png and docs/page.png, with the project's own code:
// the top of a study's HTML report and the browser page after a PGD attack, both in Debian's
// Chromium (playwright-core; no browser download). Never edit the PNGs by hand: rerun this.
//
//   npm run docs:screenshots                     # a tiny study, made in a temporary folder
//   npm run docs:screenshots -- runs/study-quick  # the report of a finished study instead
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS, serveStatic } from '../bench/browser/serve.js';
import { ensureExample } from '../experiments/web/make-example.js';

const ROOT = resolve(import.meta.dirname, '..');
const WEB = join(ROOT, 'experiments', 'web');
const OUT = join(ROOT, 'docs');
// Half-size pixels keep each PNG small (well under 150 KB) and still legible.
const VIEW = { width: 1100, height: 900 }, SCALE = 0.6;

// A study of two small models on small images: a minute or two on a CPU, with every section of
// the report that the quick preset has. Attacks and the rest come from the quick preset.
const TINY_STUDY = {
  preset: 'quick', name: 'docs', models: ['resnet8', 'resnet20'], seeds: [3],
  datasets: [{ name: 'chest', data: 'generated:chest', imageSize: 16, count: 160, maxTrain: 96, perClass: 6, tableEps: 2, adversarial: { eps: 3, steps: 2, stepFraction: 0.5 } }],
  train: { epochs: 2, batchSize: 16 }, adversarial: { models: ['resnet8'], seeds: 1, epochs: 1 },
};

/** The folder of a study with its report.html: the one given, or a tiny one made now. */
function studyFolder(given: string | undefined, scratch: string): string {
  if (given) {
    if (!existsSync(join(given, 'report.html'))) throw new Error(`docs: ${given} has no report.html (run \`npm start\` or \`medgrad report ${given}\` first)`);
    return given;
  }
  const config = join(scratch, 'study.json'), out = join(scratch, 'study');
  writeFileSync(config, JSON.stringify(TINY_STUDY));
  console.log('docs: running a tiny study for the report picture');
  const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'medgrad.mjs'), 'study', '--config', config, '--out', out], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`docs: the tiny study failed (exit ${r.status})`);
  return out;
}

async function newPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ viewport: VIEW, deviceScaleFactor: SCALE });
  return context.newPage();
}

async function reportPicture(browser: Browser, study: string): Promise<void> {
  const page = await newPage(browser);
  await page.goto(pathToFileURL(join(study, 'report.html')).href);
  await page.screenshot({ path: join(OUT, 'report.png') });
}

async function pagePicture(browser: Browser): Promise<void> {
  await ensureExample({ log: (l) => console.log(`docs: ${l}`) });
  const { build } = await import('vite');
  await build({ configFile: join(WEB, 'vite.config.ts'), logLevel: 'silent' });
  const served = await serveStatic(join(WEB, 'dist'));
  try {
    const page = await newPage(browser);
    await page.goto(served.url);
    const state = (s: string) => page.waitForSelector(`#status[data-state="${s}"]`, { timeout: 300_000 });
    await state('ready');
    await page.click('#use-example');
    await page.waitForFunction(() => document.getElementById('model-info')!.textContent!.includes('classes'));
    await page.click('#examples img[data-index="0"]');
    await state('predicted');
    await page.selectOption('#attack-kind', 'pgd');
    await page.click('#run-attack');
    await state('attacked');
    await page.screenshot({ path: join(OUT, 'page.png') });
  } finally {
    served.close();
  }
}

if (!existsSync(CHROMIUM)) throw new Error(`docs: ${CHROMIUM} is missing (bash .ci/setup installs Debian's chromium)`);
const scratch = mkdtempSync(join(tmpdir(), 'medgrad-docs-'));
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
try {
  await reportPicture(browser, studyFolder(process.argv[2], scratch));
  await pagePicture(browser);
  for (const f of ['report.png', 'page.png']) console.log(`docs: wrote docs/${f} (${(statSync(join(OUT, f)).size / 1024).toFixed(0)} KB)`);
} finally {
  await browser.close();
  rmSync(scratch, { recursive: true, force: true });
}
