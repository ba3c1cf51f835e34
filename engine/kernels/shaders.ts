// WGSL sources by family name (the file name in shaders/ without .wgsl). Each platform's entry
// point registers them at init(): Node reads the files, the browser bundles the same files.
// A family may also receive generated code: a line `// @generated NAME` in the file is replaced
// by the text registered under NAME (the elementwise op table comes from the op records).
// A family may also reuse another's code: a line `// @include NAME` is replaced by the source
// of family NAME (so a subgroup variant, which must begin with `enable subgroups;`, shares the
// declarations and helpers of the workgroup family it extends instead of copying them).
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
  const s = sources.get(family);
  if (s === undefined) throw new Error(`medgrad: no shader family '${family}' is registered (is shaders/${family}.wgsl there, and was init() called?)`);
  if (including.includes(family)) throw new Error(`medgrad: shaders/${family}.wgsl includes itself (through ${including.join(' -> ')})`);
  return s.replace(/^[ \t]*\/\/ @include (\S+).*$/gm, (_line, name: string) => shaderSource(name, [...including, family])).replace(/^[ \t]*\/\/ @generated (\S+).*$/gm, (line, name: string) => {
    const code = generated.get(`${family}/${name}`);
    if (code === undefined) throw new Error(`medgrad: shaders/${family}.wgsl expects generated code '${name}', and none was registered`);
    return code;
  });
}
