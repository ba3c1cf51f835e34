// Row reductions over a contiguous [rows, len] input: sum, max, min, argmax, argmin.
// Results are written as raw 32-bit words: f32 bits for values, i32 for arg reductions.
// `reduce_rows` gives each row a workgroup (long rows); `reduce_short` gives each row one
// invocation (many short rows). The input is `st`: f32, or f16 in the float16 form (results are
// f32 either way).

struct Params {
  rows: u32,
  len: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> x: array<st>;

// The reductions, by the names the engine asks for (reduceRowsKernel reads these codes).
const SUM: u32 = 0u;
const MAX: u32 = 1u;
const MIN: u32 = 2u;
const ARGMAX: u32 = 3u;
const ARGMIN: u32 = 4u;
override OP: u32;
const WG: u32 = 256u;

// Built at run time: WGSL rejects inf in constant expressions.
fn inf() -> f32 { var bits = 0x7f800000u; return bitcast<f32>(bits); }

fn identity() -> f32 {
  switch OP {
    case SUM: { return 0.0; }
    case MAX, ARGMAX: { return -inf(); }
    default: { return inf(); }
  }
}

// NaN tested on the bits: a driver may fold `x != x` to false (lavapipe did, so max ignored NaN).
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

// Combine (v, i) with (w, j); ties keep the lower index, NaN wins like NumPy and PyTorch.
fn better(v: f32, i: u32, w: f32, j: u32) -> bool {
  if (is_nan(w)) { return !is_nan(v) || j < i; }
  if (is_nan(v)) { return false; }
  if (OP == MAX || OP == ARGMAX) { return w > v || (w == v && j < i); }
  return w < v || (w == v && j < i);
}

fn emit(row: u32, v: f32, i: u32) {
  if (OP == ARGMAX || OP == ARGMIN) { out[row] = i; } else { out[row] = bitcast<u32>(v); }
}

var<workgroup> sv: array<f32, WG>;
var<workgroup> si: array<u32, WG>;

@compute @workgroup_size(WG)
fn reduce_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = wid.x; row < p.rows; row = row + nwg.x) {
    let base = row * p.len;
    var v = identity();
    var vi = 0xffffffffu;
    for (var k = lid.x; k < p.len; k = k + WG) {
      let w = f32(x[base + k]);
      if (OP == SUM) { v = v + w; } else if (better(v, vi, w, k)) { v = w; vi = k; }
    }
    sv[lid.x] = v;
    si[lid.x] = vi;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s = s >> 1u) {
      if (lid.x < s) {
        let w = sv[lid.x + s];
        let j = si[lid.x + s];
        if (OP == SUM) { sv[lid.x] = sv[lid.x] + w; }
        else if (j != 0xffffffffu && better(sv[lid.x], si[lid.x], w, j)) { sv[lid.x] = w; si[lid.x] = j; }
      }
      workgroupBarrier();
    }
    if (lid.x == 0u) { emit(row, sv[0], si[0]); }
    workgroupBarrier();
  }
}

@compute @workgroup_size(WG)
fn reduce_short(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var row = gid.x; row < p.rows; row = row + nwg.x * WG) {
    let base = row * p.len;
    var v = identity();
    var vi = 0xffffffffu;
    for (var k = 0u; k < p.len; k = k + 1u) {
      let w = f32(x[base + k]);
      if (OP == SUM) { v = v + w; } else if (better(v, vi, w, k)) { v = w; vi = k; }
    }
    emit(row, v, vi);
  }
}
