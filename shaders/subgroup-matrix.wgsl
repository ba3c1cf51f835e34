// The tensor-core fragments of the subgroup-matrix GEMM (gemm-tile.wgsl): WGSL subgroup
// matrices, f16 inputs and f32 accumulation. Needs the features chromium-experimental-subgroup-matrix,
// subgroups and shader-f16. The fragment shape SM_M x SM_N x SM_K must be one of the adapter's
// configurations and WGSL wants it as constants, not overrides: the engine generates those three
// lines from the configuration it picks (engine/ops/matmul-subgroup-matrix.ts). Included first
// by a kernel's family (its `enable` lines must lead the module).
enable f16;
enable subgroups;
enable chromium_experimental_subgroup_matrix;
// The calls below are uniform in each subgroup by construction (see sm_gemm); the analysis
// cannot always prove it through the subgroup id.
diagnostic(off, chromium.subgroup_matrix_uniformity);

// @generated config

alias SmLeft = subgroup_matrix_left<f16, SM_K, SM_M>;     // M rows x K columns
alias SmRight = subgroup_matrix_right<f16, SM_N, SM_K>;   // K rows x N columns
alias SmAcc = subgroup_matrix_result<f32, SM_N, SM_M>;    // M rows x N columns

fn sm_load_a(offset: u32, stride: u32) -> SmLeft { return subgroupMatrixLoad<SmLeft, row_major>(&sa, offset, stride); }
fn sm_load_b(offset: u32, stride: u32) -> SmRight { return subgroupMatrixLoad<SmRight, row_major>(&sb, offset, stride); }
fn sm_mma(l: SmLeft, r: SmRight, acc: SmAcc) -> SmAcc { return subgroupMatrixMultiplyAccumulate(l, r, acc); }
fn sm_store_c(offset: u32, stride: u32, m: SmAcc) { subgroupMatrixStore<row_major>(&c, offset, m, stride); }
fn sm_store_scratch(offset: u32, m: SmAcc) { subgroupMatrixStore<row_major>(&cs, offset, m, SM_N); }

@compute @workgroup_size(WG)
fn gemm_subgroup_matrix(@builtin(subgroup_id) sg: u32, @builtin(local_invocation_index) t: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  sm_gemm(sg, t, wid);
}
