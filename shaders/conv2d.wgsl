// 2-D convolution, NCHW activations and [Cout, Cin, KH, KW] weights, as implicit GEMM (no
// im2col buffer): each invocation holds an 8 x 8 block of its output in registers (8 channels
// x 8 neighbouring pixels of one row) and walks the reduction directly over the input.
// conv_fwd:          y  = epilogue(x (*) w): per-channel scale, + bias, + residual, ReLU, as
//                    p.epilogue's flags ask; with the weights read transposed and flipped (see Params) and no
//                    epilogue it is also the input gradient
// conv_bwd_weight:   dw partial sums over a slice of the pixels (split-K); the caller sums
//                    the slices, written last so each weight's partials are contiguous.
// Storage `st` is f32, or f16 in the float16 form (loads widen to f32, stores round once); the
// weight-gradient partials dw stay f32.

struct Params {
  N: u32, Cin: u32, H: u32, W: u32,
  Cout: u32, OH: u32, OW: u32, KH: u32,
  KW: u32, sh: u32, sw: u32, pt: u32,
  pl: u32, epilogue: u32, splits: u32, pix_per_split: u32,
  // Weight element (co, ci, kh, kw) of conv_fwd is at w_off + co w_co + ci w_ci + kh w_kh + kw w_kw
  // (u32 arithmetic wraps, so negative strides work): the input gradient runs conv_fwd with
  // the kernel transposed and flipped this way.
  w_co: u32, w_ci: u32, w_kh: u32, w_kw: u32,
  w_off: u32, pad0: u32, pad1: u32, pad2: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<st>;
@group(0) @binding(2) var<storage, read> w: array<st>;
@group(0) @binding(3) var<storage, read> bias: array<st>;
// The output y, named as the GEMM's C (the tensor-core tile, gemm-tile.wgsl, stores to `c`).
@group(0) @binding(4) var<storage, read_write> c: array<st>;
@group(0) @binding(5) var<storage, read> dy: array<st>;
@group(0) @binding(6) var<storage, read> res: array<st>;
@group(0) @binding(7) var<storage, read_write> dw: array<f32>;

const R: u32 = 16u;  // register block: channels per invocation (conv_fwd)
// Channels actually computed per invocation (<= R): layers with few output channels (an RGB
// input's gradient has 3) specialise to 4 or 8 instead of idling most of the block.
override RB: u32 = 16u;
const RW: u32 = 16u; // output channels per invocation (conv_bwd_weight)
const C: u32 = 8u; // pixels per invocation (two vec4)

// p.epilogue's flags (conv.ts reads them): what conv_fwd applies to each output after the sum.
const EPI_BIAS: u32 = 1u;
const EPI_RESIDUAL: u32 = 2u;
const EPI_RELU: u32 = 4u;
const EPI_SCALE: u32 = 8u;

// The epilogue of output channel co as (scale, shift): bias holds shifts, then scales
// (EPI_SCALE, an inference batch norm; conv-fused.ts), or the bias alone. Read once per channel:
// the compiler cannot hoist loads past the stores to y (the buffers might alias).
fn channel_affine(co: u32) -> vec2<f32> {
  return vec2<f32>(select(1.0, f32(bias[p.Cout + co]), (p.epilogue & EPI_SCALE) != 0u), select(0.0, f32(bias[co]), (p.epilogue & EPI_BIAS) != 0u));
}

// Output `at` from its sum: scale, shift, + res[at] (a residual shaped as y), then ReLU, in
// that order (a folded conv-BN layer, or a ResNet block's tail). ReLU keeps NaN as relu() does.
fn epilogue(v: f32, a: vec2<f32>, at: u32) -> f32 {
  var r = v * a.x + a.y;
  if ((p.epilogue & EPI_RESIDUAL) != 0u) { r += f32(res[at]); }
  if ((p.epilogue & EPI_RELU) != 0u) { r = select(r, 0.0, r < 0.0); }
  return r;
}

// The tensor-core tile's operands (gemm-tile.wgsl; conv2d-subgroup-matrix*.wgsl): per image,
// C = y as [Cout, OH OW], A = the weights as [Cout, Cin KH KW] (read through the weight strides,
// so the input gradient runs on it too), B = the input's im2col [Cin KH KW, OH OW], gathered on
// the fly (zero in the padding).
fn sm_dims() -> vec3<u32> { return vec3<u32>(p.Cout, p.OH * p.OW, p.Cin * p.KH * p.KW); }
fn sm_a(n: u32, co: u32, k: u32) -> f32 {
  let khw = p.KH * p.KW;
  if (co >= p.Cout || k >= p.Cin * khw) { return 0.0; }
  let r = k % khw;
  return f32(w[p.w_off + co * p.w_co + (k / khw) * p.w_ci + (r / p.KW) * p.w_kh + (r % p.KW) * p.w_kw]);
}
fn sm_b(n: u32, k: u32, q: u32) -> f32 {
  let khw = p.KH * p.KW;
  if (k >= p.Cin * khw || q >= p.OH * p.OW) { return 0.0; }
  let r = k % khw;
  let ih = i32((q / p.OW) * p.sh + r / p.KW) - i32(p.pt);
  let iw = i32((q % p.OW) * p.sw + r % p.KW) - i32(p.pl);
  if (ih < 0 || iw < 0 || ih >= i32(p.H) || iw >= i32(p.W)) { return 0.0; }
  return f32(x[((n * p.Cin + k / khw) * p.H + u32(ih)) * p.W + u32(iw)]);
}
fn sm_plain_store() -> bool { return p.epilogue == 0u; }
fn sm_put(at: u32, co: u32, v: f32) { c[at] = st(epilogue(v, channel_affine(co), at)); }

// Pixel block b of a row-major [rows, width] plane set: which row and first column.
fn pixel_block(b: u32, width: u32) -> vec2<u32> {
  let per_row = (width + C - 1u) / C;
  return vec2<u32>(b / per_row, (b % per_row) * C);
}

// The register block: rows of 8 outputs as two vec4 each.
alias Block = array<array<vec4<f32>, 2>, 16>;

// acc[i] += s * v: one rank-1 update of a block row from 8 neighbouring values.
fn accumulate(acc: ptr<function, Block>, i: u32, s: f32, v: array<f32, C>) {
  let sv = vec4<f32>(s);
  (*acc)[i][0] = fma(sv, vec4<f32>(v[0], v[1], v[2], v[3]), (*acc)[i][0]);
  (*acc)[i][1] = fma(sv, vec4<f32>(v[4], v[5], v[6], v[7]), (*acc)[i][1]);
}

@compute @workgroup_size(16, 4)
fn conv_fwd(@builtin(global_invocation_id) gid: vec3<u32>) {
  let rb = pixel_block(gid.x, p.OW);          // rb.x = n * OH + oh
  let co0 = gid.y * RB;
  if (rb.x >= p.N * p.OH || co0 >= p.Cout) { return; }
  let n = rb.x / p.OH;
  let oh = rb.x % p.OH;
  let ow0 = rb.y;
  var acc: Block;
  let khw = p.KH * p.KW;
  // Blocks whose every window column lies inside the input skip the per-pixel bounds checks.
  let left = i32(ow0 * p.sw) - i32(p.pl);
  let interior = left >= 0 && left + i32((C - 1u) * p.sw + p.KW) <= i32(p.W);
  for (var ci = 0u; ci < p.Cin; ci++) {
    let xplane = (n * p.Cin + ci) * p.H;
    for (var kh = 0u; kh < p.KH; kh++) {
      let ih = i32(oh * p.sh + kh) - i32(p.pt);
      if (ih < 0 || ih >= i32(p.H)) { continue; }
      let xrow = (xplane + u32(ih)) * p.W;
      for (var kw = 0u; kw < p.KW; kw++) {
        var xv: array<f32, C>;
        if (interior) {
          let at0 = xrow + u32(left) + kw;
          for (var j = 0u; j < C; j++) { xv[j] = f32(x[at0 + j * p.sw]); }
        } else {
          for (var j = 0u; j < C; j++) {
            let iw = left + i32(j * p.sw + kw);
            xv[j] = select(0.0, f32(x[xrow + u32(clamp(iw, 0, i32(p.W) - 1))]), iw >= 0 && iw < i32(p.W));
          }
        }
        let widx = p.w_off + ci * p.w_ci + kh * p.w_kh + kw * p.w_kw;
        for (var i = 0u; i < RB; i++) { accumulate(&acc, i, f32(w[widx + min(co0 + i, p.Cout - 1u) * p.w_co]), xv); }
      }
    }
  }
  for (var i = 0u; i < RB; i++) {
    let co = co0 + i;
    if (co >= p.Cout) { break; }
    let a = channel_affine(co);
    let base = ((n * p.Cout + co) * p.OH + oh) * p.OW;
    for (var j = 0u; j < C; j++) {
      let at = base + ow0 + j;
      if (ow0 + j < p.OW) { c[at] = st(epilogue(acc[i][j / 4u][j % 4u], a, at)); }
    }
  }
}

// gid.x: block of 8 flattened (ci, kh, kw) indices; gid.y: block of 16 output channels;
// gid.z: the split of pixels (n, oh, ow) this invocation sums over.
@compute @workgroup_size(8, 8)
fn conv_bwd_weight(@builtin(global_invocation_id) gid: vec3<u32>) {
  let khw = p.KH * p.KW;
  let K = p.Cin * khw;
  let k0 = gid.x * C;
  let co0 = gid.y * RW;
  if (k0 >= K || co0 >= p.Cout) { return; }
  // Per column j: its input channel's plane offset and its kernel offsets.
  var coff: array<u32, C>;
  var kh_: array<i32, C>;
  var kw_: array<i32, C>;
  for (var j = 0u; j < C; j++) {
    let k = min(k0 + j, K - 1u);
    coff[j] = (k / khw) * p.H * p.W;
    kh_[j] = i32((k % khw) / p.KW) - i32(p.pt);
    kw_[j] = i32(k % p.KW) - i32(p.pl);
  }
  var acc: Block;
  let P = p.N * p.OH * p.OW;
  let start = gid.z * p.pix_per_split;
  let stop = min(start + p.pix_per_split, P);
  let ohw = p.OH * p.OW;
  for (var q = start; q < stop; q++) {
    let n = q / ohw;
    let r = q % ohw;
    let oh = r / p.OW;
    let ow = r % p.OW;
    var xv: array<f32, C>;
    let xn = n * p.Cin * p.H * p.W;
    for (var j = 0u; j < C; j++) {
      let ih = i32(oh * p.sh) + kh_[j];
      let iw = i32(ow * p.sw) + kw_[j];
      let ok = ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W);
      xv[j] = select(0.0, f32(x[xn + coff[j] + u32(clamp(ih, 0, i32(p.H) - 1)) * p.W + u32(clamp(iw, 0, i32(p.W) - 1))]), ok);
    }
    let dyb = n * p.Cout * ohw + r;
    for (var i = 0u; i < RW; i++) { accumulate(&acc, i, f32(dy[dyb + min(co0 + i, p.Cout - 1u) * ohw]), xv); }
  }
  for (var i = 0u; i < RW; i++) {
    let co = co0 + i;
    if (co >= p.Cout) { break; }
    for (var j = 0u; j < C; j++) {
      if (k0 + j < K) { dw[(co * K + k0 + j) * p.splits + gid.z] = acc[i][j / 4u][j % 4u]; }
    }
  }
}
