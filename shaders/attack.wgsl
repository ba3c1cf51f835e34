// The attack step fused into one pass: x' = clamp(x + s sign(g), lo, hi), with s a scalar or one
// step per sample (APGD), and lo/hi the eps-ball intersected with [0, 1]. The same operations in
// the same order as sign, mul, add, maximum, minimum, so the result is bitwise the unfused one.

struct Params {
  n: u32,
  // Elements per sample: element i takes step[i / per_sample] (n for one scalar step).
  per_sample: u32,
}

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> g: array<f32>;
@group(0) @binding(4) var<storage, read> step: array<f32>;
@group(0) @binding(5) var<storage, read> lo: array<f32>;
@group(0) @binding(6) var<storage, read> hi: array<f32>;

const WG: u32 = 256u;

// NaN tested on the bits, as in elementwise.wgsl (WGSL's min and max may drop NaN).
fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn min_nan(a: f32, b: f32) -> f32 { return select(select(min(a, b), b, is_nan(b)), a, is_nan(a)); }
fn max_nan(a: f32, b: f32) -> f32 { return select(select(max(a, b), b, is_nan(b)), a, is_nan(a)); }

@compute @workgroup_size(WG)
fn sign_step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + nwg.x * WG) {
    let moved = x[i] + sign(g[i]) * step[i / p.per_sample];
    out[i] = min_nan(max_nan(moved, lo[i]), hi[i]);
  }
}
