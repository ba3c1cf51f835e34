// The study: config validation, units and shards, tables from known cells (worst case, mean
// +- std, model selection), and a tiny study end to end through the command line, killed with
// SIGKILL part-way and resumed to the same results as an uninterrupted run; its HTML report,
// checked file by file and opened in headless Chromium.
import { afterAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_FLAGS } from '../bench/browser/serve.js';
import { parseStudyConfig, PRESETS } from '../experiments/study/config.js';
import { parseShard, shardUnits, studyUnits, type AttackCell } from '../experiments/study/runner.js';
import { accuracyRows, evaluated, recommend, TRANSFER, WORST, WORST_AMONG_CORRECT } from '../experiments/study/summary.js';
import type { TransferCell } from '../experiments/study/transfer.js';

const BIN = join(__dirname, '..', 'bin', 'medgrad.mjs');

const TINY = {
  name: 'tiny', models: ['resnet8', 'resnet20'], seeds: [3],
  datasets: [{ name: 'chest', data: 'generated:chest', imageSize: 12, count: 96, maxTrain: 48, perClass: 4, tableEps: 4, adversarial: { eps: 4, steps: 2, stepFraction: 0.5 } }],
  train: { epochs: 2, batchSize: 16 }, adversarial: { models: ['resnet8'], seeds: 1, epochs: 1 },
  attacks: ['fgsm-ll', { name: 'pgd-ll', steps: 2 }, 'fgsm', 'fgsm-margin', { name: 'pgd', steps: 3, restarts: 2 }, { name: 'pgd-margin', steps: 3, restarts: 2 },
    { name: 'apgd-ce', steps: 3, restarts: 2 }, { name: 'apgd-margin', steps: 3, restarts: 2 }, { name: 'square', steps: 20 }], eps: [0, 4, 16], attackBatch: 5,
};

function run(args: string[]): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 300_000 });
  return { status: r.status, out: r.stdout + r.stderr };
}

describe('study config', () => {
  it('fills in from a preset and checks every value, naming the option', () => {
    const c = parseStudyConfig(TINY);
    expect(c.eps).toEqual([0, 4 / 255, 16 / 255]);
    expect(c.attacks.map((a) => a.name)).toEqual(['fgsm-ll', 'pgd-ll-2', 'fgsm', 'fgsm-margin', 'pgd-3-x2', 'pgd-margin-3-x2', 'apgd-ce-3-x2', 'apgd-margin-3-x2', 'square-20']);
    expect(c.attacks.map((a) => a.cascade)).toEqual([false, false, false, false, false, false, false, false, true]);
    expect(parseStudyConfig({ preset: 'pneumonia' }).attacks.map((a) => a.name)).toEqual(['fgsm-ll', 'pgd-ll-20', 'fgsm', 'fgsm-margin', 'pgd-30', 'pgd-margin-30', 'apgd-ce-30', 'apgd-margin-30', 'square-200']);
    expect(() => parseStudyConfig({ ...TINY, attacks: ['pgd', 'pgd'] })).toThrow(/attacks must differ, got pgd-20, pgd-20/);
    expect(() => parseStudyConfig({ ...TINY, transfer: 'yes' })).toThrow(/'transfer' must be true or false, got "yes"/);
    expect(c.train).toMatchObject({ epochs: 2, batchSize: 16, lr: 1e-3 });
    expect(parseStudyConfig({ preset: 'pneumonia' }).seeds).toEqual([127]);
    expect(() => parseStudyConfig({ ...TINY, models: ['resnet18'] })).toThrow(/config: 'models' must be a list of cbr-larget, resnet8, resnet20, resnet32, resnet50, got \["resnet18"\]/);
    expect(() => parseStudyConfig({ ...TINY, train: { epochs: 0 } })).toThrow(/config: train: 'epochs' must be a positive integer, got 0/);
    expect(() => parseStudyConfig({ ...TINY, attacks: [{ name: 'pgd', steps: -1 }] })).toThrow(/attacks\[0\]: 'steps' must be a positive integer/);
    expect(() => parseStudyConfig({ ...TINY, eps: [0, 'big'] })).toThrow(/config: eps: 'big' is not a non-negative number/);
    expect(() => parseStudyConfig({ ...TINY, datasets: [{ ...TINY.datasets[0], tableEps: 3 }] })).toThrow(/dataset 'chest': tableEps 3\/255 is not in the eps grid/);
    expect(() => parseStudyConfig({ ...TINY, datasets: [{ name: 'x y', data: 'generated:chest', imageSize: 12 }] })).toThrow(/datasets\[0\]: 'name' must be a name of letters/);
    expect(() => parseStudyConfig({ preset: 'huge' })).toThrow(/unknown preset 'huge' \(have quick, pneumonia, /);
    for (const name of Object.keys(PRESETS)) expect(PRESETS[name]!().eps[0]).toBe(0);
  });

  it('splits units into disjoint shards that cover the study', () => {
    const c = parseStudyConfig({ preset: 'pneumonia', seeds: [127, 95, 14] });
    const units = studyUnits(c);
    expect(units).toHaveLength(15);
    expect(units.filter((u) => u.regimes.includes('adversarial')).map((u) => `${u.model}.s${u.seed}`)).toEqual(['resnet8.s127', 'resnet20.s127']);
    const dealt = shardUnits(c, 4);
    const shards = [0, 1, 2, 3].map((i) => units.filter((_, k) => dealt[k] === i));
    expect(shards.flat().length).toBe(units.length);
    expect(new Set(shards.flat()).size).toBe(units.length);
    expect(shardUnits(c, 4)).toEqual(dealt); // every task deals the same
    // 10 shards of 10 seeds x 5 models: every shard gets a mix of models, not one architecture each.
    const many = parseStudyConfig({ preset: 'pneumonia', seeds: [127, 95, 14, 19, 77, 42, 33, 3, 215, 28] });
    const ten = shardUnits(many, 10);
    for (let i = 0; i < 10; i++) expect(new Set(studyUnits(many).filter((_, k) => ten[k] === i).map((u) => u.model)).size).toBeGreaterThan(1);
    expect(parseShard('2/4')).toEqual({ index: 2, count: 4 });
    for (const bad of ['0/4', '5/4', '1', 'a/b']) expect(() => parseShard(bad)).toThrow(/--shard must be i\/n with 1 <= i <= n/);
  });
});

describe('study tables', () => {
  const Y = [0, 1, 0, 1];
  const rec = (attack: string, pred: number[]) => ({ attack, eps: 1 / 255, acc: pred.filter((p, i) => p === Y[i]).length / 4, advPred: pred, loss: [], linf: [], trace: [], zeroGrad: [], attacked: 4, seconds: 0 });
  const cell = (model: string, seed: number, clean: number[], pgd: number[], fgsm: number[]): AttackCell => ({
    kind: 'attack', id: `d.${model}.s${seed}`, dataset: 'd', model: model as AttackCell['model'], seed, regime: 'standard', checks: [], seconds: 0,
    large: rec('pgd', []),
    result: { indices: [0, 1, 2, 3], labels: Y, cleanPred: clean, cleanMargin: [1, 2, 3, 4], cleanAcc: clean.filter((p, i) => p === Y[i]).length / 4, records: [rec('pgd', pgd), rec('fgsm', fgsm)] },
  });

  it('count an image as robust only when it survives every attack and transfer; pool over seeds with Wilson intervals', () => {
    // Seed 1: pgd breaks image 1, fgsm breaks image 2 -> worst case 2/4. Seed 2: clean misses image 0 -> 2/4, and
    // another model's examples break image 3 -> 1/4 with transfer.
    const cells = [cell('resnet8', 1, [0, 1, 0, 1], [0, 0, 0, 1], [0, 1, 1, 1]), cell('resnet8', 2, [1, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 0])];
    const transfer: TransferCell = { kind: 'transfer', id: 'd.s2.transfer', dataset: 'd', seed: 2, attack: 'pgd', indices: [0, 1, 2, 3], labels: Y, seconds: 0, results: [{ target: 'resnet8', source: 'resnet20', eps: 1 / 255, pred: [0, 0, 0, 1] }] };
    const rows = accuracyRows(evaluated(cells, [transfer]));
    const worst = rows.find((r) => r.attack === WORST)!;
    expect(worst.values).toEqual([0.5, 0.25]);
    expect([worst.k, worst.n]).toEqual([3, 8]);
    // Wilson 3/8 (Newcombe 1998's method 3): 0.1368 to 0.6943.
    expect(worst.lo).toBeCloseTo(0.1368, 4);
    expect(worst.hi).toBeCloseTo(0.6943, 4);
    expect(rows.find((r) => r.attack === TRANSFER)!.values).toEqual([0.5]);
    const amongCorrect = rows.find((r) => r.attack === WORST_AMONG_CORRECT)!;
    expect([amongCorrect.k, amongCorrect.n]).toEqual([3, 7]);
    const pgd = rows.find((r) => r.attack === 'pgd')!;
    expect(pgd.values).toEqual([0.75, 1]);
    expect(pgd.std).toBeCloseTo(Math.sqrt(2 * 0.125 ** 2), 12);
  });

  it('names a model only when it beats every other candidate significantly (paired, Holm), and says so otherwise', () => {
    // 40 images per seed, 2 seeds. Strong: resnet8 robust on 36, cbr-larget on 12 of the same images, resnet20 too inaccurate.
    const many = (n: number, k: number, label: number[]) => label.map((y, i) => (i < k ? y : 1 - y));
    const labels = Array.from({ length: 40 }, (_, i) => i % 2);
    const big = (model: string, seed: number, clean: number, robust: number): AttackCell => {
      const c = cell(model, seed, [], [], []);
      c.result = { indices: labels.map((_, i) => i), labels, cleanPred: many(40, clean, labels), cleanMargin: [], cleanAcc: clean / 40, records: [{ ...rec('pgd', many(40, robust, labels)), acc: robust / 40 }] };
      return c;
    };
    const cells = [1, 2].flatMap((seed) => [big('resnet8', seed, 40, 36), big('cbr-larget', seed, 40, 12), big('resnet20', seed, 20, 20)]);
    const evals = evaluated(cells, []);
    const rows = accuracyRows(evals);
    const r = recommend(rows, evals, 'd', 1 / 255, 10, ['cbr-larget', 'resnet8', 'resnet20']);
    expect(r.best).toBe('resnet8');
    expect(r.text).toMatch(/2 model\(s\) within 10 points of the best clean accuracy \(100.0% on the attacked images\): cbr-larget 100.0%, resnet8 100.0%\. Choose resnet8: worst-case robust accuracy 90.0% \[.*\] on 80 images \(2 seed\(s\)\), significantly above/);
    expect(r.comparisons).toHaveLength(1);
    expect(r.comparisons[0]).toMatchObject({ a: 'resnet8', b: 'cbr-larget', bCount: 48, cCount: 0, significant: true });
    // Two images apart on 4: the same ranking, but no significant difference.
    const few = [cell('resnet8', 1, [0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 0, 1]), cell('cbr-larget', 1, [0, 1, 0, 1], [0, 0, 0, 1], [0, 1, 1, 1])];
    const e2 = evaluated(few, []);
    const weak = recommend(accuracyRows(e2), e2, 'd', 1 / 255, 10, ['cbr-larget', 'resnet8']);
    expect(weak.best).toBeNull();
    expect(weak.text).toMatch(/No significant difference: resnet8 has the highest worst-case robust accuracy \(100.0% .*\), but it is not significantly above cbr-larget .*2 vs 0 discordant images, Holm p = 0.50/);
    expect(recommend(rows, evals, 'other', 1 / 255, 30, ['resnet8']).best).toBeNull();
    // With the full test split's accuracy, cbr-larget (80%) falls outside the 10-point margin: resnet8 is the only candidate.
    const byTest = recommend(rows, evals, 'd', 1 / 255, 10, ['cbr-larget', 'resnet8', 'resnet20'], new Map([['cbr-larget', 0.8], ['resnet8', 0.95], ['resnet20', 0.9]]));
    expect(byTest.text).toMatch(/2 model\(s\) within 10 points of the best clean accuracy \(95.0% on the full test split\): resnet8 95.0%, resnet20 90.0%\. Choose resnet8: .*significantly above/);
  });
});

describe('medgrad study', () => {
  const dir = mkdtempSync(join(tmpdir(), 'medgrad-study-'));
  const full = join(dir, 'full'), cut = join(dir, 'cut'), cfg = join(dir, 'tiny.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('runs a tiny study, resumes after SIGKILL to the same results, and writes its tables and figures', async () => {
    writeFileSync(cfg, JSON.stringify(TINY));
    const a = run(['study', '--config', cfg, '--out', full, '--no-report']);
    expect(a.status, a.out).toBe(0);
    expect(a.out).toMatch(/chest, eps 4\/255: 2 model\(s\) within 5 points|chest, eps 4\/255: 1 model\(s\)/);
    // Kill a second run once its first cell is written.
    const child = spawn(process.execPath, [BIN, 'study', '--config', cfg, '--out', cut, '--no-report'], { stdio: 'ignore' });
    const started = Date.now();
    const cells = () => (existsSync(join(cut, 'cells')) ? readdirSync(join(cut, 'cells')).filter((f) => f.endsWith('.json')) : []);
    while (cells().length < 1 && Date.now() - started < 120_000) await new Promise((r) => setTimeout(r, 20));
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    expect(cells().length).toBeLessThan(6);
    const b = run(['study', '--config', cfg, '--out', cut, '--no-report']);
    expect(b.status, b.out).toBe(0);
    expect(b.out).toMatch(/[1-5] of 6 cells already done/);
    expect(readFileSync(join(cut, 'results.csv'), 'utf8')).toBe(readFileSync(join(full, 'results.csv'), 'utf8'));
    // Finished cells are skipped; a removed one is redone. This run also writes the report.
    unlinkSync(join(full, 'cells', 'chest.resnet8.s3.adversarial.attack.json'));
    const c = run(['study', '--config', cfg, '--out', full]);
    expect(c.status, c.out).toBe(0);
    expect(c.out).toMatch(/5 of 6 cells already done/);
    expect(c.out).not.toMatch(/training resnet8/);
    expect(c.out).toMatch(/report: .*report.html/);
    expect(readFileSync(join(cut, 'results.csv'), 'utf8')).toBe(readFileSync(join(full, 'results.csv'), 'utf8'));
    const tables = readFileSync(join(full, 'tables.md'), 'utf8');
    expect(tables).toMatch(/## Table 1: standard training, chest/);
    expect(tables).toMatch(/## Table 2: adversarial training \(Madry PGD, 4\/255 \(0.01569\), 2 steps\), chest/);
    expect(tables).toMatch(/\| chest, eps 4\/255 \(0.01569\) \| resnet8 \(n=8\) \| resnet20 \(n=8\) \|\n\|---\|---\|---\|\n\| none \| \d+\.\d \[\d+\.\d, \d+\.\d\] \|/);
    expect(tables).toMatch(/\| transfer \| [\d.]+ \[/);
    expect(tables).toMatch(/### Paired comparisons of the worst case, chest, standard training\n\nAt eps 4\/255 \(0.01569\) \(1 comparisons, Holm-corrected together\):\n\n\| A vs B \|/);
    expect(tables).toMatch(/## Sanity checks/);
    expect(tables).toMatch(/gradient-free square-20 finds nothing/);
    expect(existsSync(join(full, 'cells', 'chest.s3.transfer.json'))).toBe(true);
    const csv = readFileSync(join(full, 'results.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('dataset,regime,model,attack,eps_255,eps,correct,images,accuracy,ci95_low,ci95_high,seeds,seed_std,seed_values');
    // Standard: 2 models x (clean + 2 eps x (9 attacks + transfer + worst case + worst among clean-correct)); adversarial: 1 model, no transfer.
    expect(csv).toHaveLength(1 + 2 * (1 + 2 * 12) + (1 + 2 * 11));
    const figs = readdirSync(join(full, 'figures')).filter((f) => f.startsWith('chest-'));
    // Curves: 11 standard (9 attacks, transfer, worst case), 10 adversarial; the paired plot and the margin histogram.
    expect(figs.filter((f) => f.endsWith('.svg'))).toHaveLength(11 + 10 + 2);
    for (const f of figs.filter((x) => x.endsWith('.svg'))) expect(readFileSync(join(full, 'figures', f), 'utf8'), f).toMatch(/^<svg[^>]*>[\s\S]*<\/svg>\s*$/);
    // Another config in the same folder is refused; a config error names the file.
    const other = join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ ...TINY, seeds: [4] }));
    expect(run(['study', '--config', other, '--out', full]).out).toMatch(/holds a study with another configuration/);
    writeFileSync(other, '{ nope');
    expect(run(['study', '--config', other]).out).toMatch(/other.json is not valid JSON/);
  }, 420_000); // three tiny studies (two models, the strong suite, transfer) and a kill

  it('writes a self-contained report whose every figure exists and decodes at its stated size', () => {
    const html = readFileSync(join(full, 'report.html'), 'utf8');
    expect(html).not.toMatch(/(src|href)="(?!data:)/); // nothing loaded from disk or network
    for (const h of ['Table 1: standard training, chest', 'Table 2: adversarial training', 'Model selection, chest', 'Sanity checks', 'Saliency maps', 'Decision regions', 'Margin proxy', 'Configuration and versions']) expect(html).toContain(h);
    const imgs = [...html.matchAll(/<img src="data:image\/png;base64,([^"]+)" width="(\d+)" height="(\d+)" alt="[^"]*" data-file="([^"]+)">/g)];
    // A saliency grid and a decision-region plot for each of 3 evaluations; the 23 charts are inline SVG.
    expect(imgs).toHaveLength(3 * 2);
    expect([...html.matchAll(/<figure class="svg" data-file="figures\/[^"]+\.svg"[^>]*><svg/g)]).toHaveLength(23);
    expect(html).not.toMatch(/<script/i);
    for (const [, b64, w, h, file] of imgs) {
      const onDisk = readFileSync(join(full, file!));
      expect(Buffer.from(b64!, 'base64').equals(onDisk), file).toBe(true);
      const png = PNG.sync.read(onDisk);
      expect([png.width, png.height], file).toEqual([Number(w), Number(h)]);
    }
    const explain = readdirSync(join(full, 'explain'));
    expect(explain.sort()).toEqual(['chest.resnet20.s3.standard.json', 'chest.resnet8.s3.adversarial.json', 'chest.resnet8.s3.standard.json']);
    const e = JSON.parse(readFileSync(join(full, 'explain', explain[0]!), 'utf8'));
    expect(e.margins.map((m: { eps: number }) => m.eps)).toEqual([4 / 255, 16 / 255]);
    expect(e.regions.kl).toBeGreaterThan(0);
  });

  it('attacks one trained run from the command line, with its table, sanity checks and files', () => {
    const out = join(dir, 'atk');
    const r = run(['attack', '--checkpoint', join(full, 'runs', 'chest', 'resnet8', 's3', 'standard'), '--attack', 'fgsm,pgd', '--steps', '2', '--eps', '4,16', '--per-class', '3', '--out', out]);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/\| attack \| 0\/255 \| 4\/255 \| 16\/255 \|/);
    expect(r.out).toMatch(/\| worst case \| [\d.]+ \[[\d.]+, [\d.]+\] \| [\d.]+ \[[\d.]+, [\d.]+\] \| [\d.]+ \[[\d.]+, [\d.]+\] \|/);
    expect(r.out).toMatch(/sanity checks:\n- (pass|WARNING)/);
    const saved = JSON.parse(readFileSync(join(out, 'attack.json'), 'utf8'));
    expect(saved.result.records.map((x: { attack: string }) => x.attack)).toEqual(['fgsm', 'pgd-2', 'fgsm', 'pgd-2', 'fgsm', 'pgd-2']);
    expect(saved.large.eps).toBe(64 / 255);
    expect(readFileSync(join(out, 'curves.svg'), 'utf8')).toMatch(/^<svg[\s\S]*worst case[\s\S]*<\/svg>\s*$/);
    expect(run(['attack', '--checkpoint', join(full, 'runs', 'chest', 'resnet8', 's3', 'standard'), '--eps', '2', '--eps-unit', 'fraction']).out).toMatch(/more than the whole \[0, 1\] pixel range/);
  });

  it.skipIf(!existsSync(CHROMIUM))('opens from disk in headless Chromium with its tables and images and no console errors (skipped where /usr/bin/chromium is missing; .ci/setup installs it)', async () => {
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:')) errors.push(`network request ${r.url()}`); });
      await page.goto(pathToFileURL(join(full, 'report.html')).href);
      expect(await page.locator('table').count()).toBeGreaterThanOrEqual(6);
      const sizes = await page.$$eval('img', (els) => els.map((i) => [(i as HTMLImageElement).complete, (i as HTMLImageElement).naturalWidth]));
      expect(sizes).toHaveLength(6);
      expect(await page.locator('figure.svg svg').count()).toBe(23);
      for (const [complete, width] of sizes) { expect(complete).toBe(true); expect(width).toBeGreaterThan(0); }
      expect(await page.locator('h2', { hasText: 'Saliency maps' }).count()).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
