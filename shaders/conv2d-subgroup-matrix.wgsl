// conv2d's forward (and input gradient) as implicit GEMM on the adapter's subgroup matrices (tensor cores): f16 inputs, f32 accumulation; see gemm-tile.wgsl.
// @include subgroup-matrix
// @include conv2d
// @include gemm-tile
