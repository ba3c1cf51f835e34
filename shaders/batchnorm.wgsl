// Per-channel statistics and normalisation over NCHW tensors, one workgroup per channel for
// the reductions (each walks its channel's N planes of H*W values).
// bn_stats:      mean, 1/sqrt(var + eps) (one pass on shifted data) and, in training, the
//                running statistics update: r = (1 - momentum) r + momentum * batch, with the
//                unbiased variance going into the running variance.
// bn_apply:      y = (x - mean) * invstd * gamma + beta, then (RESIDUAL) + res, then (RELU) ReLU.
// channel_sums:  s1 = sum(dy); with OP = WITH_XHAT also s2 = sum(dy * (x - mean) * invstd).
//                With RELU, dy is first masked by the forward output (yo > 0) and the masked
//                gradient written to gm: the ReLU's (and the residual's) gradient in the same pass.
// bn_bwd:        dx = gamma * invstd * (dy - s1 / M - xhat * s2 / M)   (training, OP = TRAINING)
//                dx = gamma * invstd * dy                              (inference, OP = INFERENCE)
// Activations (x, y, dy, res, yo, gm) are `st`: f32, or f16 in the float16 form (loads widen to
// f32, stores round once); statistics, parameters and sums stay f32.

struct Params {
  N: u32, C: u32, HW: u32, training: u32,
  eps: f32, momentum: f32, count: f32, chunks: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<st>;
@group(0) @binding(2) var<storage, read_write> mean: array<f32>;
@group(0) @binding(3) var<storage, read_write> invstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(6) var<storage, read> gamma: array<f32>;
@group(0) @binding(7) var<storage, read> beta: array<f32>;
@group(0) @binding(8) var<storage, read_write> y: array<st>;
@group(0) @binding(9) var<storage, read> dy: array<st>;
@group(0) @binding(10) var<storage, read_write> s1: array<f32>;
@group(0) @binding(11) var<storage, read_write> s2: array<f32>;
@group(0) @binding(12) var<storage, read> m_in: array<f32>;
@group(0) @binding(13) var<storage, read> s_in: array<f32>;
@group(0) @binding(14) var<storage, read> res: array<st>;
@group(0) @binding(15) var<storage, read> yo: array<st>;
@group(0) @binding(16) var<storage, read_write> gm: array<st>;
// vec4 views for the elementwise passes (planes whose H*W is a multiple of 4).
@group(0) @binding(17) var<storage, read> x4: array<vec4<st>>;
@group(0) @binding(18) var<storage, read_write> y4: array<vec4<st>>;
@group(0) @binding(19) var<storage, read> res4: array<vec4<st>>;
@group(0) @binding(20) var<storage, read> dy4: array<vec4<st>>;

// Specialisations, by the names norm.ts asks for.
const SUMS_ONLY: u32 = 0u;
const WITH_XHAT: u32 = 1u;
const TRAINING: u32 = 0u;
const INFERENCE: u32 = 1u;
override OP: u32;
// Fusions: 1 adds the residual `res` / applies ReLU after the normalisation (bn_apply), and
// masks the incoming gradient by the forward output (channel_sums).
override RESIDUAL: u32 = 0u;
override RELU: u32 = 0u;

fn is_nan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
const WG: u32 = 256u;
var<workgroup> red: array<f32, WG>;
var<workgroup> red2: array<f32, WG>;

// Sums a and b over the workgroup; the result is in red[0], red2[0].
fn reduce2(lid: u32, a: f32, b: f32) {
  red[lid] = a;
  red2[lid] = b;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s = s >> 1u) {
    if (lid < s) { red[lid] += red[lid + s]; red2[lid] += red2[lid + s]; }
    workgroupBarrier();
  }
}

// One pass over the channel, on data shifted by its first value K: with d = x - K, the mean is
// K + sum(d)/M and the variance sum(d^2)/M - (sum(d)/M)^2. K is one of the channel's own values,
// so d stays on the scale of the spread and the difference does not cancel the way raw sums of
// squares do (a mean of 1000 with spread 0.01 is tested against float64).
fn write_stats(c: u32, shift: f32, count: u32) {
  let ms = red[0] / f32(count);
  let var_b = max(red2[0] / f32(count) - ms * ms, 0.0);
  mean[c] = shift + ms;
  invstd[c] = inverseSqrt(var_b + p.eps);
  if (p.training != 0u) {
    let unbiased = var_b * f32(count) / f32(max(count, 2u) - 1u);
    run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * (shift + ms);
    run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
  }
}

@compute @workgroup_size(WG)
fn bn_stats(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.x;
  let shift = f32(x[c * p.HW]);
  var s = 0.0;
  var q = 0.0;
  for (var n = 0u; n < p.N; n++) {
    let base = (n * p.C + c) * p.HW;
    for (var i = l.x; i < p.HW; i += WG) { let d = f32(x[base + i]) - shift; s += d; q += d * d; }
  }
  reduce2(l.x, s, q);
  if (l.x == 0u) { write_stats(c, shift, p.N * p.HW); }
}

// The same, four values at a time (planes whose H*W is a multiple of 4).
@compute @workgroup_size(WG)
fn bn_stats4(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.x;
  let shift = vec4<f32>(x4[c * p.HW / 4u]).x;
  let hw4 = p.HW / 4u;
  var s = vec4<f32>(0.0);
  var q = vec4<f32>(0.0);
  for (var n = 0u; n < p.N; n++) {
    let base = (n * p.C + c) * hw4;
    for (var i = l.x; i < hw4; i += WG) { let d = vec4<f32>(x4[base + i]) - shift; s += d; q += d * d; }
  }
  reduce2(l.x, s.x + s.y + s.z + s.w, q.x + q.y + q.z + q.w);
  if (l.x == 0u) { write_stats(c, shift, p.N * p.HW); }
}

// Elementwise passes run per (n, c) plane: the channel's coefficients are loaded once and the
// plane is contiguous. gid.y walks planes, gid.x the plane's H*W values.

// y = x * scale + shift for channel c: (scale, shift).
fn apply_coeffs(c: u32) -> vec2<f32> {
  let scale = s_in[c] * gamma[c];
  return vec2<f32>(scale, beta[c] - m_in[c] * scale);
}

// dx = k dy + cx x + c0 for channel c: (k, cx, c0). Training: k (dy - s1/M - (x - mean) invstd
// s2/M); inference: k dy.
fn bwd_coeffs(c: u32) -> vec3<f32> {
  let k = gamma[c] * s_in[c];
  if (OP != TRAINING) { return vec3<f32>(k, 0.0, 0.0); }
  let cx = -k * s_in[c] * s2[c] / p.count;
  return vec3<f32>(k, cx, -k * s1[c] / p.count - cx * m_in[c]);
}
// One value of each scalar pass at index i, with its channel's coefficients.
fn apply_at(i: u32, a: vec2<f32>) {
  var v = f32(x[i]) * a.x + a.y;
  if (RESIDUAL == 1u) { v = v + f32(res[i]); }
  // The same operations as add then relu (NaN kept, as relu keeps it).
  if (RELU == 1u) { v = select(max(v, 0.0), v, is_nan(v)); }
  y[i] = st(v);
}
fn bwd_at(i: u32, k: vec3<f32>) {
  var v = k.x * f32(dy[i]);
  if (OP == TRAINING) { v += k.y * f32(x[i]) + k.z; }
  y[i] = st(v);
}

@compute @workgroup_size(WG)
fn bn_apply(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var plane = gid.y; plane < p.N * p.C; plane += nwg.y) {
    let a = apply_coeffs(plane % p.C);
    for (var i = gid.x; i < p.HW; i += nwg.x * WG) { apply_at(plane * p.HW + i, a); }
  }
}

@compute @workgroup_size(WG)
fn channel_sums(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.x;
  var a = 0.0;
  var b = 0.0;
  for (var n = 0u; n < p.N; n++) {
    let base = (n * p.C + c) * p.HW;
    for (var i = l.x; i < p.HW; i += WG) {
      var g = f32(dy[base + i]);
      // As relu's backward: dy times the 0/1 mask (so NaN and -0 come out as unfused).
      if (RELU == 1u) { g = g * select(0.0, 1.0, f32(yo[base + i]) > 0.0); gm[base + i] = st(g); }
      a += g;
      if (OP == WITH_XHAT) { b += g * (f32(x[base + i]) - m_in[c]) * s_in[c]; }
    }
  }
  reduce2(l.x, a, b);
  if (l.x == 0u) {
    s1[c] = red[0];
    if (OP == WITH_XHAT) { s2[c] = red2[0]; }
  }
}

@compute @workgroup_size(WG)
fn bn_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var plane = gid.y; plane < p.N * p.C; plane += nwg.y) {
    let k = bwd_coeffs(plane % p.C);
    for (var i = gid.x; i < p.HW; i += nwg.x * WG) { bwd_at(plane * p.HW + i, k); }
  }
}

// The same two passes four values at a time: 16-byte loads and stores, a quarter of the loop
// trips (lavapipe runs scalar-load kernels far below its vec4 rate).
fn relu4(v: vec4<f32>) -> vec4<f32> {
  return select(max(v, vec4<f32>(0.0)), v, vec4<bool>(is_nan(v.x), is_nan(v.y), is_nan(v.z), is_nan(v.w)));
}

@compute @workgroup_size(WG)
fn bn_apply4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let hw4 = p.HW / 4u;
  for (var plane = gid.y; plane < p.N * p.C; plane += nwg.y) {
    let a = apply_coeffs(plane % p.C);
    let base = plane * hw4;
    for (var i = gid.x; i < hw4; i += nwg.x * WG) {
      var v = vec4<f32>(x4[base + i]) * a.x + a.y;
      if (RESIDUAL == 1u) { v = v + vec4<f32>(res4[base + i]); }
      if (RELU == 1u) { v = relu4(v); }
      y4[base + i] = vec4<st>(v);
    }
  }
}

@compute @workgroup_size(WG)
fn bn_bwd4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let hw4 = p.HW / 4u;
  for (var plane = gid.y; plane < p.N * p.C; plane += nwg.y) {
    let k = bwd_coeffs(plane % p.C);
    let base = plane * hw4;
    for (var i = gid.x; i < hw4; i += nwg.x * WG) {
      var v = k.x * vec4<f32>(dy4[base + i]);
      if (OP == TRAINING) { v += k.y * vec4<f32>(x4[base + i]) + k.z; }
      y4[base + i] = vec4<st>(v);
    }
  }
}

// The same passes by channel: workgroup (k, c) runs chunk k (of p.chunks) of channel c's N
// planes, so the channel's coefficients are workgroup-uniform (loaded once, not per lane on
// lavapipe) and each invocation handles several vec4s.
// Chunk k of a channel's N planes of L units each: unit indices [lo, hi) of the channel's run.
fn chunk_of(k: u32, L: u32) -> vec2<u32> {
  let total = p.N * L;
  let per = (total + p.chunks - 1u) / p.chunks;
  return vec2<u32>(min(k * per, total), min((k + 1u) * per, total));
}
fn chunk4(k: u32) -> vec2<u32> { return chunk_of(k, p.HW / 4u); }

// The part of chunk r (channel units) in sample n's plane of channel c: vec4 indices [lo, hi).
fn plane_span(n: u32, c: u32, r: vec2<u32>, L: u32) -> vec2<u32> {
  let base = (n * p.C + c) * L;
  return vec2<u32>(base + max(r.x, n * L) - n * L, base + min(r.y, (n + 1u) * L) - n * L);
}

@compute @workgroup_size(WG)
fn bn_apply4c(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.y;
  let L = p.HW / 4u;
  let r = chunk4(wg.x);
  let a = apply_coeffs(c);
  for (var n = r.x / L; n * L < r.y; n++) {
    let s = plane_span(n, c, r, L);
    for (var i = s.x + l.x; i < s.y; i += WG) {
      var v = vec4<f32>(x4[i]) * a.x + a.y;
      if (RESIDUAL == 1u) { v = v + vec4<f32>(res4[i]); }
      if (RELU == 1u) { v = relu4(v); }
      y4[i] = vec4<st>(v);
    }
  }
}

@compute @workgroup_size(WG)
fn bn_bwd4c(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.y;
  let L = p.HW / 4u;
  let r = chunk4(wg.x);
  let k = bwd_coeffs(c);
  for (var n = r.x / L; n * L < r.y; n++) {
    let s = plane_span(n, c, r, L);
    for (var i = s.x + l.x; i < s.y; i += WG) {
      var v = k.x * vec4<f32>(dy4[i]);
      if (OP == TRAINING) { v += k.y * vec4<f32>(x4[i]) + k.z; }
      y4[i] = vec4<st>(v);
    }
  }
}

// By channel for planes of any size (7x7 maps): lanes stride over the channel's N*H*W values as
// one run across planes (a division each), so small planes do not idle most of the workgroup.
fn channel_at(c: u32, j: u32) -> u32 { let n = j / p.HW; return (n * p.C + c) * p.HW + (j - n * p.HW); }

@compute @workgroup_size(WG)
fn bn_apply1c(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = chunk_of(wg.x, p.HW); let a = apply_coeffs(wg.y); // channel wg.y, chunk wg.x
  for (var j = r.x + l.x; j < r.y; j += WG) { apply_at(channel_at(wg.y, j), a); }
}

@compute @workgroup_size(WG)
fn bn_bwd1c(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = chunk_of(wg.x, p.HW); let k = bwd_coeffs(wg.y);
  for (var j = r.x + l.x; j < r.y; j += WG) { bwd_at(channel_at(wg.y, j), k); }
}
