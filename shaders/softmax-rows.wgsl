// Fragment (included by softmax.wgsl and softmax-subgroup.wgsl, not a family of its own): the
// row operations of the softmax family. Every cross-invocation sum or max of a row goes through
// wg_reduce(lid, v, is_max), after reduce_setup(lid) at the entry's start, both defined by the
// including family (in workgroup memory, or with subgroup operations).
// The input x is `st`: f32, or f16 in the float16 form (read into f32); outputs stay f32.

struct Params {
  rows: u32,
  cols: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read> x: array<st>;
@group(0) @binding(3) var<storage, read> labels: array<i32>;
@group(0) @binding(4) var<storage, read> g: array<f32>;
@group(0) @binding(5) var<storage, read> targets: array<f32>;

// The row operations, by the names the engine asks for (softmax.ts reads these codes).
const SOFTMAX: u32 = 0u;
const LOG_SOFTMAX: u32 = 1u;
const CROSS_ENTROPY: u32 = 2u;
const CROSS_ENTROPY_BACKWARD: u32 = 3u;
const CROSS_ENTROPY_SOFT: u32 = 4u;
const CROSS_ENTROPY_SOFT_BACKWARD: u32 = 5u;
override OP: u32;
const WG: u32 = 64u;

// Built at run time: WGSL rejects NaN and inf in constant expressions.
fn nan() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }
fn neg_inf() -> f32 { var bits = 0xff800000u; return bitcast<f32>(bits); }

fn row_max(base: u32, lid: u32) -> f32 {
  var m = neg_inf();
  for (var k = lid; k < p.cols; k = k + WG) { m = max(m, f32(x[base + k])); }
  return wg_reduce(lid, m, true);
}

fn row_sum_exp(base: u32, lid: u32, m: f32) -> f32 {
  var s = 0.0;
  for (var k = lid; k < p.cols; k = k + WG) { s = s + exp(f32(x[base + k]) - m); }
  return wg_reduce(lid, s, false);
}

// Sum of exp(x_k - m) over the classes other than `skip`.
fn row_sum_exp_others(base: u32, lid: u32, m: f32, skip: u32) -> f32 {
  var s = 0.0;
  for (var k = lid; k < p.cols; k = k + WG) { s = s + select(exp(f32(x[base + k]) - m), 0.0, k == skip); }
  return wg_reduce(lid, s, false);
}

// log(1 + u) for u >= 0 without the rounding of 1 + u or the loose accuracy WGSL allows log
// near 1 (2^-21 absolute): for u <= 1, 2 atanh(t) with t = u / (2 + u) <= 1/3 as a series.
fn log1p(u: f32) -> f32 {
  if (u > 1.0) { return log(1.0 + u); }
  let t = u / (2.0 + u);
  let t2 = t * t;
  var sum = 1.0 / 17.0;
  for (var k = 15.0; k > 0.0; k = k - 2.0) { sum = 1.0 / k + t2 * sum; }
  return 2.0 * t * sum;
}

// Sum of the row's targets, or of targets times logits.
fn row_sum(base: u32, lid: u32, weighted: bool) -> f32 {
  var s = 0.0;
  for (var k = lid; k < p.cols; k = k + WG) { s = s + targets[base + k] * select(1.0, f32(x[base + k]), weighted); }
  return wg_reduce(lid, s, false);
}

// One entry point, specialised by OP:
// 0 softmax, 1 log_softmax, 2 xent (labels), 3 xent backward (labels),
// 4 xent (probability targets), 5 xent backward (probability targets).
@compute @workgroup_size(WG)
fn rows(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
  reduce_setup(l.x);
  let soft = OP == CROSS_ENTROPY_SOFT || OP == CROSS_ENTROPY_SOFT_BACKWARD;
  let with_labels = OP == CROSS_ENTROPY || OP == CROSS_ENTROPY_BACKWARD;
  for (var row = w.x; row < p.rows; row = row + nwg.x) {
    let base = row * p.cols;
    let m = row_max(base, l.x);
    let s = row_sum_exp(base, l.x, m);
    let lse = m + log(s);
    var tsum = 1.0;
    if (soft) { tsum = row_sum(base, l.x, false); }
    var y = 0;
    var bad = false;
    var others = 0.0;
    if (with_labels) {
      y = labels[row];
      bad = y < 0 || u32(y) >= p.cols;
      // Invocation-uniform: every invocation of the row reads the same label.
      others = row_sum_exp_others(base, l.x, m, select(u32(y), 0u, bad));
    }
    if (OP == CROSS_ENTROPY || OP == CROSS_ENTROPY_SOFT) {
      // Per-row losses: one value per row.
      var loss = 0.0;
      if (OP == CROSS_ENTROPY_SOFT) { loss = tsum * lse - row_sum(base, l.x, true); }
      else if (!bad) {
        let zy = f32(x[base + u32(y)]) - m;
        // Near the top, log(1 + others / e^zy) keeps the tiny loss; far below it, lse - x_y has no cancellation.
        loss = select(log1p(others / exp(zy)), -zy + log(s), zy < -1.0);
      }
      if (l.x == 0u) { out[row] = select(loss, nan(), bad); }
    } else {
      for (var k = l.x; k < p.cols; k = k + WG) {
        let e = exp(f32(x[base + k]) - m) / s;
        var v = e;
        switch OP {
          case LOG_SOFTMAX: { v = f32(x[base + k]) - lse; }
          case CROSS_ENTROPY_BACKWARD: { v = select(select(e, -others / s, i32(k) == y) * g[row], nan(), bad); }
          case CROSS_ENTROPY_SOFT_BACKWARD: { v = (e * tsum - targets[base + k]) * g[row]; }
          default: {}
        }
        out[base + k] = v;
      }
    }
  }
}
