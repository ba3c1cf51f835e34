// WGSL sources by family name (the file name in shaders/ without .wgsl). Each platform's entry
// point registers them at init(): Node reads the files, the browser bundles the same files.
// A family may also receive generated code: a line `// @generated NAME` in the file is replaced
// by the text registered under NAME (the elementwise op table comes from the op records).
// A family may also reuse another's code: a line `// @include NAME` is replaced by the source
// of family NAME (so a subgroup variant, which must begin with `enable subgroups;`, shares the
// declarations and helpers of the workgroup family it extends instead of copying them).
// A family NAME@f16 is NAME compiled for float16 storage: its storage alias, the one line
// `alias T = f32; // @storage` (or u32 in copy.wgsl, which only moves values), becomes f16 and the module starts with `enable f16;`. Kernels
// load storage values into f32 (`f32(x[i])`), compute in f32 and convert on store (`T(v)`), so
// one source serves both storage types and a float32-only family has no such line.
export const HALF_FAMILY = '@f16';
const STORAGE_ALIAS = /^alias (\w+) = (?:f32|u32); \/\/ @storage\b.*$/m;

const sources = new Map<string, string>();
const generated = new Map<string, string>();

export function registerShaders(files: Record<string, string>): void {
  for (const [name, src] of Object.entries(files)) sources.set(name, src);
}

/** Code to insert at `// @generated name` in `family` (set before the family first compiles). */
export function registerGenerated(family: string, name: string, code: string): void {
  generated.set(`${family}/${name}`, code);
}

export function shaderSource(family: string, including: readonly string[] = []): string {
  if (family.endsWith(HALF_FAMILY)) {
    const base = family.slice(0, -HALF_FAMILY.length);
    const src = shaderSource(base, including);
    if (!STORAGE_ALIAS.test(src)) throw new Error(`medgrad: shaders/${base}.wgsl has no float16 form: it declares no storage alias ('alias T = f32; // @storage')`);
    return `enable f16;\n${src.replace(STORAGE_ALIAS, 'alias $1 = f16; // @storage (float16 form)')}`;
  }
  const s = sources.get(family);
  if (s === undefined) throw new Error(`medgrad: no shader family '${family}' is registered (is shaders/${family}.wgsl there, and was init() called?)`);
  if (including.includes(family)) throw new Error(`medgrad: shaders/${family}.wgsl includes itself (through ${including.join(' -> ')})`);
  return s.replace(/^[ \t]*\/\/ @include (\S+).*$/gm, (_line, name: string) => shaderSource(name, [...including, family])).replace(/^[ \t]*\/\/ @generated (\S+).*$/gm, (line, name: string) => {
    const code = generated.get(`${family}/${name}`);
    if (code === undefined) throw new Error(`medgrad: shaders/${family}.wgsl expects generated code '${name}', and none was registered`);
    return code;
  });
}
