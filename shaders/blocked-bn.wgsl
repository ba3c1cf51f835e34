// Training-mode batch norm (+ ReLU) forward in the channel-blocked layout (blocked.wgsl):
// x [N, Cb, H, W] as vec4s over 4 channels, so every pass handles 4 channels per load and
// each block's coefficients are one vec4.
// bnb_partial:  workgroup (k, cb) sums chunk k (of p.chunks) of block cb's N H W vec4s, shifted
//               by the block's first vec4 (as batchnorm.wgsl: no cancellation for large means)
// bnb_combine:  per block: mean, invstd (biased variance) and the running statistics update
//               (unbiased variance), for the lanes of real channels
// bnb_apply:    y = (x - mean) invstd gamma + beta, then (RELU) ReLU; padding lanes stay 0

struct Params {
  N: u32, Cb: u32, HW: u32, C: u32,
  eps: f32, momentum: f32, count: f32, chunks: u32,
}

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> part: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> part_in: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> mean4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> invstd4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(8) var<storage, read> m_in: array<vec4<f32>>;
@group(0) @binding(9) var<storage, read> s_in: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read> gamma: array<f32>;
@group(0) @binding(11) var<storage, read> beta: array<f32>;
@group(0) @binding(12) var<storage, read_write> y4: array<vec4<f32>>;

override RELU: u32 = 1u;
const WG: u32 = 256u;
var<workgroup> red: array<vec4<f32>, WG>;
var<workgroup> red2: array<vec4<f32>, WG>;

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

// Chunk k of a block's N H W vec4s: [lo, hi) in (sample, pixel) order.
fn chunk(k: u32) -> vec2<u32> {
  let total = p.N * p.HW;
  let per = (total + p.chunks - 1u) / p.chunks;
  return vec2<u32>(min(k * per, total), min((k + 1u) * per, total));
}

// The part of chunk r in sample n's plane of block cb: vec4 indices [a, b) (no per-element division).
fn span(n: u32, cb: u32, r: vec2<u32>) -> vec2<u32> {
  let base = (n * p.Cb + cb) * p.HW;
  return vec2<u32>(base + max(r.x, n * p.HW) - n * p.HW, base + min(r.y, (n + 1u) * p.HW) - n * p.HW);
}

@compute @workgroup_size(WG)
fn bnb_partial(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let cb = wg.y;
  let r = chunk(wg.x);
  let shift = x4[cb * p.HW];
  var s = vec4<f32>(0.0);
  var q = vec4<f32>(0.0);
  for (var n = r.x / p.HW; n * p.HW < r.y; n++) {
    let sp = span(n, cb, r);
    for (var i = sp.x + l.x; i < sp.y; i += WG) { let d = x4[i] - shift; s += d; q += d * d; }
  }
  red[l.x] = s;
  red2[l.x] = q;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k = k >> 1u) {
    if (l.x < k) { red[l.x] += red[l.x + k]; red2[l.x] += red2[l.x + k]; }
    workgroupBarrier();
  }
  if (l.x == 0u) {
    part[(cb * p.chunks + wg.x) * 2u] = red[0];
    part[(cb * p.chunks + wg.x) * 2u + 1u] = red2[0];
  }
}

@compute @workgroup_size(64)
fn bnb_combine(@builtin(global_invocation_id) gid: vec3<u32>) {
  let cb = gid.x;
  if (cb >= p.Cb) { return; }
  var s = vec4<f32>(0.0);
  var q = vec4<f32>(0.0);
  for (var k = 0u; k < p.chunks; k++) {
    s += part_in[(cb * p.chunks + k) * 2u];
    q += part_in[(cb * p.chunks + k) * 2u + 1u];
  }
  let ms = s / p.count;
  let var_b = max(q / p.count - ms * ms, vec4<f32>(0.0));
  let m = x4[cb * p.HW] + ms;
  mean4[cb] = m;
  invstd4[cb] = inverseSqrt(var_b + p.eps);
  let unbiased = var_b * p.count / max(p.count - 1.0, 1.0);
  for (var j = 0u; j < 4u; j++) {
    let c = cb * 4u + j;
    if (c < p.C) {
      run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * m[j];
      run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased[j];
    }
  }
}

// Workgroup (k, cb) normalises chunk k of block cb (the block's coefficients are workgroup-uniform).
@compute @workgroup_size(WG)
fn bnb_apply(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let cb = wg.y;
  var g = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let c = cb * 4u + j;
    if (c < p.C) { g[j] = gamma[c]; b[j] = beta[c]; }
  }
  let scale = s_in[cb] * g;
  let shift = b - m_in[cb] * scale;
  let r = chunk(wg.x);
  for (var n = r.x / p.HW; n * p.HW < r.y; n++) {
    let sp = span(n, cb, r);
    for (var i = sp.x + l.x; i < sp.y; i += WG) {
      var v = fma(x4[i], scale, shift);
      // As relu: NaN kept.
      if (RELU == 1u) { v = select(max(v, vec4<f32>(0.0)), v, vec4<bool>(is_nan(v.x), is_nan(v.y), is_nan(v.z), is_nan(v.w))); }
      y4[i] = v;
    }
  }
}
