// Compiles a WGSL entry point into a pipeline whose bind-group layout comes from reflection
// (wgsl_reflect), and reads the shader's own numbers back: its module-scope integer constants
// (tile sizes) and the entry's workgroup size, so a launcher computes its grid from the same
// numbers the shader uses and no size is written twice.
import { WgslReflect } from 'wgsl_reflect/wgsl_reflect.module.js';
import { shaderSource } from './shaders.js';

export interface Kernel {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Storage binding variable name -> binding index in @group(0). */
  readonly bindings: ReadonlyMap<string, number>;
  /** Whether the kernel reads a uniform parameter struct (@group(1) @binding(0)). */
  readonly hasUniform: boolean;
  /** The shader's module-scope integer constants and this pipeline's override values. */
  readonly consts: Readonly<Record<string, number>>;
  readonly workgroupSize: readonly [number, number, number];
}

/** Largest uniform struct a kernel may declare (one arena slot). */
export const UNIFORM_SLOT = 256;

/**
 * Where kernels find their buffers: storage in @group(0), the parameter struct alone in
 * @group(1) @binding(0). Apart, a storage bind group is keyed by its buffers only and a uniform
 * bind group by its arena slot only; together, every (buffers, slot) pair would be a bind group of
 * its own, and a run whose dispatch order shifts (attacks, saliency, t-SNE) would create them
 * without end, each holding a native descriptor set until V8 collects its wrapper.
 */
export const STORAGE_GROUP = 0;
export const UNIFORM_GROUP = 1;

const CONST_RE = /^\s*(?:const|override)\s+([A-Za-z_]\w*)\s*(?::\s*[iu]32\s*)?=\s*(\d+)u?\s*;/gm;

/** Integer `const` / `override` declarations with literal values, by name. */
export function integerConstants(code: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of code.matchAll(CONST_RE)) out[m[1]!] = Number(m[2]);
  return out;
}

/**
 * The code as wgsl_reflect can parse it: it knows no subgroup-matrix types and no explicit template
 * arguments on builtins (`subgroupMatrixLoad<T, row_major>(...)`), so they are masked (a type
 * becomes f32, the arguments go). Bindings, overrides and entry points read the same.
 */
export function reflectable(code: string): string {
  if (!code.includes('subgroup_matrix')) return code;
  return code.replace(/\bsubgroup_matrix_(?:left|right|result)<[^>]*>/g, 'f32').replace(/\b(subgroupMatrix\w+)<[^>(]*>\(/g, '$1(');
}

interface Module { module: GPUShaderModule; reflect: WgslReflect; consts: Record<string, number>; code: string }

/**
 * The workgroup size an entry point runs with: reflection gives the overrides' defaults, so an
 * override named in `@workgroup_size` takes this pipeline's value (a tile-shape variant sets it).
 */
function workgroupSize(code: string, entry: string, reflected: readonly number[], values: Readonly<Record<string, number>>): [number, number, number] {
  const m = new RegExp(`@workgroup_size\\(([^)]*)\\)[^{]*?\\bfn\\s+${entry}\\b`).exec(code);
  const args = m ? m[1]!.split(',').map((a) => a.trim()).filter(Boolean) : [];
  const dims = [0, 1, 2].map((i) => {
    const a = args[i];
    if (a !== undefined && /^[A-Za-z_]\w*$/.test(a) && values[a] !== undefined) return values[a]!;
    return reflected[i] ?? 1;
  });
  return [dims[0]!, dims[1]!, dims[2]!];
}

export class KernelCompiler {
  private kernels = new Map<string, Kernel>();
  private modules = new Map<string, Module>();

  /** The one layout of every kernel's @group(1): a uniform struct of at most UNIFORM_SLOT bytes. */
  readonly uniformLayout: GPUBindGroupLayout;

  constructor(private readonly gpu: GPUDevice) {
    this.uniformLayout = gpu.createBindGroupLayout({ entries: [{ binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: 'uniform' } }], label: 'medgrad uniform parameters' });
  }

  private moduleFor(family: string): Module {
    let m = this.modules.get(family);
    if (!m) {
      const code = shaderSource(family);
      m = { module: this.gpu.createShaderModule({ code, label: family }), reflect: new WgslReflect(reflectable(code)), consts: integerConstants(code), code };
      this.modules.set(family, m);
    }
    return m;
  }

  /** The family's module-scope integer constants (named codes, tile sizes). */
  constants(family: string): Readonly<Record<string, number>> { return this.moduleFor(family).consts; }

  kernel(family: string, entry: string, constants: Readonly<Record<string, number>> = {}): Kernel {
    const key = `${family}.${entry}${JSON.stringify(constants)}`;
    const hit = this.kernels.get(key);
    if (hit) return hit;
    const { module, reflect, consts, code } = this.moduleFor(family);
    const ep = reflect.entry.compute.find((e) => e.name === entry);
    if (!ep) throw new Error(`medgrad: shaders/${family}.wgsl has no compute entry point '${entry}'`);
    const declared = new Set(reflect.overrides.map((o) => o.name));
    for (const name of Object.keys(constants)) {
      if (!declared.has(name)) throw new Error(`medgrad: shaders/${family}.wgsl entry '${entry}' declares no override '${name}'`);
    }
    const bindings = new Map<string, number>();
    let hasUniform = false;
    const entries: GPUBindGroupLayoutEntry[] = [];
    for (const r of ep.resources) {
      const where = `shaders/${family}.wgsl: ${r.name} at @group(${r.group}) @binding(${r.binding})`;
      if (r.resourceType === 0) { // uniform
        if (r.group !== UNIFORM_GROUP || r.binding !== 0) throw new Error(`medgrad: ${where}: the parameter struct belongs at @group(${UNIFORM_GROUP}) @binding(0)`);
        if (Math.ceil(r.size / 16) * 16 > UNIFORM_SLOT) throw new Error(`medgrad: ${where}: the uniform is ${r.size} bytes; at most ${UNIFORM_SLOT} are supported`);
        hasUniform = true;
        continue;
      }
      if (r.group !== STORAGE_GROUP) throw new Error(`medgrad: ${where}: storage buffers belong in @group(${STORAGE_GROUP})`);
      bindings.set(r.name, r.binding);
      entries.push({ binding: r.binding, visibility: 4 /* COMPUTE */, buffer: { type: r.access === 'read' ? 'read-only-storage' : 'storage' } });
    }
    entries.sort((x, y) => x.binding - y.binding);
    const layout = this.gpu.createBindGroupLayout({ entries, label: key });
    const pipeline = this.gpu.createComputePipeline({
      label: key,
      layout: this.gpu.createPipelineLayout({ bindGroupLayouts: hasUniform ? [layout, this.uniformLayout] : [layout] }),
      compute: { module, entryPoint: entry, constants: { ...constants } },
    });
    const values = { ...consts, ...constants };
    const k: Kernel = { key, pipeline, layout, bindings, hasUniform, consts: values, workgroupSize: workgroupSize(code, entry, ep.workgroupSize ?? [], values) };
    this.kernels.set(key, k);
    return k;
  }
}
