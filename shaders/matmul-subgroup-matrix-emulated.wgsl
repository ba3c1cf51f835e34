// Batched matmul on the subgroup-matrix tiling emulated on plain arrays (a test variant); see gemm-tile.wgsl.
// @include subgroup-matrix-emulated
// @include matmul
// @include gemm-tile
