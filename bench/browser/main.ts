// The browser half of bench/browser.ts: times a PGD step of the example model and publishes it.
import { init, getDevice } from '../../engine/browser.js';
import { timePgdStep } from './pgd-step.js';

declare global { interface Window { benchResult?: unknown } }

try {
  await init();
  const side = await (await fetch('example/checkpoint.json')).json();
  const weights = new Uint8Array(await (await fetch('example/model.safetensors')).arrayBuffer());
  const r = await timePgdStep(side, weights);
  const info = getDevice().info;
  window.benchResult = { ...r, adapter: [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') };
} catch (e) {
  window.benchResult = { error: (e as Error).message };
}
document.getElementById('out')!.textContent = JSON.stringify(window.benchResult, null, 2);
