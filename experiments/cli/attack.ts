// `medgrad attack`: attacks one trained model (a `medgrad train` run folder) on its own test
// split: the study's outputs for a single row, plus per-sample results.
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as E from '../../engine/node.js';
import { loadDataset } from '../data/load.js';
import { makeSplits, type SplitMode } from '../data/splits.js';
import { loadTensors, readSidecar } from '../train/checkpoint.js';
import { buildModel, type TrainState } from '../train/trainer.js';
import { ATTACK_PRESETS, attackConfig, formatEps } from '../attacks/spec.js';
import { attackedSet, worstCaseCorrect } from '../attacks/evaluate.js';
import { evaluateWithChecks } from '../attacks/sanity.js';
import { writeFileAtomic } from '../io/atomic.js';
import { accuracyCurvesSvg } from '../report/figures.js';
import { wilson } from '../stats/index.js';
import { INT, numberReader, parseEpsOption, parseOptions, POSITIVE_INT } from './args.js';
import type { Command } from './commands.js';

const USAGE = `usage: medgrad attack --checkpoint DIR [options]
  --checkpoint DIR   a run folder of \`medgrad train\` (best.safetensors + checkpoint.json)
  --data D           the dataset (default: the run's own); its test split is attacked
  --attack LIST      comma-separated: ${Object.keys(ATTACK_PRESETS).join(', ')} (default fgsm-ll,pgd-ll,pgd,apgd-ce)
  --eps LIST         epsilons, in 1/255 units by default (e.g. 0,1,2,4); 'k/255' always works
  --eps-unit U       255 (default) or fraction (then --eps 0.004,0.008 are fractions of [0, 1])
  --steps N          iterative attacks' steps (default: each attack's: 20)
  --restarts R       random restarts per attack, each image keeps its worst (default 1)
  --per-class N      attacked test images per class (default 150, the paper's)
  --sanity-eps E     the large eps of the ~0% check, same unit as --eps (default 64/255)
  --batch-size B     images attacked at once (default 50)
  --seed S           attacked-set draw and random starts (default 0)
  --out DIR          write attack.json (per-sample results), attack.md and curves.svg here
  --allow-no-groups  split a folder whose labels.csv has no patient ids by image (one patient may land in two splits)
  --cache DIR        decoded-dataset cache (default ~/.cache/medgrad)`;

const NUMBERS = { steps: POSITIVE_INT, restarts: POSITIVE_INT, 'per-class': POSITIVE_INT, 'batch-size': POSITIVE_INT, seed: INT };

export const attackCommand: Command = {
  summary: 'attack a trained model with FGSM / PGD / APGD over an eps grid',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values } = parseOptions('medgrad attack', {
      args: argv,
      options: {
        checkpoint: { type: 'string' }, data: { type: 'string' }, attack: { type: 'string' }, eps: { type: 'string' }, 'eps-unit': { type: 'string' },
        steps: { type: 'string' }, restarts: { type: 'string' }, 'per-class': { type: 'string' }, 'sanity-eps': { type: 'string' },
        'batch-size': { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, cache: { type: 'string' }, 'allow-no-groups': { type: 'boolean', default: false },
      },
    });
    const unit = values['eps-unit'] ?? '255';
    if (unit !== '255' && unit !== 'fraction') throw new Error(`medgrad attack: --eps-unit must be 255 or fraction, got '${unit}'`);
    const eps = [...new Set([0, ...parseEpsOption('medgrad attack', 'eps', values.eps ?? '0,1,2,4,8', unit)])].sort((a, b) => a - b);
    const sanityEps = parseEpsOption('medgrad attack', 'sanity-eps', values['sanity-eps'] ?? '64/255', unit, { single: true })[0]!;
    const num = numberReader('medgrad attack', values, NUMBERS);
    // Without --steps or --restarts, each attack keeps its own.
    const steps = num('steps', undefined), restarts = num('restarts', undefined);
    const perClass = num('per-class', 150), batchSize = num('batch-size', 50), seed = num('seed', 0);
    if (!values.checkpoint) throw new Error(`medgrad attack: --checkpoint is required\n\n${USAGE}`);
    const attacks = (values.attack ?? 'fgsm-ll,pgd-ll,fgsm,fgsm-margin,pgd,pgd-margin,apgd-ce,apgd-margin,square').split(',').map((a) => attackConfig(a.trim(), { steps, restarts }));
    const side = readSidecar<TrainState>(values.checkpoint);
    const { config, run } = side.state;
    await E.init();
    const ds = await loadDataset(values.data ?? run?.data ?? '', { imageSize: config.imageSize, channels: 'auto', cacheDir: values.cache ?? join(homedir(), '.cache', 'medgrad'), count: run?.count, seed: 0, allowNoGroups: values['allow-no-groups'] });
    if (ds.classes.length !== config.classes) throw new Error(`medgrad attack: ${ds.source} has ${ds.classes.length} classes but the model in ${values.checkpoint} was trained for ${config.classes}`);
    const mode = (run?.split && ['protocol', 'own', 'patient'].includes(run.split) ? run.split : ds.split ? 'own' : ds.groups ? 'patient' : 'protocol') as SplitMode;
    const splits = makeSplits(ds, mode, run?.splitSeed ?? 127);
    const model = buildModel(config);
    const w = loadTensors(join(values.checkpoint, 'best.safetensors'));
    model.loadStateDict(w); E.dispose(w);
    const idx = attackedSet(ds, splits.test, perClass, seed);
    console.log(`attacking ${config.model} (${values.checkpoint}) on ${idx.length} test images of ${ds.source}; eps ${eps.map(formatEps).join(', ')}`);
    const { result: r, large, checks } = await evaluateWithChecks(model, ds, idx, {
      attacks, eps, channels: config.channels, batchSize, seed, sanityEps, onProgress: (done, total, what) => console.log(`  ${done}/${total} ${what}`),
    });
    // Per (attack, eps): correct images, with a 95% Wilson interval; the worst case per image over every attack.
    const correct = (name: string, e: number): number => (name === 'worst case' ? worstCaseCorrect(r, e) : r.records.find((x) => x.attack === name && x.eps === e)?.advPred.map((p, i) => p === r.labels[i]) ?? []).filter(Boolean).length;
    const cell = (name: string, e: number) => { const w = wilson(correct(name, e), idx.length); return { acc: w.p, lo: w.lo, hi: w.hi, text: `${(100 * w.p).toFixed(1)} [${(100 * w.lo).toFixed(1)}, ${(100 * w.hi).toFixed(1)}]` }; };
    const names = [...attacks.map((a) => a.name), 'worst case'];
    const lines = [`| attack | ${eps.map((e) => `${+(e * 255).toFixed(4)}/255`).join(' | ')} |`, `|---|${eps.map(() => '---|').join('')}`];
    for (const a of names) lines.push(`| ${a} | ${eps.map((e) => cell(a, e).text).join(' | ')} |`);
    const checkLines = checks.map((c) => `- ${c.passed ? 'pass' : 'WARNING: failed'}: ${c.check} (${c.detail})`);
    console.log(['', `accuracy (%) against the true labels on ${idx.length} images, with 95% Wilson intervals:`, '', ...lines, '', 'sanity checks:', ...checkLines].join('\n'));
    if (values.out) {
      writeFileAtomic(join(values.out, 'attack.json'), JSON.stringify({ checkpoint: values.checkpoint, model: config.model, data: ds.source, attacks, result: r, large, checks }) + '\n');
      writeFileAtomic(join(values.out, 'attack.md'), ['# medgrad attack', '', `${config.model} from ${values.checkpoint}, ${idx.length} test images of ${ds.source}. Accuracy (%) with 95% Wilson intervals.`, '', ...lines, '', '## Sanity checks', '', ...checkLines, ''].join('\n'));
      const series = names.map((name) => ({ name, points: eps.map((e) => { const c = cell(name, e); return { eps: e, acc: c.acc, lo: c.lo, hi: c.hi }; }) }));
      writeFileAtomic(join(values.out, 'curves.svg'), await accuracyCurvesSvg(series, { title: `${config.model}: accuracy under attack`, subtitle: `${idx.length} test images; 95% Wilson intervals` }));
      console.log(`\nwritten: ${join(values.out, 'attack.json')}, attack.md, curves.svg`);
    }
    model.dispose();
    return 0;
  },
};
