// The subgroup-matrix GEMM's fragments (gemm-tile.wgsl) on plain arrays: every "subgroup" is
// one invocation holding whole 4 x 4 fragments (SG_SIZE = 1; small, so lavapipe compiles it in
// seconds and small products cross many tiles), so the staging, the tile walk and the edge
// stores of every tensor-core kernel run and are checked against the float64 reference on
// adapters without subgroup matrices (the `subgroup-matrix-emulated` test variants; never a
// table rule's pick: they are slow). Included first by a kernel's family.
enable f16;

const SM_M: u32 = 4u;
const SM_N: u32 = 4u;
const SM_K: u32 = 4u;

alias SmLeft = array<f16, SM_M * SM_K>;   // row-major
alias SmRight = array<f16, SM_K * SM_N>;
alias SmAcc = array<f32, SM_M * SM_N>;

fn sm_load_a(offset: u32, stride: u32) -> SmLeft {
  var m: SmLeft;
  for (var r = 0u; r < SM_M; r++) { for (var q = 0u; q < SM_K; q++) { m[r * SM_K + q] = sa[offset + r * stride + q]; } }
  return m;
}
fn sm_load_b(offset: u32, stride: u32) -> SmRight {
  var m: SmRight;
  for (var r = 0u; r < SM_K; r++) { for (var q = 0u; q < SM_N; q++) { m[r * SM_N + q] = sb[offset + r * stride + q]; } }
  return m;
}
fn sm_mma(l: SmLeft, r: SmRight, acc: SmAcc) -> SmAcc {
  var o = acc;
  for (var i = 0u; i < SM_M; i++) {
    for (var j = 0u; j < SM_N; j++) {
      var s = o[i * SM_N + j];
      for (var k = 0u; k < SM_K; k++) { s = fma(f32(l[i * SM_K + k]), f32(r[k * SM_N + j]), s); }
      o[i * SM_N + j] = s;
    }
  }
  return o;
}
fn sm_store_c(offset: u32, stride: u32, m: SmAcc) {
  for (var r = 0u; r < SM_M; r++) { for (var q = 0u; q < SM_N; q++) { c[offset + r * stride + q] = m[r * SM_N + q]; } }
}
fn sm_store_scratch(offset: u32, m: SmAcc) {
  for (var i = 0u; i < SM_M * SM_N; i++) { cs[offset + i] = m[i]; }
}

@compute @workgroup_size(WG)
fn gemm_subgroup_matrix(@builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  sm_gemm(t / SG_SIZE, t, wid);
}
