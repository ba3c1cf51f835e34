// The tensor-core GEMM's tiling, C[batch] = A[batch] x B[batch] (M x K times K x N), shared by
// every subgroup-matrix kernel. A kernel's family is three includes:
// - its fragments: subgroup-matrix.wgsl (WGSL subgroup matrices, tensor cores) or
//   subgroup-matrix-emulated.wgsl (the same calls on plain arrays, so the staging, the tile walk
//   and the edge handling run and are tested on adapters without the feature); they declare
//   SM_M, SM_N, SM_K, the fragment types and functions, and the entry point `gemm_subgroup_matrix`;
// - its operands: an op's own shader (matmul.wgsl, conv2d.wgsl), which declares the output
//   binding `c` and the functions sm_dims() (M, N, K), sm_a(batch, m, k), sm_b(batch, k, n)
//   (zero outside), sm_plain_store() (whether C's elements are the sums themselves) and
//   sm_put(at, m, v) (stores an element of C, with the op's epilogue);
// - this body.
//
// A workgroup of SG_ROWS x SG_COLS subgroups computes a TILE_M x TILE_N tile of C; each subgroup
// an FM x FN block of SM_M x SM_N fragments, accumulated in f32. Each step stages a TILE_K-deep
// slice of A and B (read as f32 through the op's sm_a / sm_b) into workgroup memory as f16. A
// tile wholly inside C with 16-byte rows and plain stores is stored straight from the
// fragments; any other goes through workgroup memory, one fragment per subgroup at a time, and
// sm_put writes the elements inside C.

// Fragments of C per subgroup, FM down and FN across, and k-fragments per staged slice: one
// variant per tile shape (overrides; the private arrays are sized for the largest, MAX_F x MAX_F).
const MAX_F: u32 = 4u;
override FM: u32 = 4u;
override FN: u32 = 4u;
override KF: u32 = 1u;
override TILE_K: u32 = KF * SM_K;
// Staged rows are padded by 8 f16 (16 bytes): subgroup-matrix rows stay 16-byte aligned and
// consecutive rows start in different banks.
const PAD: u32 = 8u;
override SG_ROWS: u32 = 2u;
override SG_COLS: u32 = 2u;
/** The adapter's largest subgroup: the launcher sets it (the workgroup's x size must be a multiple). */
override SG_SIZE: u32 = 32u;
override SUBGROUPS: u32 = SG_ROWS * SG_COLS;
override WG: u32 = SUBGROUPS * SG_SIZE;
override TILE_M: u32 = SG_ROWS * FM * SM_M;
override TILE_N: u32 = SG_COLS * FN * SM_N;
override A_STRIDE: u32 = TILE_K + PAD;
override B_STRIDE: u32 = TILE_N + PAD;
override A_WORDS: u32 = TILE_M * A_STRIDE;
override B_WORDS: u32 = TILE_K * B_STRIDE;
override C_WORDS: u32 = SUBGROUPS * SM_M * SM_N;

// f32 -> f16 as IEEE rounding does it (WGSL leaves f16(x) undefined past f16's range): values
// that round past 65504 become +-inf, NaN stays NaN, so overflow shows instead of hiding.
fn to_f16(x: f32) -> f16 {
  let inf = bitcast<vec2<f16>>(select(0x7c00u, 0xfc00u, x < 0.0)).x; // +-inf's bits in the low half
  return select(f16(x), inf, abs(x) >= 65520.0);
}

var<workgroup> sa: array<f16, A_WORDS>; // A slice, row-major: TILE_M rows of TILE_K
var<workgroup> sb: array<f16, B_WORDS>; // B slice, row-major: TILE_K rows of TILE_N
var<workgroup> cs: array<f32, C_WORDS>; // one result fragment per subgroup, for edge tiles

// `sg` is this invocation's subgroup in the workgroup, `t` its index in the workgroup. Subgroups
// past SUBGROUPS (an adapter running subgroups smaller than its maximum) only help staging. All
// subgroup-matrix calls sit under conditions that are uniform in the subgroup (sg, the workgroup
// id, uniforms); all barriers under conditions uniform in the workgroup.
fn sm_gemm(sg: u32, t: u32, wid: vec3<u32>) {
  let batch = wid.z;
  let row0 = wid.y * TILE_M;
  let col0 = wid.x * TILE_N;
  let dims = sm_dims();
  let M = dims.x;
  let N = dims.y;
  let computes = sg < SUBGROUPS;
  let sr = (sg / SG_COLS) * FM * SM_M; // this subgroup's block within the tile
  let sc = (sg % SG_COLS) * FN * SM_N;

  var acc: array<SmAcc, MAX_F * MAX_F>; // zero-initialised; fragment (i, j) at i * FN + j
  for (var k0 = 0u; k0 < dims.z; k0 += TILE_K) {
    // Consecutive invocations stage consecutive k of A and consecutive n of B.
    for (var i = t; i < TILE_M * TILE_K; i += WG) {
      let m = i / TILE_K;
      let k = i % TILE_K;
      sa[m * A_STRIDE + k] = to_f16(sm_a(batch, row0 + m, k0 + k));
    }
    for (var i = t; i < TILE_K * TILE_N; i += WG) {
      let k = i / TILE_N;
      let n = i % TILE_N;
      sb[k * B_STRIDE + n] = to_f16(sm_b(batch, k0 + k, col0 + n));
    }
    workgroupBarrier();
    if (computes) {
      for (var kf = 0u; kf < KF; kf++) {
        var bf: array<SmRight, MAX_F>;
        for (var j = 0u; j < FN; j++) { bf[j] = sm_load_b(kf * SM_K * B_STRIDE + sc + j * SM_N, B_STRIDE); }
        for (var i = 0u; i < FM; i++) {
          let af = sm_load_a((sr + i * SM_M) * A_STRIDE + kf * SM_K, A_STRIDE);
          for (var j = 0u; j < FN; j++) { acc[i * FN + j] = sm_mma(af, bf[j], acc[i * FN + j]); }
        }
      }
    }
    workgroupBarrier();
  }

  let cbase = batch * M * N;
  // Uniform in the workgroup: the tile lies inside C, C's rows are 16-byte aligned, no epilogue.
  let inside = row0 + TILE_M <= M && col0 + TILE_N <= N && N % 4u == 0u && sm_plain_store();
  if (inside) {
    if (computes) {
      for (var i = 0u; i < FM; i++) {
        for (var j = 0u; j < FN; j++) {
          sm_store_c(cbase + (row0 + sr + i * SM_M) * N + col0 + sc + j * SM_N, N, acc[i * FN + j]);
        }
      }
    }
  } else {
    for (var f = 0u; f < FM * FN; f++) {
      if (computes) { sm_store_scratch(sg * SM_M * SM_N, acc[f]); }
      workgroupBarrier();
      for (var e = t; e < SUBGROUPS * SM_M * SM_N; e += WG) {
        let s = e / (SM_M * SM_N);
        let gm = row0 + (s / SG_COLS) * FM * SM_M + (f / FN) * SM_M + (e / SM_N) % SM_M;
        let gn = col0 + (s % SG_COLS) * FN * SM_N + (f % FN) * SM_N + e % SM_N;
        if (gm < M && gn < N) { sm_put(cbase + gm * N + gn, gm, cs[e]); }
      }
      workgroupBarrier();
    }
  }
}
