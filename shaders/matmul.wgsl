// Batched matmul C[b] = A[b] x B[b] (M x K times K x N), register-tiled: a workgroup of
// 16x16 invocations computes a 64x64 tile of C, each invocation a 4x4 block held in registers,
// stepping through K in slices of 16 staged in workgroup memory. A and B are read through
// strides, so transposed and batch-broadcast operands cost no copy.

struct Params {
  M: u32,
  N: u32,
  K: u32,
  batch: u32,
  a_batch: u32, a_row: u32, a_col: u32, a_off: u32,
  b_batch: u32, b_row: u32, b_col: u32, b_off: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> c: array<f32>;
@group(0) @binding(2) var<storage, read> a: array<f32>;
@group(0) @binding(3) var<storage, read> b: array<f32>;

const TM: u32 = 4u;
const TN: u32 = 4u;
const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> As: array<array<f32, BM>, BK>;
var<workgroup> Bs: array<array<f32, BN>, BK>;

@compute @workgroup_size(16, 16)
fn matmul(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let batch = wid.z;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let t = lid.y * 16u + lid.x;
  let abase = p.a_off + batch * p.a_batch;
  let bbase = p.b_off + batch * p.b_batch;

  var acc: array<array<f32, TN>, TM>;
  for (var i = 0u; i < TM; i++) { for (var j = 0u; j < TN; j++) { acc[i][j] = 0.0; } }

  for (var k0 = 0u; k0 < p.K; k0 = k0 + BK) {
    // Each of the 256 invocations stages 4 elements of A's 64x16 slice and 4 of B's 16x64.
    for (var e = 0u; e < 4u; e++) {
      let idx = t + e * 256u;
      let am = idx / BK;
      let ak = idx % BK;
      let gm = row0 + am;
      let gk = k0 + ak;
      var av = 0.0;
      if (gm < p.M && gk < p.K) { av = a[abase + gm * p.a_row + gk * p.a_col]; }
      As[ak][am] = av;
      let bk = idx / BN;
      let bn = idx % BN;
      let gk2 = k0 + bk;
      let gn = col0 + bn;
      var bv = 0.0;
      if (gk2 < p.K && gn < p.N) { bv = b[bbase + gk2 * p.b_row + gn * p.b_col]; }
      Bs[bk][bn] = bv;
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
      if (gn < p.N) { c[cbase + gm * p.N + gn] = acc[i][j]; }
    }
  }
}
