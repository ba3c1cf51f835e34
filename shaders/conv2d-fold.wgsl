// An inference-mode batch norm after a convolution, as the convolution's epilogue
// (engine/ops/conv-fused.ts). With s = gamma / sqrt(var + eps) per output channel,
// bn(conv(x, w) + b) = s conv(x, w) + (b - mean) s + beta = conv(x, w s) + b', the folded layer.
// fold_bn:     the per-channel affine [2, C]: shifts b' = (b - mean) s + beta, then scales s
//              (the conv kernels' EPI_SCALE epilogue reads it), so no weight is rewritten
// mask_scale:  the backward's output gradient: dy masked by the ReLU (out > 0), times s per
//              channel (the input gradient is then the plain convolution's, with w); the masked,
//              unscaled gradient too when asked (a residual's gradient)

struct Params { C: u32, HW: u32, flags: u32, eps: f32, planes: u32 }

const HAS_BIAS: u32 = 1u;
const RELU: u32 = 2u;
const WRITE_MASKED: u32 = 4u;

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read> mean: array<f32>;
@group(0) @binding(5) var<storage, read> variance: array<f32>;
@group(0) @binding(6) var<storage, read_write> affine_out: array<f32>;
@group(0) @binding(7) var<storage, read> dy: array<f32>;
@group(0) @binding(8) var<storage, read> out: array<f32>;
@group(0) @binding(9) var<storage, read> affine: array<f32>;
@group(0) @binding(10) var<storage, read_write> masked: array<f32>;
@group(0) @binding(11) var<storage, read_write> scaled: array<f32>;

// gid.x: output channel.
@compute @workgroup_size(64)
fn fold_bn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let co = gid.x;
  if (co >= p.C) { return; }
  let s = gamma[co] / sqrt(variance[co] + p.eps);
  affine_out[co] = (select(0.0, b[co], (p.flags & HAS_BIAS) != 0u) - mean[co]) * s + beta[co];
  affine_out[p.C + co] = s;
}

// Planes n C + c from gid.y (striding by the grid's height); the workgroups along x stride over
// a plane's H W values.
@compute @workgroup_size(64)
fn mask_scale(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nw: vec3<u32>) {
  for (var plane = gid.y; plane < p.planes; plane += nw.y) {
    let s = affine[p.C + plane % p.C];
    let base = plane * p.HW;
    for (var i = gid.x; i < p.HW; i += nw.x * 64u) {
      var g = dy[base + i];
      if ((p.flags & RELU) != 0u && !(out[base + i] > 0.0)) { g = 0.0; }
      if ((p.flags & WRITE_MASKED) != 0u) { masked[base + i] = g; }
      scaled[base + i] = g * s;
    }
  }
}
