// Winograd F(m x m, 3 x 3) convolution (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2015) for stride-1 3 x 3 layers, m = 2 or 4 (override M), alpha = m + 2. A tile of
// m x m outputs is Y = A^T [(G g G^T) . (B^T d B)] A for the alpha x alpha input patch d and the
// 3 x 3 kernel g; summed over input channels, the alpha^2 products become alpha^2 independent
// GEMMs (run by matmul.wgsl), which is where the flops go: alpha^2 / (9 m^2) of the direct ones.
// The weight gradient swaps the roles (the 3 x 3 outputs are taps, an m x m tile of dy is the
// filter): dW = G^T [(A E A^T) . (B^T D B)] G, summed over tiles, with the same input transform.
// wino_input:       x  -> V, B^T d B per tile and channel, written at pos s_pos + c s_c + p s_p
// wino_weight:      w  -> U [alpha^2, Cout, Cin], G g G^T (weights read through strides, so the
//                   input gradient's transposed, flipped kernel needs no copy)
// wino_output:      M [alpha^2, Cout, Pp] -> y, A^T m A per tile, then the epilogue (scale,
//                   bias, residual, ReLU as conv2d.wgsl's)
// wino_grad_output: dy -> E, A e A^T per m x m tile of dy, laid out as wino_input's V
// wino_grad_weight: M [alpha^2, Cout, Cin] -> dw [Cout, Cin, 3, 3], G^T m G

struct Params {
  N: u32, C: u32, H: u32, W: u32,        // the tiled tensor (x or dy): batch, channels, size
  OH: u32, OW: u32, TH: u32, TW: u32,    // the convolution's output and its tiles (m x m each)
  pt: u32, pl: u32, P: u32, Pp: u32,     // top / left padding, tiles N TH TW, padded tile count
  K: u32, s_pos: u32, s_c: u32, s_p: u32, // the other channel count; transform output strides
  w_co: i32, w_ci: i32, w_kh: i32, w_kw: i32,
  w_off: i32, epilogue: u32,
  Cp: u32,  // channels of wino_input's output and wino_grad_weight's input: C, or C padded (zeros) to a multiple of 4
  pad0: u32,
}

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> res: array<f32>;

// p.epilogue's flags, as conv2d.wgsl's (conv-winograd.ts reads them).
const EPI_BIAS: u32 = 1u;
const EPI_RESIDUAL: u32 = 2u;
const EPI_RELU: u32 = 4u;
const EPI_SCALE: u32 = 8u;

override M: u32 = 2u;        // output tile side m
const WG: u32 = 64u;         // invocations per workgroup (one tile or one weight each)

alias V6 = array<f32, 6>;
alias T6 = array<f32, 36>;   // an alpha x alpha (or smaller) tile, row stride 6

// The 1-D transforms of F(2, 3) (points 0, 1, -1, inf) and F(4, 3); unused trailing entries
// are zero. F(4, 3) interpolates at 0, 1, -1, 1/2, -2, inf rather than the usual 0, +-1, +-2,
// inf: its float32 error on a 64-channel layer is 2.7x smaller (Barabasz et al., "Error analysis
// and improving the accuracy of Winograd convolution", 2020), which is what keeps F(4x4, 3x3)
// within the op tests' tolerance. Rows of B^T are scaled to integers, G carries the inverse.
fn bt(d: V6) -> V6 {
  if (M == 2u) { return V6(d[0] - d[2], d[1] + d[2], d[2] - d[1], d[1] - d[3], 0.0, 0.0); }
  return V6(2.0 * (d[0] + d[4]) - 3.0 * (d[1] - d[3]) - 4.0 * d[2], d[2] + 5.0 * d[3] + 2.0 * (d[4] - d[1]),
            d[3] - 5.0 * d[2] + 2.0 * (d[1] + d[4]), d[4] - d[2] + 2.0 * (d[3] - d[1]), d[1] - d[3] + 2.0 * (d[4] - d[2]),
            2.0 * (d[1] + d[5]) - 3.0 * (d[2] - d[4]) - 4.0 * d[3]);
}
fn g_(g: V6) -> V6 {
  if (M == 2u) { return V6(g[0], 0.5 * (g[0] + g[1] + g[2]), 0.5 * (g[0] - g[1] + g[2]), g[2], 0.0, 0.0); }
  return V6(0.5 * g[0], (g[0] + g[1] + g[2]) / 6.0, (g[1] - g[0] - g[2]) / 6.0,
            -16.0 / 15.0 * (g[0] + 0.5 * g[1] + 0.25 * g[2]), (g[0] - 2.0 * g[1] + 4.0 * g[2]) / 30.0, 0.5 * g[2]);
}
fn at(m: V6) -> V6 {
  if (M == 2u) { return V6(m[0] + m[1] + m[2], m[1] - m[2] - m[3], 0.0, 0.0, 0.0, 0.0); }
  let s = m[1] + m[2];
  let d = m[1] - m[2];
  return V6(m[0] + s + m[3] + m[4], d + 0.5 * m[3] - 2.0 * m[4], s + 0.25 * m[3] + 4.0 * m[4], d + 0.125 * m[3] - 8.0 * m[4] + m[5], 0.0, 0.0);
}
fn a_(e: V6) -> V6 {
  if (M == 2u) { return V6(e[0], e[0] + e[1], e[0] - e[1], -e[1], 0.0, 0.0); }
  let ev = e[0] + e[2];
  let od = e[1] + e[3];
  return V6(e[0], ev + od, ev - od, e[0] + 0.5 * e[1] + 0.25 * e[2] + 0.125 * e[3], e[0] - 2.0 * e[1] + 4.0 * e[2] - 8.0 * e[3], e[3]);
}
fn gt(m: V6) -> V6 {
  if (M == 2u) { return V6(m[0] + 0.5 * (m[1] + m[2]), 0.5 * (m[1] - m[2]), 0.5 * (m[1] + m[2]) + m[3], 0.0, 0.0, 0.0); }
  let s = (m[1] + m[2]) / 6.0;
  let d = (m[1] - m[2]) / 6.0;
  return V6(0.5 * m[0] + d - 16.0 / 15.0 * m[3] + m[4] / 30.0, s - 8.0 / 15.0 * m[3] - m[4] / 15.0,
            d - 4.0 / 15.0 * m[3] + 2.0 / 15.0 * m[4] + 0.5 * m[5], 0.0, 0.0, 0.0);
}

const BT: u32 = 0u;
const G: u32 = 1u;
const AT: u32 = 2u;
const A: u32 = 3u;
const GT: u32 = 4u;

fn tf(which: u32, v: V6) -> V6 {
  switch which {
    case 0u: { return bt(v); }
    case 1u: { return g_(v); }
    case 2u: { return at(v); }
    case 3u: { return a_(v); }
    default: { return gt(v); }
  }
}

// Writes a transformed al x al tile to the position-major layout: element (i, j) at
// ((i al + j) s_pos + at0), so each tile position is one GEMM's contiguous operand.
fn store_tile(v: T6, al: u32, at0: u32) {
  for (var i = 0u; i < al; i++) {
    for (var j = 0u; j < al; j++) { dst[(i * al + j) * p.s_pos + at0] = v[i * 6u + j]; }
  }
}

// L X L^T for the transform L of `which`, X being n x n: columns first, then rows.
fn tf2(which: u32, x: T6, n: u32) -> T6 {
  var t: T6;
  for (var j = 0u; j < n; j++) {
    let c = tf(which, V6(x[j], x[6u + j], x[12u + j], x[18u + j], x[24u + j], x[30u + j]));
    for (var i = 0u; i < 6u; i++) { t[i * 6u + j] = c[i]; }
  }
  var o: T6;
  for (var i = 0u; i < 6u; i++) {
    let r = tf(which, V6(t[i * 6u], t[i * 6u + 1u], t[i * 6u + 2u], t[i * 6u + 3u], t[i * 6u + 4u], t[i * 6u + 5u]));
    for (var j = 0u; j < 6u; j++) { o[i * 6u + j] = r[j]; }
  }
  return o;
}

// Tile index -> (image, first output row, first output column).
fn tile(q: u32) -> vec3<u32> {
  let per = p.TH * p.TW;
  return vec3<u32>(q / per, (q % per) / p.TW * M, q % p.TW * M);
}

// gid.x: tile (up to the padded count, zeros beyond the real ones); gid.y: channel (up to Cp, zeros beyond C).
@compute @workgroup_size(64)
fn wino_input(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let c = gid.y;
  if (q >= p.Pp || c >= p.Cp) { return; }
  let al = M + 2u;
  var d: T6;
  if (q < p.P && c < p.C) {
    let t = tile(q);
    let plane = (t.x * p.C + c) * p.H;
    let top = i32(t.y) - i32(p.pt);
    let left = i32(t.z) - i32(p.pl);
    for (var i = 0u; i < al; i++) {
      let ih = top + i32(i);
      if (ih < 0 || ih >= i32(p.H)) { continue; }
      let row = (plane + u32(ih)) * p.W;
      for (var j = 0u; j < al; j++) {
        let iw = left + i32(j);
        d[i * 6u + j] = select(0.0, src[row + u32(clamp(iw, 0, i32(p.W) - 1))], iw >= 0 && iw < i32(p.W));
      }
    }
  }
  let v = tf2(BT, d, al);
  store_tile(v, al, c * p.s_c + q * p.s_p);
}

// gid.x: input channel ci < C; gid.y: output channel co < K. Writes U[pos][co][ci].
@compute @workgroup_size(64)
fn wino_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ci = gid.x;
  let co = gid.y;
  if (ci >= p.C || co >= p.K) { return; }
  let al = M + 2u;
  var g: T6;
  let base = p.w_off + i32(co) * p.w_co + i32(ci) * p.w_ci;
  for (var i = 0u; i < 3u; i++) {
    for (var j = 0u; j < 3u; j++) { g[i * 6u + j] = src[u32(base + i32(i) * p.w_kh + i32(j) * p.w_kw)]; }
  }
  let u = tf2(G, g, 3u);
  for (var i = 0u; i < al * al; i++) { dst[(i * p.K + co) * p.C + ci] = u[i / al * 6u + i % al]; }
}

// gid.x: tile; gid.y: output channel co < K. M [alpha^2, K, Pp] -> y [N, K, OH, OW].
@compute @workgroup_size(64)
fn wino_output(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let co = gid.y;
  if (q >= p.P || co >= p.K) { return; }
  let al = M + 2u;
  var m: T6;
  for (var i = 0u; i < al * al; i++) { m[i / al * 6u + i % al] = src[(i * p.K + co) * p.Pp + q]; }
  let y = tf2(AT, m, al);
  let t = tile(q);
  // Scale and shift read once (not hoisted by the compiler past the stores to dst).
  let scale = select(1.0, bias[p.K + co], (p.epilogue & EPI_SCALE) != 0u);
  let shift = select(0.0, bias[co], (p.epilogue & EPI_BIAS) != 0u);
  let plane = (t.x * p.K + co) * p.OH;
  for (var i = 0u; i < M; i++) {
    if (t.y + i >= p.OH) { break; }
    for (var j = 0u; j < M; j++) {
      if (t.z + j >= p.OW) { break; }
      let at = (plane + t.y + i) * p.OW + t.z + j;
      var r = y[i * 6u + j] * scale + shift;
      if ((p.epilogue & EPI_RESIDUAL) != 0u) { r += res[at]; }
      if ((p.epilogue & EPI_RELU) != 0u) { r = select(r, 0.0, r < 0.0); }
      dst[at] = r;
    }
  }
}

// gid.x: tile; gid.y: channel of dy [N, C, OH, OW]; A e A^T written as wino_input writes V.
@compute @workgroup_size(64)
fn wino_grad_output(@builtin(global_invocation_id) gid: vec3<u32>) {
  let q = gid.x;
  let c = gid.y;
  if (q >= p.Pp || c >= p.C) { return; }
  let al = M + 2u;
  var e: T6;
  if (q < p.P) {
    let t = tile(q);
    let plane = (t.x * p.C + c) * p.OH;
    for (var i = 0u; i < M; i++) {
      if (t.y + i >= p.OH) { break; }
      for (var j = 0u; j < M; j++) {
        if (t.z + j < p.OW) { e[i * 6u + j] = src[(plane + t.y + i) * p.OW + t.z + j]; }
      }
    }
  }
  let v = tf2(A, e, M);
  store_tile(v, al, c * p.s_c + q * p.s_p);
}

// gid.x: input channel ci < C; gid.y: output channel co < K. M [alpha^2, K, Cp] -> dw [K, C, 3, 3].
@compute @workgroup_size(64)
fn wino_grad_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let ci = gid.x;
  let co = gid.y;
  if (ci >= p.C || co >= p.K) { return; }
  let al = M + 2u;
  var m: T6;
  for (var i = 0u; i < al * al; i++) { m[i / al * 6u + i % al] = src[(i * p.K + co) * p.Cp + ci]; }
  let w = tf2(GT, m, al);
  let base = (co * p.C + ci) * 9u;
  for (var i = 0u; i < 9u; i++) { dst[base + i] = w[i / 3u * 6u + i % 3u]; }
}
