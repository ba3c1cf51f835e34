// `medgrad report RUN_DIR`: the study's self-contained HTML report (tables, curves, sanity
// checks, recommendation, saliency maps, decision regions) from a study folder.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as E from '../../engine/node.js';
import type { StudyConfig } from '../study/config.js';
import { writeStudyOutputs } from '../study/tables.js';
import { explainStudy } from '../study/explain.js';
import { writeReport } from '../report/html.js';
import type { Command } from './commands.js';
import { numberReader, parseOptions, POSITIVE_INT } from './args.js';

const USAGE = `usage: medgrad report RUN_DIR [--images N]
  RUN_DIR     a \`medgrad study\` output folder (study.json, cells/, runs/)
  --images N  images per saliency figure (default 4)
Writes RUN_DIR/report.html (one file, figures inlined, opens from disk with no server).
Saliency and t-SNE results are kept in RUN_DIR/explain/ and reused by later runs.`;

const NUMBERS = { images: POSITIVE_INT };

/** Tables, explanations and the HTML report for a study folder; returns the report's path. */
export async function buildReport(config: StudyConfig, out: string, o: { images?: number; cacheDir?: string } = {}): Promise<string> {
  await E.init();
  await writeStudyOutputs(config, out);
  const entries = await explainStudy(config, out, o);
  const info = E.getDevice().info;
  return writeReport(config, out, entries, {
    adapter: info.description || info.vendor, generated: new Date().toISOString(),
    versions: { medgrad: E.version, node: process.versions.node, platform: `${process.platform}-${process.arch}` },
  });
}

export const reportCommand: Command = {
  summary: 'write the self-contained HTML report of a study folder',
  usage: USAGE,
  numberOptions: NUMBERS,
  async run(argv) {
    const { values, positionals } = parseOptions('medgrad report', { args: argv, allowPositionals: true, options: { images: { type: 'string' } } });
    const images = numberReader('medgrad report', values, NUMBERS)('images', 4);
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new Error(`medgrad report: give one study folder\n\n${USAGE}`);
    const file = join(dir, 'study.json');
    if (!existsSync(file)) throw new Error(`medgrad report: ${dir} is not a study folder (${file} is missing)`);
    const path = await buildReport(JSON.parse(readFileSync(file, 'utf8')) as StudyConfig, resolve(dir), { images });
    console.log(`report: ${path}`);
    return 0;
  },
};
