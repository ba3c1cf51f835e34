// Batched matmul on the adapter's subgroup matrices (tensor cores): f16 inputs, f32 accumulation; see gemm-tile.wgsl.
// @include subgroup-matrix
// @include matmul
// @include gemm-tile
