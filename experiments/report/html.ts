// The study's report: one self-contained HTML file (figures inlined as data URIs, styles
// inline, no script, no network) with the tables, curves, sanity checks, recommendation,
// saliency grids, decision regions with margins, and the configuration and versions that
// produced them. It opens from disk in any browser.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { marked } from 'marked';
import { writeFileAtomic } from '../io/atomic.js';
import { eps255, formatEps } from '../attacks/spec.js';
import type { ExplainEntry } from '../study/explain.js';
import type { StudyConfig } from '../study/config.js';

const esc = (s: string) => s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);

/** PNG width and height from its IHDR chunk. */
export function pngSize(png: Uint8Array): { width: number; height: number } {
  const v = new DataView(png.buffer, png.byteOffset, png.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

/**
 * A figure inlined: an SVG (the study's Vega-Lite charts, which carry no script) as markup, a
 * PNG as a data-URI <img>; data-file names the file it came from (for tests and readers).
 */
function img(out: string, file: string, alt: string): string {
  if (file.endsWith('.svg')) {
    const svg = readFileSync(join(out, file), 'utf8');
    if (/<script|\son\w+=/i.test(svg)) throw new Error(`medgrad report: ${file} contains a script or an event handler; refusing to inline it`);
    return `<figure class="svg" data-file="${esc(file)}" aria-label="${esc(alt)}">${svg.replace(/^<\?xml[^>]*>\s*/, '')}</figure>`;
  }
  const png = new Uint8Array(readFileSync(join(out, file)));
  const { width, height } = pngSize(png);
  return `<img src="data:image/png;base64,${Buffer.from(png).toString('base64')}" width="${width}" height="${height}" alt="${esc(alt)}" data-file="${esc(file)}">`;
}

const STYLE = `body{font:15px/1.5 system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%;height:auto}
.figs{display:flex;flex-wrap:wrap;gap:12px}pre{background:#f6f6f6;padding:1em;overflow:auto;font-size:12px}
li strong{color:#b00}figure.svg{margin:1em 0}figure.svg svg{max-width:100%;height:auto}`;

export interface ReportInfo { adapter: string; versions: Record<string, string>; generated: string }

export function writeReport(c: StudyConfig, out: string, explain: ExplainEntry[], info: ReportInfo): string {
  const tables = readFileSync(join(out, 'tables.md'), 'utf8');
  // The Markdown's figure links become inlined images.
  const figures: string[] = [];
  const md = tables.replace(/!\[[^\]]*\]\(([^)]+)\)/g, (_, file: string) => `<!--figure ${figures.push(file) - 1}-->`);
  let body = marked.parse(md, { async: false }) as string;
  body = body.replace(/<!--figure (\d+)-->/g, (_, k: string) => img(out, figures[Number(k)]!, figures[Number(k)]!));
  body = body.replace('<h2>Figures</h2>', '<h2>Accuracy versus epsilon</h2>');
  const parts: string[] = [body];
  if (explain.length) {
    parts.push('<h2>Saliency maps</h2>', `<p>Vanilla gradient saliency |d logit / d x| of the predicted class, max over channels, min-max normalised, Gaussian blur sigma 5 px (the protocol's recipe), for the first attacked test images before and after the attack. Captions: true label, prediction and its softmax confidence (red: wrong).</p>`);
    parts.push('<div class="figs">', ...explain.map((e) => img(out, e.saliency.file, `saliency ${e.id}`)), '</div>');
    parts.push('<h2>Decision regions (t-SNE of penultimate features)</h2>', `<p>Features of the layer before the classifier for the attacked test images, clean and under ${esc(explain[0]!.attack)} at every eps, projected together with exact t-SNE (perplexity up to 30, early exaggeration 12, learning rate 200, 1,000 iterations); the background is an 11-nearest-neighbour classifier on the 2-D points labelled with the model's predictions.</p>`);
    parts.push('<div class="figs">', ...explain.map((e) => img(out, e.regions.file, `regions ${e.id}`)), '</div>');
    const eps = [...new Set(explain.flatMap((e) => e.margins.map((m) => m.eps)))].sort((a, b) => a - b);
    parts.push('<h3>Margin proxy</h3>', '<p>Mean distance, in the model\'s feature space, from each clean image to the nearest image (clean or adversarial) that the model assigns to another class, divided by the median distance between clean images (so models with differently scaled features compare); larger means clean points sit farther from the boundary. In brackets: the share of images whose prediction the attack flipped. t-SNE KL divergence per model in the last column.</p>');
    parts.push(`<table><tr><th>dataset</th><th>regime</th><th>model</th>${eps.map((e) => `<th>eps ${esc(formatEps(e))}</th>`).join('')}<th>t-SNE KL</th></tr>`);
    for (const e of explain) {
      parts.push(`<tr><td>${esc(e.dataset)}</td><td>${e.regime}</td><td>${esc(e.model)}</td>${eps.map((x) => {
        const m = e.margins.find((q) => Math.abs(q.eps - x) < 1e-12);
        return `<td>${m ? `${m.relative.toFixed(3)} (${(100 * m.flipped).toFixed(0)}%)` : '–'}</td>`;
      }).join('')}<td>${e.regions.kl.toFixed(3)}</td></tr>`);
    }
    parts.push('</table>');
  }
  parts.push('<h2>Configuration and versions</h2>', `<p>Generated ${esc(info.generated)} on ${esc(info.adapter)}; ${Object.entries(info.versions).map(([k, v]) => `${esc(k)} ${esc(v)}`).join(', ')}. Epsilons below are fractions of [0, 1] (eps ${c.eps.map((e) => eps255(e)).join(', ')} in 1/255 units).</p>`, `<pre>${esc(JSON.stringify(c, null, 2))}</pre>`);
  const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>medgrad study '${esc(c.name)}'</title><style>${STYLE}</style></head><body>\n${parts.join('\n')}\n</body></html>\n`;
  const file = join(out, 'report.html');
  writeFileAtomic(file, html);
  return file;
}
