// Direct 2-D convolution in the channel-blocked layout (blocked.wgsl): x [N, Cib, H, W] and
// y [N, Cob, OH, OW] as vec4s over 4 channels, weights [Cob, Cinp, KH, KW] as vec4s over 4
// output channels (block_weights). Each invocation holds OB output blocks (4 OB channels) x P
// neighbouring pixels of one row in registers (OB, P: overrides, the kernel's variants); per
// input block and tap it loads P input vec4s and 4 OB weight vec4s for 16 OB P multiply-adds
// (the NCHW kernel, conv2d.wgsl, loads a scalar per 5 of them). The output blocks come from workgroup_id, so the weight loads are uniform
// across the workgroup.
// conv_blocked:  y = x (*) w (no bias: the layers it serves are followed by batch norm)

struct Params {
  N: u32, Cib: u32, H: u32, W: u32,
  Cob: u32, OH: u32, OW: u32, KH: u32,
  KW: u32, sh: u32, sw: u32, pt: u32,
  pl: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w4: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y4: array<vec4<f32>>;

const OBMAX: u32 = 4u;
// Output blocks per invocation (<= OBMAX): 4, 8 or 16 output channels.
override OB: u32 = 4u;
const PMAX: u32 = 8u;
// Pixels per invocation (<= PMAX).
override P: u32 = 8u;
const WG: u32 = 64u;

@compute @workgroup_size(WG)
fn conv_blocked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let per_row = (p.OW + P - 1u) / P;
  let row = gid.x / per_row;                  // n * OH + oh
  let ow0 = (gid.x % per_row) * P;
  let ob0 = wid.y * OB;
  if (row >= p.N * p.OH) { return; }
  let n = row / p.OH;
  let oh = row % p.OH;
  var acc: array<array<vec4<f32>, PMAX>, OBMAX>;
  let khw = p.KH * p.KW;
  let cinp = p.Cib * 4u;
  // Blocks whose every window column lies inside the input skip the per-pixel bounds checks.
  let left = i32(ow0 * p.sw) - i32(p.pl);
  let interior = left >= 0 && left + i32((P - 1u) * p.sw + p.KW) <= i32(p.W);
  for (var cib = 0u; cib < p.Cib; cib++) {
    let xplane = (n * p.Cib + cib) * p.H;
    for (var kh = 0u; kh < p.KH; kh++) {
      let ih = i32(oh * p.sh + kh) - i32(p.pt);
      if (ih < 0 || ih >= i32(p.H)) { continue; }
      let xrow = (xplane + u32(ih)) * p.W;
      for (var kw = 0u; kw < p.KW; kw++) {
        var xv: array<vec4<f32>, PMAX>;
        if (interior) {
          let at0 = xrow + u32(left) + kw;
          for (var j = 0u; j < P; j++) { xv[j] = x4[at0 + j * p.sw]; }
        } else {
          for (var j = 0u; j < P; j++) {
            let iw = left + i32(j * p.sw + kw);
            xv[j] = select(vec4<f32>(0.0), x4[xrow + u32(clamp(iw, 0, i32(p.W) - 1))], iw >= 0 && iw < i32(p.W));
          }
        }
        for (var o = 0u; o < OB; o++) {
          // Columns: the 4 output channels' weights for input channels 4 cib .. 4 cib + 3.
          let wb = ((min(ob0 + o, p.Cob - 1u) * cinp + cib * 4u) * p.KH + kh) * p.KW + kw;
          let c0 = w4[wb];
          let c1 = w4[wb + khw];
          let c2 = w4[wb + 2u * khw];
          let c3 = w4[wb + 3u * khw];
          for (var j = 0u; j < P; j++) {
            let v = xv[j];
            acc[o][j] = fma(c3, vec4<f32>(v.w), fma(c2, vec4<f32>(v.z), fma(c1, vec4<f32>(v.y), fma(c0, vec4<f32>(v.x), acc[o][j]))));
          }
        }
      }
    }
  }
  for (var o = 0u; o < OB; o++) {
    let ob = ob0 + o;
    if (ob >= p.Cob) { break; }
    let base = ((n * p.Cob + ob) * p.OH + oh) * p.OW;
    for (var j = 0u; j < P; j++) {
      if (ow0 + j < p.OW) { y4[base + ow0 + j] = acc[o][j]; }
    }
  }
}
