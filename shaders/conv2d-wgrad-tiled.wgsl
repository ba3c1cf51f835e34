// The weight gradient shaped for GPUs (the `tiled-*` variants of conv2d.weightGrad): a GEMM of
// the output channels (rows) by K = Cin KH KW (columns) over the pixels (n oh ow flattened),
// split over z into slices of pix_per_split pixels whose partial sums the caller adds, laid out
// as conv_bwd_weight's (each weight's partials contiguous). Params and bindings are conv2d.wgsl's.
// A workgroup of WX x WY invocations computes TILE_M = WY GM channels by TILE_N = WX GN columns;
// each step stages PT pixels of dy (TILE_M x PT) and of the im2col input (TILE_N x PT) in
// workgroup memory, consecutive invocations reading consecutive pixels (coalesced: a channel's
// pixels are contiguous in dy, and in x for stride-1 layers). Each invocation stages a fixed
// pixel (decoded once per step); the launcher checks that WX WY is a multiple of PT.

// @include conv2d

const GM: u32 = 4u; // channels per invocation
const GN: u32 = 4u; // columns (k) per invocation
override WX: u32 = 16u;
override WY: u32 = 16u;
override PT: u32 = 16u;
override TILE_M: u32 = WY * GM;
override TILE_N: u32 = WX * GN;
// Pixel-major tiles, padded by one word per pixel (conflict-free staging writes).
override D_STRIDE: u32 = TILE_M + 1u;
override X_STRIDE: u32 = TILE_N + 1u;
override D_WORDS: u32 = PT * D_STRIDE;
override X_WORDS: u32 = PT * X_STRIDE;

var<workgroup> ds: array<f32, D_WORDS>;
var<workgroup> xs: array<f32, X_WORDS>;

@compute @workgroup_size(WX, WY)
fn conv_bwd_weight_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let P = p.N * p.OH * p.OW;
  let ohw = p.OH * p.OW;
  let khw = p.KH * p.KW;
  let K = p.Cin * khw;
  let k0 = wid.x * TILE_N;
  let co0 = wid.y * TILE_M;
  let t = lid.y * WX + lid.x;
  let rows = (WX * WY) / PT;
  let pp = t % PT;        // this invocation's pixel of every staged tile
  let r0 = t / PT;        // its first row (channel of dy, column of x); then r0 + rows, ...
  let start = wid.z * p.pix_per_split;
  let stop = min(start + p.pix_per_split, P);

  var acc: array<array<f32, GN>, GM>;
  for (var i = 0u; i < GM; i++) { for (var j = 0u; j < GN; j++) { acc[i][j] = 0.0; } }

  for (var q0 = start; q0 < stop; q0 = q0 + PT) {
    let q = q0 + pp;
    let q_ok = q < stop;
    let qc = min(q, P - 1u);
    let n = qc / ohw;
    let r = qc % ohw;
    let ih0 = i32((r / p.OW) * p.sh) - i32(p.pt);
    let iw0 = i32((r % p.OW) * p.sw) - i32(p.pl);
    let dyb = n * p.Cout * ohw + r;
    let xn = n * p.Cin * p.H * p.W;
    for (var m = r0; m < TILE_M; m = m + rows) {
      let co = co0 + m;
      ds[pp * D_STRIDE + m] = select(0.0, dy[dyb + min(co, p.Cout - 1u) * ohw], q_ok && co < p.Cout);
    }
    for (var col = r0; col < TILE_N; col = col + rows) {
      let k = min(k0 + col, K - 1u);
      let ih = ih0 + i32((k % khw) / p.KW);
      let iw = iw0 + i32(k % p.KW);
      let ok = q_ok && k0 + col < K && ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W);
      xs[pp * X_STRIDE + col] = select(0.0, x[xn + ((k / khw) * p.H + u32(clamp(ih, 0, i32(p.H) - 1))) * p.W + u32(clamp(iw, 0, i32(p.W) - 1))], ok);
    }
    workgroupBarrier();
    for (var s = 0u; s < PT; s++) {
      var dr: array<f32, GM>;
      var xr: array<f32, GN>;
      for (var i = 0u; i < GM; i++) { dr[i] = ds[s * D_STRIDE + lid.y + i * WY]; }
      for (var j = 0u; j < GN; j++) { xr[j] = xs[s * X_STRIDE + lid.x + j * WX]; }
      for (var i = 0u; i < GM; i++) {
        for (var j = 0u; j < GN; j++) { acc[i][j] = fma(dr[i], xr[j], acc[i][j]); }
      }
    }
    workgroupBarrier();
  }

  for (var i = 0u; i < GM; i++) {
    let co = co0 + lid.y + i * WY;
    if (co >= p.Cout) { break; }
    for (var j = 0u; j < GN; j++) {
      let k = k0 + lid.x + j * WX;
      if (k < K) { dw[(co * K + k) * p.splits + wid.z] = acc[i][j]; }
    }
  }
}
