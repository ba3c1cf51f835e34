// Batch-norm reductions in two levels, several workgroups per channel: bn_partial(4) sums one
// chunk of a channel's N * H * W values per workgroup (workgroup (k, c): chunk k of channel c,
// p.chunks chunks), bn_combine adds a channel's chunk sums (one invocation per channel).
// OP = STATS:  shifted sums s = sum(x - K), q = sum((x - K)^2) with K = the channel's first
//              value (the same K in every chunk, so the chunk sums add exactly as one pass
//              would; see batchnorm.wgsl), combined into mean, 1/sqrt(var + eps) and, in
//              training, the running statistics.
// OP = GRAD:   a = sum(dy), b = sum(dy * (x - mean)), combined into s1 = a, s2 = b * invstd
//              (batch norm's weight gradient). RELU masks dy by the forward output first and
//              writes the masked gradient to gm, as in channel_sums.
// OP = SUMS:   a = sum(dy) alone (a convolution's bias gradient).
// Activations (x, dy, yo, gm) are `st`: f32, or f16 in the float16 form; sums stay f32.

struct Params {
  N: u32, C: u32, HW: u32, training: u32,
  eps: f32, momentum: f32, count: f32, chunks: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<st>;
@group(0) @binding(2) var<storage, read> x4: array<vec4<st>>;
@group(0) @binding(3) var<storage, read> dy: array<st>;
@group(0) @binding(4) var<storage, read> dy4: array<vec4<st>>;
@group(0) @binding(5) var<storage, read> yo: array<st>;
@group(0) @binding(6) var<storage, read> yo4: array<vec4<st>>;
@group(0) @binding(7) var<storage, read_write> gm: array<st>;
@group(0) @binding(8) var<storage, read_write> gm4: array<vec4<st>>;
@group(0) @binding(9) var<storage, read> m_in: array<f32>;
@group(0) @binding(10) var<storage, read_write> part: array<vec2<f32>>;
@group(0) @binding(11) var<storage, read> part_in: array<vec2<f32>>;
@group(0) @binding(12) var<storage, read_write> out1: array<f32>;
@group(0) @binding(13) var<storage, read_write> out2: array<f32>;
@group(0) @binding(14) var<storage, read_write> run_mean: array<f32>;
@group(0) @binding(15) var<storage, read_write> run_var: array<f32>;
@group(0) @binding(16) var<storage, read> s_in: array<f32>;

// The reductions, by the names norm.ts asks for.
const STATS: u32 = 0u;
const GRAD: u32 = 1u;
const SUMS: u32 = 2u;
override OP: u32;
override RELU: u32 = 0u;

const WG: u32 = 64u;

// Chunk k of a channel of N planes of L units: the units [j0, j1) of the channel.
fn chunk(k: u32, L: u32) -> vec2<u32> {
  let total = p.N * L;
  let per = (total + p.chunks - 1u) / p.chunks;
  return vec2<u32>(min(k * per, total), min((k + 1u) * per, total));
}

// The masked gradient of one value (as relu's backward: dy times the 0/1 mask).
fn grad1(i: u32) -> f32 {
  if (RELU == 1u) { let g = f32(dy[i]) * select(0.0, 1.0, f32(yo[i]) > 0.0); gm[i] = st(g); return g; }
  return f32(dy[i]);
}
fn grad4(i: u32) -> vec4<f32> {
  if (RELU == 1u) { let g = vec4<f32>(dy4[i]) * select(vec4<f32>(0.0), vec4<f32>(1.0), vec4<f32>(yo4[i]) > vec4<f32>(0.0)); gm4[i] = vec4<st>(g); return g; }
  return vec4<f32>(dy4[i]);
}

@compute @workgroup_size(WG)
fn bn_partial(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.y;
  let r = chunk(wg.x, p.HW);
  let shift = select(0.0, f32(x[c * p.HW]), OP == STATS);
  let mu = select(0.0, m_in[c], OP == GRAD);
  var acc = vec2<f32>(0.0);
  // Plane by plane, so the one division per plane stays out of the inner loop.
  for (var n = r.x / p.HW; n * p.HW < r.y; n++) {
    let base = (n * p.C + c) * p.HW;
    let lo = max(r.x, n * p.HW) - n * p.HW;
    let hi = min(r.y, (n + 1u) * p.HW) - n * p.HW;
    for (var i = lo + l.x; i < hi; i += WG) {
      if (OP == STATS) { let d = f32(x[base + i]) - shift; acc += vec2<f32>(d, d * d); }
      else {
        let g = grad1(base + i);
        acc.x += g;
        if (OP == GRAD) { acc.y += g * (f32(x[base + i]) - mu); }
      }
    }
  }
  part[(c * p.chunks + wg.x) * WG + l.x] = acc;
}

// The same four values at a time (H * W a multiple of 4): units are vec4s.
@compute @workgroup_size(WG)
fn bn_partial4(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>) {
  let c = wg.y;
  let L = p.HW / 4u;
  let r = chunk(wg.x, L);
  let shift = select(0.0, f32(x[c * p.HW]), OP == STATS);
  let mu = select(0.0, m_in[c], OP == GRAD);
  var a = vec4<f32>(0.0);
  var b = vec4<f32>(0.0);
  for (var n = r.x / L; n * L < r.y; n++) {
    let base = (n * p.C + c) * L;
    let lo = max(r.x, n * L) - n * L;
    let hi = min(r.y, (n + 1u) * L) - n * L;
    for (var i = lo + l.x; i < hi; i += WG) {
      if (OP == STATS) { let d = vec4<f32>(x4[base + i]) - shift; a += d; b += d * d; }
      else {
        let g = grad4(base + i);
        a += g;
        if (OP == GRAD) { b += g * (vec4<f32>(x4[base + i]) - mu); }
      }
    }
  }
  part[(c * p.chunks + wg.x) * WG + l.x] = vec2<f32>(a.x + a.y + a.z + a.w, b.x + b.y + b.z + b.w);
}

// A channel's partial sums, added in order.
fn chunk_total(c: u32) -> vec2<f32> {
  var t = vec2<f32>(0.0);
  for (var k = c * p.chunks * WG; k < (c + 1u) * p.chunks * WG; k++) { t += part_in[k]; }
  return t;
}

@compute @workgroup_size(64)
fn bn_combine_stats(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.C) { return; }
  let t = chunk_total(c);
  let M = f32(p.N * p.HW);
  let ms = t.x / M;
  let var_b = max(t.y / M - ms * ms, 0.0);
  let mean = f32(x[c * p.HW]) + ms;
  out1[c] = mean;
  out2[c] = inverseSqrt(var_b + p.eps);
  if (p.training != 0u) {
    let unbiased = var_b * M / max(M - 1.0, 1.0);
    run_mean[c] = (1.0 - p.momentum) * run_mean[c] + p.momentum * mean;
    run_var[c] = (1.0 - p.momentum) * run_var[c] + p.momentum * unbiased;
  }
}

@compute @workgroup_size(64)
fn bn_combine_sums(@builtin(global_invocation_id) gid: vec3<u32>) {
  let c = gid.x;
  if (c >= p.C) { return; }
  let t = chunk_total(c);
  out1[c] = t.x;
  if (OP == GRAD) { out2[c] = t.y * s_in[c]; }
}
