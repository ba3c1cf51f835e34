// `npx tsx experiments/cluster/check-cells.ts CONFIG OUT`: exit 0 if the study in OUT has every
// cell of CONFIG done exactly once and no lease left (the Slurm proof's check), else 1.
import { loadStudyConfig } from '../study/config.js';
import { auditCells } from '../study/audit.js';

const [config, out] = process.argv.slice(2);
if (!config || !out) { console.error('usage: check-cells.ts CONFIG OUT'); process.exit(2); }
const a = auditCells(loadStudyConfig(config), out);
console.log(`cells: ${a.expected.length - a.missing.length} of ${a.expected.length} done; finished exactly once (cells.log): ${a.expected.length - a.notOnce.length} of ${a.expected.length}`);
for (const id of a.expected) console.log(`  ${id}: finished ${a.finishedBy.get(id)?.length ?? 0}x${a.finishedBy.get(id)?.length ? ` (${a.finishedBy.get(id)!.join('; ')})` : ''}`);
if (a.missing.length) console.log(`missing: ${a.missing.join(', ')}`);
if (a.extra.length) console.log(`unexpected: ${a.extra.join(', ')}`);
if (a.notOnce.length) console.log(`not finished exactly once: ${a.notOnce.map((id) => `${id} (${a.finishedBy.get(id)?.length ?? 0}x)`).join(', ')}`);
if (a.unconfirmed.length) console.log(`finishes that never landed (killed before the cell file, or beaten to it): ${a.unconfirmed.join(', ')}`);
if (a.locks.length) console.log(`leases left behind: ${a.locks.join(', ')}`);
process.exit(a.ok ? 0 : 1);
