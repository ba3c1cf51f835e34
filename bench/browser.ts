// `npm run bench:browser`: one PGD step of the page's example model in Chromium (WebGPU) and in
// Node (Dawn) on the same machine, timed by the same code (bench/browser/pgd-step.ts); prints
// the ratio and writes the records like the other benches (--json FILE).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';
import { build } from 'vite';
import { chromium } from 'playwright-core';
import * as E from '../engine/node.js';
import { adapterName, writeJsonAtomic, type BenchRecord } from './harness.js';
import { timePgdStep, type StepTiming } from './browser/pgd-step.js';
import { CHROMIUM, CHROMIUM_FLAGS, serveStatic } from './browser/serve.js';
import { ensureExample } from '../experiments/web/make-example.js';

const { values } = parseArgs({ options: { json: { type: 'string' } } });
const here = import.meta.dirname;
const example = await ensureExample();
const NAME = 'attack.pgd-step/example-resnet8-32px-b1';

const out = mkdtempSync(join(tmpdir(), 'medgrad-bench-web-'));
await build({ root: join(here, 'browser'), configFile: false, base: './', publicDir: join(here, '..', 'experiments', 'web', 'public'), logLevel: 'warn', build: { outDir: out, emptyOutDir: true, target: 'es2022' } });
const served = await serveStatic(out);
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
const page = await browser.newPage();
await page.goto(served.url);
await page.waitForFunction(() => (window as { benchResult?: unknown }).benchResult !== undefined, undefined, { timeout: 600_000 });
const web = await page.evaluate(() => (window as { benchResult?: unknown }).benchResult) as StepTiming & { adapter: string; error?: string };
await browser.close(); served.close(); rmSync(out, { recursive: true, force: true });
if (web.error) throw new Error(`bench: the browser run failed: ${web.error}`);

await E.init();
const node = await timePgdStep(JSON.parse(readFileSync(join(example, 'checkpoint.json'), 'utf8')), new Uint8Array(readFileSync(join(example, 'model.safetensors'))));
const records: BenchRecord[] = [
  { name: NAME, value: node.msPerStep, unit: 'ms', impl: 'medgrad (Node, Dawn)', adapter: adapterName() },
  { name: NAME, value: web.msPerStep, unit: 'ms', impl: 'medgrad (Chromium)', adapter: web.adapter },
];
for (const r of records) console.log(`${r.impl.padEnd(22)} ${r.value.toFixed(2)} ms per PGD step  (${r.adapter})`);
console.log(`browser / Node: ${(web.msPerStep / node.msPerStep).toFixed(2)}x the time per step`);
if (values.json) writeJsonAtomic(values.json, records);
