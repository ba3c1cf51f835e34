// Option parsing shared by the commands and the bench: every bad option reads the same way,
// naming the program, the option and the value (`medgrad train: --epochs must be a positive
// integer, got '-3'`). Each command lists its numeric options with their rules in one table, so
// the tests can check every one of them.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { parseEps } from '../attacks/spec.js';

export interface NumberRule {
  /** Whole numbers only. */
  int?: boolean;
  /** Inclusive lower bound. */
  min?: number;
  /** Exclusive lower bound. */
  above?: number;
  /** Exclusive upper bound. */
  below?: number;
  /** The only values allowed. */
  oneOf?: readonly number[];
}

export const POSITIVE_INT: NumberRule = { int: true, min: 1 };
export const NON_NEGATIVE_INT: NumberRule = { int: true, min: 0 };
export const INT: NumberRule = { int: true };
export const POSITIVE: NumberRule = { above: 0 };
export const NON_NEGATIVE: NumberRule = { min: 0 };

/** Numeric options by name (without the dashes) and the rule their values must follow. */
export type NumberRules = Readonly<Record<string, NumberRule>>;

/** "a positive integer", "numbers in [0, 1)", "1 or 3": what a value must be, for messages. */
export function describeRule(r: NumberRule, plural = false): string {
  if (r.oneOf) return `${r.oneOf.slice(0, -1).join(', ')} or ${r.oneOf.at(-1)}`;
  const noun = (r.int ? 'integer' : 'number') + (plural ? 's' : '');
  let phrase: string;
  if (r.below !== undefined) phrase = `${noun} in ${r.above !== undefined ? `(${r.above}` : `[${r.min ?? '-inf'}`}, ${r.below})`;
  else if (r.above === 0 || (r.int && r.min === 1)) phrase = `positive ${noun}`;
  else if (r.min === 0) phrase = `non-negative ${noun}`;
  else if (r.min !== undefined) phrase = `${noun} >= ${r.min}`;
  else if (r.above !== undefined) phrase = `${noun} > ${r.above}`;
  else phrase = noun;
  return plural ? phrase : `${/^[aeiou]/.test(phrase) ? 'an' : 'a'} ${phrase}`;
}

function valid(text: string, r: NumberRule): number | null {
  const t = text.trim();
  if (!(r.int ? /^[+-]?\d+$/ : /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i).test(t)) return null;
  const n = Number(t);
  const ok = Number.isFinite(n) && (!r.int || Number.isSafeInteger(n)) && (r.min === undefined || n >= r.min)
    && (r.above === undefined || n > r.above) && (r.below === undefined || n < r.below) && (!r.oneOf || r.oneOf.includes(n));
  return ok ? n : null;
}

/** One number, or a clear error naming `prog` (e.g. 'medgrad train'), the option and the value. */
export function parseNumber(prog: string, name: string, text: string, rule: NumberRule): number {
  const n = valid(text, rule);
  if (n === null) throw new Error(`${prog}: --${name} must be ${describeRule(rule)}, got '${text}'`);
  return n;
}

/** A comma-separated list of numbers, each following `rule`. */
export function parseNumberList(prog: string, name: string, text: string, rule: NumberRule): number[] {
  const items = text.split(',');
  const ns = items.map((s) => valid(s, rule));
  if (ns.some((n) => n === null)) throw new Error(`${prog}: --${name} must be ${describeRule(rule, true)}, comma-separated, got '${text}'`);
  return ns as number[];
}

/**
 * A reader for a command's numeric options: `num('epochs', 20)` is --epochs checked against its
 * rule, or 20 when absent. Names are checked against `rules` at compile time.
 */
export function numberReader<K extends string>(prog: string, values: Readonly<Record<string, unknown>>, rules: Readonly<Record<K, NumberRule>>) {
  return function num<D extends number | undefined>(name: K, dflt: D): number | D {
    const v = values[name];
    return typeof v === 'string' ? parseNumber(prog, name, v, rules[name]) : dflt;
  };
}

/**
 * Epsilons: a comma-separated list in 1/255 units (or fractions of [0, 1] with unit 'fraction'),
 * each optionally written k/255. Returns fractions of the pixel range.
 */
export function parseEpsOption(prog: string, name: string, text: string, unit: '255' | 'fraction', o: { single?: boolean } = {}): number[] {
  const items = text.split(',').map((s) => s.trim());
  const bad = (o.single && items.length > 1) || items.some((s) => valid(s.replace(/\/255$/, ''), NON_NEGATIVE) === null);
  const what = o.single ? 'a non-negative number' : 'non-negative numbers, comma-separated,';
  if (bad) throw new Error(`${prog}: --${name} must be ${what} in ${unit === '255' ? '1/255 units' : 'fractions of the pixel range'} (k/255 also works), got '${text}'`);
  try {
    return parseEps(items, unit, `--${name}`);
  } catch (e) {
    throw new Error(`${prog}: ${(e as Error).message.replace(/^medgrad: /, '')}`);
  }
}

/**
 * node:util's parseArgs with errors that name the program, and with `--epochs -3` read as a value
 * (parseArgs would call it ambiguous) so that a negative number gets the usual clear message.
 */
export function parseOptions<T extends ParseArgsConfig>(prog: string, config: T): ReturnType<typeof parseArgs<T>> {
  const options = config.options ?? {};
  const argv = config.args ?? [];
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!, next = argv[i + 1];
    const takesValue = a.startsWith('--') && !a.includes('=') && options[a.slice(2)]?.type === 'string';
    if (takesValue && next !== undefined && /^-[\d.]/.test(next)) { args.push(`${a}=${next}`); i++; } else args.push(a);
  }
  try {
    return parseArgs({ ...config, args } as T);
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (!code.startsWith('ERR_PARSE_ARGS')) throw e;
    const m = (e as Error).message;
    throw new Error(`${prog}: ${m.charAt(0).toLowerCase()}${m.slice(1)}`);
  }
}
