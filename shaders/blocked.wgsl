// The channel-blocked layout NCHW[c/4]HW4 and its conversions. A blocked tensor has shape
// [N, Cb, H, W, 4], Cb = ceil(C / 4): element (n, c, h, w) of the NCHW tensor lives at
// ((n Cb + c / 4) H W + h W + w) 4 + c % 4, and the lanes of channels c >= C hold zeros, so a
// pixel's four channels are one vec4 load.
// to_blocked:     NCHW -> blocked (padding lanes written as 0)
// from_blocked:   blocked -> NCHW (padding lanes dropped); each is the other's gradient
// block_weights:  [Cout, Cin, KH, KW] -> [Cob, Cinp, KH, KW] vec4 over 4 output channels
//                 (Cob = ceil(Cout / 4), Cinp = 4 ceil(Cin / 4); zeros where co >= Cout or ci >= Cin)

struct Params {
  N: u32, C: u32, HW: u32, Cb: u32,
  // block_weights: C = Cout, Cb = Cob, HW = KH KW, and these two.
  Cin: u32, Cinp: u32, pad0: u32, pad1: u32,
}

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> src4: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> dst4: array<vec4<f32>>;

const WG: u32 = 256u;

// Vec4 i of the blocked tensor is pixel s of block cb of sample n: its first channel, and
// where that channel's value of the pixel lies in NCHW (the block's others follow HW apart).
fn first_channel(i: u32) -> u32 { return ((i % (p.Cb * p.HW)) / p.HW) * 4u; }
fn nchw_at(i: u32) -> u32 { return ((i / (p.Cb * p.HW)) * p.C + first_channel(i)) * p.HW + i % p.HW; }

// Invocation i handles vec4 i of the blocked tensor.
@compute @workgroup_size(WG)
fn to_blocked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = p.N * p.Cb * p.HW;
  for (var i = gid.x; i < total; i += nwg.x * WG) {
    let c0 = first_channel(i);
    let at = nchw_at(i);
    var v = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
      if (c0 + j < p.C) { v[j] = src[at + j * p.HW]; }
    }
    dst4[i] = v;
  }
}

@compute @workgroup_size(WG)
fn from_blocked(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = p.N * p.Cb * p.HW;
  for (var i = gid.x; i < total; i += nwg.x * WG) {
    let c0 = first_channel(i);
    let at = nchw_at(i);
    let v = src4[i];
    for (var j = 0u; j < 4u; j++) {
      if (c0 + j < p.C) { dst[at + j * p.HW] = v[j]; }
    }
  }
}

@compute @workgroup_size(WG)
fn block_weights(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = p.Cb * p.Cinp * p.HW;
  for (var i = gid.x; i < total; i += nwg.x * WG) {
    let co0 = (i / (p.Cinp * p.HW)) * 4u;
    let r = i % (p.Cinp * p.HW);
    let ci = r / p.HW;
    let k = r % p.HW;
    var v = vec4<f32>(0.0);
    if (ci < p.Cin) {
      for (var j = 0u; j < 4u; j++) {
        if (co0 + j < p.C) { v[j] = src[((co0 + j) * p.Cin + ci) * p.HW + k]; }
      }
    }
    dst4[i] = v;
  }
}
