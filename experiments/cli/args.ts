// Numeric option parsing shared by the commands: a bad value names the option and the value.
export function numberOption(v: string | undefined, name: string, dflt: number, o: { int?: boolean; min?: number; command: string }): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || (o.int && !Number.isInteger(n)) || n < (o.min ?? -Infinity)) {
    throw new Error(`medgrad ${o.command}: --${name} must be ${o.int ? 'an integer' : 'a number'}${o.min !== undefined ? ` >= ${o.min}` : ''}, got '${v}'`);
  }
  return n;
}
