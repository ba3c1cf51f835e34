// conv2d's forward (and input gradient) as implicit GEMM on the subgroup-matrix tiling emulated on plain arrays (a test variant); see gemm-tile.wgsl.
// @include subgroup-matrix-emulated
// @include conv2d
// @include gemm-tile
