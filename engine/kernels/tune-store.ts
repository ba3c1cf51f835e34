// The autotune cache in Node: one JSON file per adapter and engine version under the user's cache
// folder ($MEDGRAD_CACHE_DIR, else $XDG_CACHE_HOME/medgrad, else ~/.cache/medgrad), written
// atomically. `medgrad tune` fills it; every later init() on the same adapter reads it.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { AdapterDescription } from '../device/device.js';
import type { TuneStore } from '../engine.js';
import type { TuneTable } from './variants.js';
import { ENGINE_VERSION } from '../version.js';

function cacheDir(): string {
  const env = process.env;
  return env.MEDGRAD_CACHE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'medgrad');
}

/** The cache file for an adapter: readable name, plus a hash of the full description. */
export function tuneCacheFile(info: AdapterDescription): string {
  const id = [info.vendor, info.architecture, info.device, info.description, info.backend].join('|');
  const slug = `${info.vendor}-${info.architecture}`.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  const hash = createHash('sha256').update(id).digest('hex').slice(0, 12);
  return join(cacheDir(), `tune-${slug}-${hash}-v${ENGINE_VERSION}.json`);
}

export function fileTuneStore(info: AdapterDescription): TuneStore {
  const file = tuneCacheFile(info);
  return {
    location: file,
    load(): TuneTable {
      let text: string;
      try { text = readFileSync(file, 'utf8'); } catch { return {}; }
      try {
        const parsed = JSON.parse(text) as { version?: string; choices?: TuneTable };
        return parsed.version === ENGINE_VERSION && parsed.choices ? parsed.choices : {};
      } catch {
        console.warn(`medgrad: ignoring the unreadable tune cache ${file} (run \`medgrad tune\` to rewrite it)`);
        return {};
      }
    },
    save(choices: TuneTable): void {
      mkdirSync(cacheDir(), { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      writeFileSync(tmp, JSON.stringify({ version: ENGINE_VERSION, adapter: info, choices }, null, 2) + '\n');
      renameSync(tmp, file);
    },
  };
}
