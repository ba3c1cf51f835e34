// 2-D convolution shaped for GPUs (the `tiled-*` variants of conv2d.forward): implicit GEMM of
// the output channels (rows) by the output pixels (columns, n oh ow flattened) over
// K = Cin KH KW, with Params, bindings and weight strides of conv2d.wgsl (included below), so
// it also serves the input gradient (transposed, flipped weights through the strides).
// A workgroup of WX x WY invocations computes TILE_M = WY GM channels by TILE_N = WX GN pixels;
// invocation (lx, ly) owns pixels lx + j WX and channels ly + i WY of the tile, so consecutive
// invocations read and write consecutive pixels (coalesced). Each step stages a KT-deep slice
// of the input (KT x TILE_N, an im2col tile gathered on the fly) and of the weights
// (KT x TILE_M) in workgroup memory. Each invocation stages a fixed pixel (decoded once) and a
// fixed k of the weights; the launcher checks the divisibility this relies on.

// @include conv2d

const GM: u32 = 4u; // channels per invocation
const GN: u32 = 4u; // pixels per invocation
override WX: u32 = 16u;
override WY: u32 = 16u;
override KT: u32 = 16u;
override TILE_M: u32 = WY * GM;
override TILE_N: u32 = WX * GN;
// The weight slice is k-major with one word of padding per k (conflict-free staging writes).
override W_STRIDE: u32 = TILE_M + 1u;
override W_WORDS: u32 = KT * W_STRIDE;
override X_WORDS: u32 = KT * TILE_N;

var<workgroup> ws: array<f32, W_WORDS>;
var<workgroup> xs: array<f32, X_WORDS>;

@compute @workgroup_size(WX, WY)
fn conv_fwd_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let P = p.N * p.OH * p.OW;
  let ohw = p.OH * p.OW;
  let khw = p.KH * p.KW;
  let K = p.Cin * khw;
  let pix0 = wid.x * TILE_N;
  let co0 = wid.y * TILE_M;
  let threads = WX * WY;
  let t = lid.y * WX + lid.x;

  // Input staging role: pixel x_n of the tile for k = x_k + e x_step.
  let x_n = t % TILE_N;
  let x_k = t / TILE_N;
  let x_step = threads / TILE_N;
  let q = pix0 + x_n;
  let q_ok = q < P;
  let qc = min(q, P - 1u);
  let n = qc / ohw;
  let ih0 = i32(((qc % ohw) / p.OW) * p.sh) - i32(p.pt);
  let iw0 = i32((qc % p.OW) * p.sw) - i32(p.pl);
  let xn = n * p.Cin * p.H * p.W;
  // Weight staging role: k = w_k of the slice for channels w_m + e w_step.
  let w_k = t % KT;
  let w_m = t / KT;
  let w_step = threads / KT;

  var acc: array<array<f32, GN>, GM>;
  for (var i = 0u; i < GM; i++) { for (var j = 0u; j < GN; j++) { acc[i][j] = 0.0; } }

  for (var k0 = 0u; k0 < K; k0 = k0 + KT) {
    for (var kk = x_k; kk < KT; kk = kk + x_step) {
      let k = k0 + kk;
      let ci = k / khw;
      let ih = ih0 + i32((k % khw) / p.KW);
      let iw = iw0 + i32(k % p.KW);
      let ok = q_ok && k < K && ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W);
      xs[kk * TILE_N + x_n] = select(0.0, x[xn + (min(ci, p.Cin - 1u) * p.H + u32(clamp(ih, 0, i32(p.H) - 1))) * p.W + u32(clamp(iw, 0, i32(p.W) - 1))], ok);
    }
    {
      let k = k0 + w_k;
      let kc = min(k, K - 1u);
      let wk = p.w_off + (kc / khw) * p.w_ci + ((kc % khw) / p.KW) * p.w_kh + (kc % p.KW) * p.w_kw;
      for (var m = w_m; m < TILE_M; m = m + w_step) {
        let co = co0 + m;
        ws[w_k * W_STRIDE + m] = select(0.0, w[wk + min(co, p.Cout - 1u) * p.w_co], k < K && co < p.Cout);
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < KT; kk++) {
      var wr: array<f32, GM>;
      var xr: array<f32, GN>;
      for (var i = 0u; i < GM; i++) { wr[i] = ws[kk * W_STRIDE + lid.y + i * WY]; }
      for (var j = 0u; j < GN; j++) { xr[j] = xs[kk * TILE_N + lid.x + j * WX]; }
      for (var i = 0u; i < GM; i++) {
        for (var j = 0u; j < GN; j++) { acc[i][j] = fma(wr[i], xr[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var j = 0u; j < GN; j++) {
    let qo = pix0 + lid.x + j * WX;
    if (qo >= P) { break; }
    let base = (qo / ohw) * p.Cout * ohw + qo % ohw;
    for (var i = 0u; i < GM; i++) {
      let co = co0 + lid.y + i * WY;
      if (co >= p.Cout) { break; }
      let at = base + co * ohw;
      c[at] = epilogue(acc[i][j], channel_affine(co), at);
    }
  }
}
