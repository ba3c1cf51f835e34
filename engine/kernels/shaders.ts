// WGSL sources by family name (the file name in shaders/ without .wgsl). The device module
// of each platform registers them: Node reads the files, the browser bundles the same files.
const sources = new Map<string, string>();

export function registerShaders(files: Record<string, string>): void {
  for (const [name, src] of Object.entries(files)) sources.set(name, src);
}

export function shaderSource(family: string): string {
  const s = sources.get(family);
  if (s === undefined) throw new Error(`medgrad: no shader family '${family}' is registered (is shaders/${family}.wgsl there, and was init() called?)`);
  return s;
}
