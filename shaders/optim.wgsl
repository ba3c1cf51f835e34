// Fused optimiser updates, in place: one dispatch per parameter tensor instead of a chain of
// elementwise ops. Adam as Keras computes it, with Keras-style L2 folded into the gradient:
// g' = g + 2 l2 w; m = b1 m + (1 - b1) g'; v = b2 v + (1 - b2) g'^2; w -= lr_t m / (sqrt(v) + eps).

struct Params {
  n: u32,
  lr_t: f32,
  beta1: f32,
  beta2: f32,
  eps: f32,
  l2: f32,
}

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> w: array<f32>;
@group(0) @binding(2) var<storage, read> g: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

const WG: u32 = 256u;

@compute @workgroup_size(WG)
fn adam(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + nwg.x * WG) {
    let gi = g[i] + 2.0 * p.l2 * w[i];
    let mi = p.beta1 * m[i] + (1.0 - p.beta1) * gi;
    let vi = p.beta2 * v[i] + (1.0 - p.beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    w[i] = w[i] - p.lr_t * mi / (sqrt(vi) + p.eps);
  }
}
