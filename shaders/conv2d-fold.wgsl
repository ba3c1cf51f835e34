// Folds an inference-mode batch norm into the convolution before it (engine/ops/conv-fused.ts):
// with s = gamma / sqrt(var + eps) per output channel, w' = w s and b' = (b - mean) s + beta, so
// that bn(conv(x, w) + b) = conv(x, w') + b'. One pass over the weights.

struct Params { Cout: u32, K: u32, has_bias: u32, eps: f32 }

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> gamma: array<f32>;
@group(0) @binding(4) var<storage, read> beta: array<f32>;
@group(0) @binding(5) var<storage, read> mean: array<f32>;
@group(0) @binding(6) var<storage, read> variance: array<f32>;
@group(0) @binding(7) var<storage, read_write> wf: array<f32>;
@group(0) @binding(8) var<storage, read_write> bf: array<f32>;

// gid.x: weight k < K = Cin KH KW of output channel gid.y; k = 0 also writes the channel's bias.
@compute @workgroup_size(64)
fn fold_bn(@builtin(global_invocation_id) gid: vec3<u32>) {
  let k = gid.x;
  let co = gid.y;
  if (k >= p.K || co >= p.Cout) { return; }
  let s = gamma[co] / sqrt(variance[co] + p.eps);
  wf[co * p.K + k] = w[co * p.K + k] * s;
  if (k == 0u) { bf[co] = (select(0.0, b[co], p.has_bias != 0u) - mean[co]) * s + beta[co]; }
}
