// `tsx bench/report.ts FILE.json [...]`: Markdown tables of benchmark records, one per
// adapter, a column per implementation and medgrad's ratio to the best peer.
import { readFileSync } from 'node:fs';
import type { BenchRecord } from './harness.js';

const records = process.argv.slice(2).flatMap((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchRecord[]);
if (records.length === 0) {
  console.error('usage: tsx bench/report.ts FILE.json [...]  (files written by npm run bench -- --json FILE)');
  process.exit(1);
}
// PyTorch runs on the CPU, not on an adapter: its column joins every table, outside the ratio.
// A baseline revision of medgrad (`medgrad@<commit>`, from --baseline) is not a peer either.
const CPU = 'pytorch-cpu';
const isPeer = (impl: string) => impl !== 'medgrad' && impl !== CPU && !impl.startsWith('medgrad@');
const impls = [...new Set(records.map((r) => r.impl))].sort((a, b) => (a === 'medgrad' ? -1 : b === 'medgrad' ? 1 : a === CPU ? 1 : b === CPU ? -1 : a.localeCompare(b)));
const cpu = records.filter((r) => r.impl === CPU);
const fmt = (v: number | undefined) => (v === undefined ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
for (const adapter of new Set(records.filter((r) => r.impl !== CPU).map((r) => r.adapter))) {
  const rs = [...records.filter((r) => r.adapter === adapter), ...cpu];
  console.log(`Adapter: ${adapter}${cpu.length ? `; ${CPU}: ${cpu[0]!.adapter}` : ''}\n`);
  console.log(`| workload | unit | ${impls.join(' | ')} | medgrad vs best WebGPU peer |`);
  console.log(`|---|---|${impls.map(() => '---:').join('|')}|---:|`);
  for (const name of new Set(rs.filter((r) => r.impl !== CPU).map((r) => r.name))) {
    const row = rs.filter((r) => r.name === name);
    const unit = row[0]!.unit;
    const lower = unit === 'us/op' || unit === 'ms';
    const v = (impl: string) => row.find((r) => r.impl === impl)?.value;
    const mine = v('medgrad');
    const peers = row.filter((r) => isPeer(r.impl)).map((r) => r.value);
    const best = peers.length ? (lower ? Math.min(...peers) : Math.max(...peers)) : undefined;
    const ratio = mine !== undefined && best !== undefined ? (lower ? best / mine : mine / best) : undefined;
    console.log(`| ${name} | ${unit} | ${impls.map((i) => fmt(v(i))).join(' | ')} | ${ratio === undefined ? '-' : `${ratio.toFixed(2)}x`} |`);
  }
  console.log('');
}
