// Batched matmul C[b] = A[b] x B[b] (M x K times K x N). Two kernels:
// - matmul_rows: each invocation keeps an 8 x 8 block of C in registers, reading B and writing C
//   as vec4 rows; needs B row-contiguous and N % 4 == 0. No workgroup memory: on CPU adapters
//   (lavapipe) the caches do the staging, and barriers cost more than they save.
// - matmul: the general kernel, 64 x 64 tiles staged in workgroup memory, any strides.
// A (and B in the general kernel) are read through strides, so transposed and
// batch-broadcast operands cost no copy. Storage `st` is f32, or f16 in the float16 form (loads
// widen to f32, accumulation in f32, one rounding on store).

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  a_batch: u32, a_row: u32, a_col: u32, a_off: u32,
  b_batch: u32, b_row: u32, b_col: u32, b_off: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<st>;
@group(0) @binding(2) var<storage, read> a: array<st>;
@group(0) @binding(3) var<storage, read> b: array<st>;
@group(0) @binding(4) var<storage, read_write> c4: array<vec4<st>>;
@group(0) @binding(5) var<storage, read> b4: array<vec4<st>>;

const RM: u32 = 8u;  // rows of C per invocation
const RV: u32 = 2u;  // vec4 columns of C per invocation

@compute @workgroup_size(8, 4)
fn matmul_rows(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n4 = p.N / 4u;
  let col = gid.x * RV;
  let row0 = gid.y * RM;
  if (col >= n4 || row0 >= p.M) { return; }
  let batch = gid.z;
  let abase = p.a_off + batch * p.a_batch;
  let bbase = (p.b_off + batch * p.b_batch) / 4u;
  var rows: array<u32, RM>;
  for (var i = 0u; i < RM; i++) { rows[i] = abase + min(row0 + i, p.M - 1u) * p.a_row; }
  var acc: array<array<vec4<f32>, RV>, RM>;
  for (var k = 0u; k < p.K; k++) {
    var bv: array<vec4<f32>, RV>;
    for (var j = 0u; j < RV; j++) { bv[j] = vec4<f32>(b4[bbase + k * (p.b_row / 4u) + min(col + j, n4 - 1u)]); }
    for (var i = 0u; i < RM; i++) {
      let av = vec4<f32>(f32(a[rows[i] + k * p.a_col]));
      for (var j = 0u; j < RV; j++) { acc[i][j] = fma(av, bv[j], acc[i][j]); }
    }
  }
  let cbase = batch * p.M * n4;
  for (var i = 0u; i < RM; i++) {
    if (row0 + i >= p.M) { break; }
    for (var j = 0u; j < RV; j++) {
      if (col + j < n4) { c4[cbase + (row0 + i) * n4 + col + j] = vec4<st>(acc[i][j]); }
    }
  }
}

const TM: u32 = 4u;
const TN: u32 = 4u;
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const TW: u32 = 16u; // the tiled kernel's workgroup is TW x TW invocations, each a TM x TN block
const STAGE: u32 = (BM * BK) / (TW * TW); // elements of each tile every invocation stages

var<workgroup> As: array<array<f32, BM>, BK>;
var<workgroup> Bs: array<array<f32, BN>, BK>;

// Bounds-checked reads of A[m, k] and B[k, n] through their strides (zero outside).
fn a_at(base: u32, m: u32, k: u32) -> f32 {
  if (m >= p.M || k >= p.K) { return 0.0; }
  return f32(a[base + m * p.a_row + k * p.a_col]);
}
fn b_at(base: u32, k: u32, n: u32) -> f32 {
  if (k >= p.K || n >= p.N) { return 0.0; }
  return f32(b[base + k * p.b_row + n * p.b_col]);
}

// The tensor-core tile's operands (gemm-tile.wgsl; matmul-subgroup-matrix*.wgsl).
fn sm_dims() -> vec3<u32> { return vec3<u32>(p.M, p.N, p.K); }
fn sm_a(batch: u32, m: u32, k: u32) -> f32 { return a_at(p.a_off + batch * p.a_batch, m, k); }
fn sm_b(batch: u32, k: u32, n: u32) -> f32 { return b_at(p.b_off + batch * p.b_batch, k, n); }
fn sm_plain_store() -> bool { return true; }
fn sm_put(at: u32, m: u32, v: f32) { c[at] = st(v); }

@compute @workgroup_size(TW, TW)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let batch = wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let t = lid.y * TW + lid.x;
  let abase = p.a_off + batch * p.a_batch;
  let bbase = p.b_off + batch * p.b_batch;

  var acc: array<array<f32, TN>, TM>;
  for (var i = 0u; i < TM; i++) { for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; } }

  for (var k0 = 0u; k0 < p.K; k0 = k0 + BK) {
    // Each invocation stages STAGE elements of A's BM x BK slice and STAGE of B's BK x BN.
    for (var e = 0u; e < STAGE; e++) {
      let idx = t + e * TW * TW;
      As[idx % BK][idx / BK] = a_at(abase, row0 + idx / BK, k0 + idx % BK);
      Bs[idx / BN][idx % BN] = b_at(bbase, k0 + idx / BN, col0 + idx % BN);
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      var ar: array<f32, TM>;
      var br: array<f32, TN>;
      for (var i = 0u; i < TM; i++) { ar[i] = As[k][lid.y * TM + i]; }
      for (var j = 0u; j < TN; j++) { br[j] = Bs[k][lid.x * TN + j]; }
      for (var i = 0u; i < TM; i++) {
        for (var j = 0u; j < TN; j++) { acc[i][j] = fma(ar[i], br[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  let cbase = batch * p.M * p.N;
  for (var i = 0u; i < TM; i++) {
    let gm = row0 + lid.y * TM + i;
    if (gm >= p.M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let gn = col0 + lid.x * TN + j;
      if (gn < p.N) { c[cbase + gm * p.N + gn] = st(acc[i][j]); }
    }
  }
}
