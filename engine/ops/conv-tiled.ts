// The GPU-shaped variants of conv2d.forward: implicit GEMM with consecutive invocations over
// consecutive output pixels and input and weight tiles staged in workgroup memory
// (conv2d-tiled.wgsl), in several tile shapes for the autotuner, and the same GEMM on tensor
// cores (conv2d-subgroup-matrix.wgsl, the tiling of gemm-tile.wgsl). conv.ts lists them after
// the direct (lavapipe-tuned) variants, launches them with tiledConvGrid, and asks
// preferTiledConv first in its table rule: a GPU gets them without a tune cache, lavapipe
// keeps the direct kernel.
import type { Kernel } from '../kernels/compile.js';
import { isHardwareGpu, type Capabilities, type Variant } from '../kernels/variants.js';
import { CONV_SM_FAMILY, isSubgroupMatrix, pickTile, subgroupMatrixTile, subgroupMatrixVariants } from './matmul-subgroup-matrix.js';

export const TILED_CONV_FAMILY = 'conv2d-tiled';

interface ConvShape { N: number; Cout: number; OH: number; OW: number; Cin: number; KH: number; KW: number }

/**
 * Tile shapes as [WX, WY, KT]: a (4 WY channels) x (4 WX pixels) output tile per workgroup,
 * KT-deep slices of the reduction. The staging loops need WX WY to be a multiple of KT and of
 * 4 WX (each invocation stages a fixed pixel and a fixed k).
 */
const TILES: ReadonlyArray<readonly [number, number, number]> = [[16, 16, 16], [32, 8, 16], [16, 8, 16], [16, 4, 16], [8, 8, 16]];
for (const [wx, wy, kt] of TILES) {
  if ((wx * wy) % kt !== 0 || wy % 4 !== 0 || wx * wy > 256) throw new Error(`medgrad: conv2d tile [${wx}, ${wy}, ${kt}] breaks conv2d-tiled.wgsl's staging`);
}

/** WebGPU's guaranteed workgroups per grid dimension: larger grids stay on the direct kernel. */
const GRID_MAX = 65535;

const grid = (g: ConvShape, wx: number, wy: number): [number, number] => [Math.ceil((g.N * g.OH * g.OW) / (4 * wx)), Math.ceil(g.Cout / (4 * wy))];

/** The tiled variants, then the tensor-core ones (images along the grid's z). */
export function tiledConvVariants<S extends ConvShape>(): Array<Variant<S>> {
  return [...TILES.map(([wx, wy, kt]) => ({
    name: `tiled-c${4 * wy}p${4 * wx}`, family: TILED_CONV_FAMILY, entry: 'conv_fwd_tiled', constants: { WX: wx, WY: wy, KT: kt },
    serves: (g: S) => Math.max(...grid(g, wx, wy)) <= GRID_MAX,
  })), ...subgroupMatrixVariants<S>(CONV_SM_FAMILY, (g) => g.N <= GRID_MAX)];
}

/** Workgroups of a tiled or tensor-core variant for shape g (from the compiled kernel's own tile constants). */
export function tiledConvGrid(g: ConvShape, k: Kernel, v: Variant<unknown>): [number, number, number] {
  if (isSubgroupMatrix(v)) {
    const [perX, perY] = subgroupMatrixTile(k);
    return [Math.ceil((g.OH * g.OW) / perX), Math.ceil(g.Cout / perY), g.N];
  }
  const [wx, wy] = k.workgroupSize;
  return [Math.ceil((g.N * g.OH * g.OW) / (k.consts.GN! * wx)), Math.ceil(g.Cout / (k.consts.GM! * wy)), 1];
}

/**
 * Whether a layer is worth tensor cores (where offered: 'medium' float32 matmul precision): its
 * implicit GEMM (M = Cout, N = OH OW per image, K = Cin KH KW) is at least 64 x 256 x 256; the
 * large tile for 128 channels and 2048 x 2048 outputs in all. Guesses until a GPU measures them.
 */
const wantsTensorCores = (g: ConvShape): boolean => g.Cout >= 64 && g.OH * g.OW >= 256 && g.Cin * g.KH * g.KW >= 256;

/**
 * The GPU's table rule: a tile as tall as the layer's channels (16, 32 or 64), so few-channel
 * layers (an RGB input's gradient) do not idle most of it; undefined on software adapters.
 * Unmeasured on a GPU so far: `medgrad tune` replaces it with a measurement per shape bucket.
 */
export function preferTiledConv<S extends ConvShape>(g: S, c: ReadonlyArray<Variant<S>>, caps: Capabilities): Variant<S> | undefined {
  if (!isHardwareGpu(caps)) return undefined;
  const sm = wantsTensorCores(g) ? pickTile(c, g.Cout >= 128 && g.Cout * g.OH * g.OW * g.N >= 2048 * 2048) : undefined;
  if (sm) return sm;
  const want = g.Cout <= 16 ? 'tiled-c16p64' : g.Cout <= 32 ? 'tiled-c32p128' : 'tiled-c64p64';
  return c.find((v) => v.name === want);
}

export const TILED_WGRAD_FAMILY = 'conv2d-wgrad-tiled';

/**
 * Weight-gradient tiles as [WX, WY, PT]: (4 WY channels) x (4 WX columns of K) per workgroup,
 * PT pixels staged per step; each invocation stages a fixed pixel, so WX WY is a multiple of PT.
 */
const WGRAD_TILES: ReadonlyArray<readonly [number, number, number]> = [[16, 16, 16], [16, 8, 16], [16, 4, 16], [8, 8, 16]];
for (const [wx, wy, pt] of WGRAD_TILES) {
  if ((wx * wy) % pt !== 0 || wx * wy > 256) throw new Error(`medgrad: conv2d weight-gradient tile [${wx}, ${wy}, ${pt}] breaks conv2d-wgrad-tiled.wgsl's staging`);
}

interface WeightGradShape { Cout: number; Cin: number; KH: number; KW: number }

const wgradGrid = (g: WeightGradShape, tm: number, tn: number): [number, number] => [Math.ceil((g.Cin * g.KH * g.KW) / tn), Math.ceil(g.Cout / tm)];

export function tiledWeightGradVariants<S extends WeightGradShape>(): Array<Variant<S>> {
  return WGRAD_TILES.map(([wx, wy, pt]) => ({
    name: `tiled-c${4 * wy}k${4 * wx}`, family: TILED_WGRAD_FAMILY, entry: 'conv_bwd_weight_tiled', constants: { WX: wx, WY: wy, PT: pt },
    serves: (g: S) => Math.max(...wgradGrid(g, 4 * wy, 4 * wx)) <= GRID_MAX,
  }));
}

/** Workgroups along K and the output channels of a weight-gradient kernel (tiled or direct). */
export function weightGradBlocks(g: WeightGradShape, k: Kernel, family: string): [number, number] {
  const [wx, wy] = k.workgroupSize;
  return family === TILED_WGRAD_FAMILY ? wgradGrid(g, k.consts.GM! * wy, k.consts.GN! * wx)
    : [Math.ceil(g.Cin * g.KH * g.KW / k.consts.C! / wx), Math.ceil(g.Cout / k.consts.RW! / wy)];
}

/** The GPU's table rule for the weight gradient: a tile as tall as the layer's channels; undefined on software adapters. */
export function preferTiledWeightGrad<S extends WeightGradShape>(g: S, c: ReadonlyArray<Variant<S>>, caps: Capabilities): Variant<S> | undefined {
  if (!isHardwareGpu(caps)) return undefined;
  const want = g.Cout <= 16 ? 'tiled-c16k64' : g.Cout <= 32 ? 'tiled-c32k64' : 'tiled-c64k64';
  return c.find((v) => v.name === want);
}
