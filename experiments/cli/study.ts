// `medgrad study`: the robustness study, from a preset or a JSON config, resumable and shardable.
import { join, resolve } from 'node:path';
import * as E from '../../engine/node.js';
import { loadStudyConfig, PRESETS, type StudyConfig } from '../study/config.js';
import { runStudy } from '../study/runner.js';
import { resolveShard } from '../study/shard.js';
import { withLease } from '../study/lease.js';
import { writeStudyOutputs } from '../study/tables.js';
import { buildReport } from './report.js';
import type { Command } from './commands.js';
import { parseOptions } from './args.js';
import { PLAN_NUMBERS, PLAN_OPTIONS, PLAN_USAGE, planOptions, printPlan } from './plan.js';

const USAGE = `usage: medgrad study [--preset NAME | --config FILE] [--out DIR] [--shard i/n] [--report-only]
       medgrad study [--preset NAME | --config FILE] --plan [--machines N] [--json]
  --preset NAME    ${Object.keys(PRESETS).join(' | ')} (default quick: generated data, all five models,
                   FGSM, PGD and APGD; about 10 minutes on a 2-core CPU)
  --config FILE    a JSON study config (keys as in experiments/study/config.ts; "preset" picks
                   the defaults it starts from; epsilons in 1/255 units unless "epsUnit": "fraction")
  --out DIR        output folder (default runs/study-<name>); re-running skips finished cells
  --shard i/n      run only the units dealt to shard i of n (1-based; units balanced by estimated
                   work, every shard a mix of models), e.g. one task of a Slurm array
                   writing to a shared --out; the tables cover every cell finished so far
  --shard auto     i/n from a Slurm array (SLURM_ARRAY_TASK_ID, _MIN/_MAX or _COUNT) or a
                   Kubernetes Indexed Job (JOB_COMPLETION_INDEX, count from auto/N or
                   MEDGRAD_SHARD_COUNT); see "Running the study on a cluster" in the README
  --report-only    only rebuild tables.md, results.csv, figures/ and report.html from finished cells
  --no-report      skip the HTML report (saliency maps and t-SNE take a few minutes)
  --cache DIR      decoded-dataset cache (default ~/.cache/medgrad)
${PLAN_USAGE}`;

export const studyCommand: Command = {
  summary: 'run the robustness study: train, attack, tabulate (resumable, shardable)',
  usage: USAGE,
  numberOptions: PLAN_NUMBERS, // --shard is checked by resolveShard
  async run(argv) {
    const { values } = parseOptions('medgrad study', {
      args: argv,
      options: { preset: { type: 'string' }, config: { type: 'string' }, out: { type: 'string' }, shard: { type: 'string' }, 'report-only': { type: 'boolean', default: false }, 'no-report': { type: 'boolean', default: false }, cache: { type: 'string' }, ...PLAN_OPTIONS },
    });
    if (values.preset && values.config) throw new Error('medgrad study: give --preset or --config, not both');
    const plan = planOptions(values);
    let config: StudyConfig;
    if (values.config) config = loadStudyConfig(values.config);
    else {
      const make = PRESETS[values.preset ?? 'quick'];
      if (!make) throw new Error(`medgrad study: unknown --preset '${values.preset}' (have ${Object.keys(PRESETS).join(', ')})`);
      config = make();
    }
    if (plan) { await E.init(); return printPlan(config, plan); }
    const out = resolve(values.out ?? join('runs', `study-${config.name}`));
    const shard = values.shard ? resolveShard(values.shard) : undefined;
    if (shard && values.shard!.startsWith('auto')) console.log(`shard ${shard.index}/${shard.count} (${shard.from})`);
    const t0 = performance.now();
    if (!values['report-only']) {
      await E.init();
      console.log(`device: ${E.getDevice().info.description || E.getDevice().info.vendor}`);
      await runStudy(config, out, { shard, cacheDir: values.cache });
    }
    // One task at a time rebuilds the tables, each from every cell finished when it starts.
    const o = await withLease(join(out, 'locks', 'outputs.lock'), 'outputs', () => writeStudyOutputs(config, out));
    for (const r of o.recommendations) console.log(`\n${r.text}`);
    if (o.failedChecks) console.log(`\nWARNING: ${o.failedChecks} sanity check(s) failed; see ${join(out, 'tables.md')}`);
    console.log(`\ntables: ${join(out, 'tables.md')}\nresults: ${join(out, 'results.csv')}\nfigures: ${o.figures.length} in ${join(out, 'figures')}`);
    const report = values['no-report'] ? null : await buildReport(config, out, { cacheDir: values.cache });
    console.log(`done in ${((performance.now() - t0) / 60000).toFixed(1)} min`);
    // The last line, so that `npm start` ends by saying where to look.
    if (report) console.log(`\nreport: ${report} (one self-contained file: open it in a browser)`);
    return 0;
  },
};
