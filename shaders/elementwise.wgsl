// Elementwise kernels: unary (with two scalar operands), binary and ternary `where`, with
// NumPy broadcasting expressed as per-operand strides (stride 0 on a broadcast axis).
// OP is a pipeline-overridable constant, so each op compiles to its own branch-free pipeline.
// Storage is `st` (f32, or f16 in the float16 form, see engine/kernels/shaders.ts): values are
// loaded into f32, computed in f32 and rounded once on store.

struct Params {
  n: u32,
  rank: u32,
  alpha: f32,
  beta: f32,
  shape: array<vec4<u32>, 2>,
  sa: array<vec4<u32>, 2>,
  sb: array<vec4<u32>, 2>,
  sc: array<vec4<u32>, 2>,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<st>;
@group(0) @binding(2) var<storage, read> a: array<st>;
@group(0) @binding(3) var<storage, read> b: array<st>;
@group(0) @binding(4) var<storage, read> c: array<st>;

override OP: u32 = 0u; // the op's position in the generated table
const WG: u32 = 256u;

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

// The op switches are generated from the op records (engine/ops/elementwise.ts): each case is
// one record's WGSL expression in x (and y; a binary op's scalar form reads y from p.alpha).
fn unary_op(x: f32) -> f32 {
  switch OP {
    // @generated unary-cases
    default: { return x; }
  }
}

fn binary_op(x: f32, y: f32) -> f32 {
  switch OP {
    // @generated binary-cases
    default: { return x; }
  }
}

// Special values built at run time: WGSL rejects inf and NaN in constant expressions.
fn nan() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }

// NaN tested on the bits: drivers may fold `x != x` to false, and WGSL's min, max and clamp
// may return either operand for NaN, so NaN propagation (PyTorch's rule) is spelled out.
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

fn min_nan(x: f32, y: f32) -> f32 { return select(select(min(x, y), y, is_nan(y)), x, is_nan(x)); }
fn max_nan(x: f32, y: f32) -> f32 { return select(select(max(x, y), y, is_nan(y)), x, is_nan(x)); }
fn clamp_nan(x: f32, lo: f32, hi: f32) -> f32 { return min_nan(max_nan(x, lo), hi); }

// Logistic function, stable for large |x|: exp never overflows.
fn sigmoid_stable(x: f32) -> f32 {
  let e = exp(-abs(x));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), x >= 0.0);
}

// tanh with full relative precision: (1 - e) / (1 + e) with e = exp(-2|x|) cancels for small
// |x| (tanh(1e-8) came out as 3e-8), so below 0.25 the odd Taylor series is used instead
// (terms to x^9; the first omitted one is below 1e-8 relative there). exp(-2|x|) never overflows.
fn tanh_stable(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.25) {
    let z = x * x;
    return x + x * z * (-1.0 / 3.0 + z * (2.0 / 15.0 + z * (-17.0 / 315.0 + z * (62.0 / 2835.0))));
  }
  let e = exp(-2.0 * a);
  return select(-1.0, 1.0, x > 0.0) * (1.0 - e) / (1.0 + e);
}

// pow(x, e) in WGSL is undefined for x < 0; integer exponents get the sign right here.
fn pow_scalar(x: f32, e: f32) -> f32 {
  if (e == 2.0) { return x * x; }
  if (e == 1.0) { return x; }
  if (e == 0.0) { return 1.0; }
  let m = pow(abs(x), e);
  if (x < 0.0 && fract(e) == 0.0) {
    return select(m, -m, fract(e * 0.5) != 0.0);
  }
  if (x == 0.0) { return select(0.0, 1.0 / abs(x), e < 0.0); }
  return select(m, nan(), x < 0.0);
}

// Offsets of output element i in operands whose strides are sa, sb and sc.
fn offsets(i: u32) -> vec3<u32> {
  var rem = i;
  var o = vec3<u32>(0u, 0u, 0u);
  for (var d = i32(p.rank) - 1; d >= 0; d = d - 1) {
    let k = u32(d);
    let dim = at(p.shape, k);
    let idx = rem % dim;
    rem = rem / dim;
    o = o + idx * vec3<u32>(at(p.sa, k), at(p.sb, k), at(p.sc, k));
  }
  return o;
}

fn stride_of(wg: vec3<u32>) -> u32 { return wg.x * WG; }

@compute @workgroup_size(WG)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + stride_of(nwg)) {
    out[i] = st(unary_op(f32(a[i])));
  }
}

@compute @workgroup_size(WG)
fn binary(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + stride_of(nwg)) {
    let o = offsets(i);
    out[i] = st(binary_op(f32(a[o.x]), f32(b[o.y])));
  }
}

// Both operands contiguous and of the output's shape: no index arithmetic.
@compute @workgroup_size(WG)
fn binary_same(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + stride_of(nwg)) {
    out[i] = st(binary_op(f32(a[i]), f32(b[i])));
  }
}

@compute @workgroup_size(WG)
fn where_select(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + stride_of(nwg)) {
    let o = offsets(i);
    out[i] = select(c[o.z], b[o.y], f32(a[o.x]) != 0.0);
  }
}

// vec4 variants for contiguous operands whose length is a multiple of 4: a quarter of the
// invocations and 16-byte loads, which is what memory-bound kernels need.
@group(0) @binding(5) var<storage, read_write> out4: array<vec4<st>>;
@group(0) @binding(6) var<storage, read> a4: array<vec4<st>>;
@group(0) @binding(7) var<storage, read> b4: array<vec4<st>>;

@compute @workgroup_size(WG)
fn unary4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n / 4u; i = i + stride_of(nwg)) {
    let v = vec4<f32>(a4[i]);
    out4[i] = vec4<st>(vec4<f32>(unary_op(v.x), unary_op(v.y), unary_op(v.z), unary_op(v.w)));
  }
}

@compute @workgroup_size(WG)
fn binary_same4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n / 4u; i = i + stride_of(nwg)) {
    let x = vec4<f32>(a4[i]);
    let y = vec4<f32>(b4[i]);
    out4[i] = vec4<st>(vec4<f32>(binary_op(x.x, y.x), binary_op(x.y, y.y), binary_op(x.z, y.z), binary_op(x.w, y.w)));
  }
}

// Gradient accumulation (autograd's only kernel of its own): out = a + b, same shapes.
@compute @workgroup_size(WG)
fn accumulate(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + stride_of(nwg)) {
    out[i] = st(f32(a[i]) + f32(b[i]));
  }
}

@compute @workgroup_size(WG)
fn accumulate4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n / 4u; i = i + stride_of(nwg)) {
    out4[i] = vec4<st>(vec4<f32>(a4[i]) + vec4<f32>(b4[i]));
  }
}
