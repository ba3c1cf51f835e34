// Batched matmul shaped for GPUs (the `coalesced-*` variants of matmul; Params, bindings and the
// strided, bounds-checked reads a_at / b_at come from matmul.wgsl, included below).
// A workgroup of WX x WY invocations computes a (WY * GM) x (WX * GN) tile of C. Invocation
// (lx, ly) owns rows ly + i WY and columns lx + j WX of the tile, so consecutive invocations
// write consecutive columns of C (coalesced stores) and read consecutive words of the B tile
// (no bank conflicts). Each step stages a KT-deep slice of A and of B in workgroup memory:
// consecutive invocations load consecutive k of A and consecutive n of B (coalesced for
// row-major operands). The tile shape is set by override constants (one variant per shape,
// for the autotuner); the launcher checks the divisibility the staging loops rely on.

// @include matmul

const GM: u32 = 4u; // rows of C per invocation
const GN: u32 = 4u; // columns of C per invocation
override WX: u32 = 16u;
override WY: u32 = 16u;
override KT: u32 = 16u;
override TILE_M: u32 = WY * GM;
override TILE_N: u32 = WX * GN;
// A's slice is kept k-major with one word of padding per k, so the staging writes of
// consecutive k land in different banks.
override A_STRIDE: u32 = TILE_M + 1u;
override A_WORDS: u32 = KT * A_STRIDE;
override B_WORDS: u32 = KT * TILE_N;

var<workgroup> at: array<f32, A_WORDS>;
var<workgroup> bt: array<f32, B_WORDS>;

@compute @workgroup_size(WX, WY)
fn matmul_coalesced(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let batch = wid.z;
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let threads = WX * WY;
  let t = lid.y * WX + lid.x;
  let abase = p.a_off + batch * p.a_batch;
  let bbase = p.b_off + batch * p.b_batch;
  // Staging roles, fixed for the whole loop: A by (k = t % KT, rows t / KT + e threads / KT),
  // B by (column t % TILE_N, k t / TILE_N + e threads / TILE_N).
  let a_k = t % KT;
  let a_m = t / KT;
  let a_step = threads / KT;
  let b_n = t % TILE_N;
  let b_k = t / TILE_N;
  let b_step = threads / TILE_N;

  var acc: array<array<f32, GN>, GM>;
  for (var i = 0u; i < GM; i++) { for (var j = 0u; j < GN; j++) { acc[i][j] = 0.0; } }

  for (var k0 = 0u; k0 < p.K; k0 = k0 + KT) {
    for (var m = a_m; m < TILE_M; m = m + a_step) { at[a_k * A_STRIDE + m] = a_at(abase, row0 + m, k0 + a_k); }
    for (var k = b_k; k < KT; k = k + b_step) { bt[k * TILE_N + b_n] = b_at(bbase, k0 + k, col0 + b_n); }
    workgroupBarrier();
    for (var k = 0u; k < KT; k++) {
      var ar: array<f32, GM>;
      var br: array<f32, GN>;
      for (var i = 0u; i < GM; i++) { ar[i] = at[k * A_STRIDE + lid.y + i * WY]; }
      for (var j = 0u; j < GN; j++) { br[j] = bt[k * TILE_N + lid.x + j * WX]; }
      for (var i = 0u; i < GM; i++) {
        for (var j = 0u; j < GN; j++) { acc[i][j] = fma(ar[i], br[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  let cbase = batch * p.M * p.N;
  for (var i = 0u; i < GM; i++) {
    let gm = row0 + lid.y + i * WY;
    if (gm >= p.M) { break; }
    for (var j = 0u; j < GN; j++) {
      let gn = col0 + lid.x + j * WX;
      if (gn < p.N) { c[cbase + gm * p.N + gn] = acc[i][j]; }
    }
  }
}
