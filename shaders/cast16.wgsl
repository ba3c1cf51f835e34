// Conversion between float32 and float16 storage, in integer arithmetic on the bit patterns: WGSL
// leaves an f32 -> f16 conversion's rounding and overflow to the implementation, and this cast
// must match engine/half.ts bit for bit (round to nearest even, overflow to Infinity, subnormals
// kept, NaN stays a quiet NaN). float16 buffers are read and written as 32-bit words holding two
// values (element 2i in the low half), so no `shader-f16` is needed here; each invocation owns a
// word, and the last word of an odd count keeps its upper half zero.

struct Params { n: u32 }

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<u32>;

const WG: u32 = 256u;

fn half_bits(b: u32) -> u32 {
  let sign = (b >> 16u) & 0x8000u;
  let exp = i32((b >> 23u) & 0xffu);
  let man = b & 0x7fffffu;
  if (exp == 0xff) {
    if (man != 0u) { return sign | 0x7c00u | 0x200u | (man >> 13u); }
    return sign | 0x7c00u;
  }
  let e = exp - 112; // rebias 127 -> 15
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    let m = man | 0x800000u;
    let shift = u32(14 - e);
    let kept = m >> shift;
    let rest = m & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    return sign | (kept + select(0u, 1u, rest > half || (rest == half && (kept & 1u) == 1u)));
  }
  let kept = (u32(e) << 10u) | (man >> 13u);
  let rest = man & 0x1fffu;
  // A mantissa carry bumps the exponent (and from 30 gives Infinity), as it should.
  return sign | (kept + select(0u, 1u, rest > 0x1000u || (rest == 0x1000u && (kept & 1u) == 1u)));
}

fn float_bits(h: u32) -> u32 {
  let sign = (h & 0x8000u) << 16u;
  let exp = (h >> 10u) & 0x1fu;
  let man = h & 0x3ffu;
  if (exp == 31u) { return sign | 0x7f800000u | (man << 13u); }
  if (exp != 0u) { return sign | ((exp + 112u) << 23u) | (man << 13u); }
  if (man == 0u) { return sign; }
  // A subnormal half is a normal float32: normalise the mantissa.
  let lead = 31u - firstLeadingBit(man); // leading zeros of the 32-bit word; man < 2^10
  let shift = lead - 21u;                // moves the leading one to bit 10
  return sign | ((113u - shift) << 23u) | (((man << shift) & 0x3ffu) << 13u);
}

// dst: float16 words (ceil(n / 2)); src: float32.
@compute @workgroup_size(WG)
fn to_half(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let words = (p.n + 1u) / 2u;
  for (var w = gid.x; w < words; w = w + nwg.x * WG) {
    let lo = half_bits(src[2u * w]);
    var hi = 0u;
    if (2u * w + 1u < p.n) { hi = half_bits(src[2u * w + 1u]); }
    dst[w] = lo | (hi << 16u);
  }
}

// dst: float32 (n); src: float16 words.
@compute @workgroup_size(WG)
fn to_float(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + nwg.x * WG) {
    let word = src[i / 2u];
    dst[i] = float_bits((word >> (16u * (i % 2u))) & 0xffffu);
  }
}
