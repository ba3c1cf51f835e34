enable subgroups;
// Row reductions with subgroup operations, for adapters with the `subgroups` feature: the
// reductions, codes, NaN and tie rules of reduce.wgsl (included below), with each subgroup
// folded by subgroupAdd / subgroupMax / subgroupMin and only one partial per subgroup combined
// through workgroup memory.
// - reduce_rows_sg:     one workgroup per row (rows of any length).
// - reduce_split_sg:    many workgroups per row: workgroup (c, r) folds CHUNK elements of row r
//                       into part[r * chunks + c] (chunks = the grid's x size);
//   reduce_partials_sg: then one workgroup per row folds its `len` partials (as values and
//                       indices) into out.
// Correct for any subgroup size and any assignment of invocations to subgroups (see
// subgroup-slots.wgsl).

// @include reduce

const NONE: u32 = 0xffffffffu;
const CHUNK: u32 = 4096u; // elements per workgroup in reduce_split_sg

@group(0) @binding(3) var<storage, read_write> part: array<vec2<u32>>;

// One partial (value, index) per subgroup.
var<workgroup> pv: array<f32, WG>;
var<workgroup> pi: array<u32, WG>;

// @include subgroup-slots

fn nan_value() -> f32 { var bits = 0x7fc00000u; return bitcast<f32>(bits); }

// Combines every invocation's (v, vi) into one (value, index) for the workgroup; the result is
// valid in invocation 0. Call in uniform control flow.
fn combine(lid: u32, v: f32, vi: u32) -> vec2<u32> {
  var sv = 0.0;
  var si = NONE;
  if (OP == SUM) {
    sv = subgroupAdd(v);
  } else {
    // NaN wins with its lowest index; otherwise the extreme value with its lowest index.
    let nan_at = subgroupMin(select(NONE, vi, is_nan(v)));
    let clean = select(v, identity(), is_nan(v));
    let hi = subgroupMax(clean);
    let lo = subgroupMin(clean);
    let m = select(lo, hi, OP == MAX || OP == ARGMAX);
    let at = subgroupMin(select(NONE, vi, clean == m));
    sv = select(m, nan_value(), nan_at != NONE);
    si = select(at, nan_at, nan_at != NONE);
  }
  if (sg_leader) { pv[sg_rank] = sv; pi[sg_rank] = si; }
  workgroupBarrier();
  var r = vec2<u32>(0u, NONE);
  if (lid == 0u) {
    var a = pv[0];
    var ai = pi[0];
    for (var s = 1u; s < sg_count; s++) {
      if (OP == SUM) { a = a + pv[s]; }
      else if (pi[s] != NONE && (ai == NONE || better(a, ai, pv[s], pi[s]))) { a = pv[s]; ai = pi[s]; }
    }
    r = vec2<u32>(bitcast<u32>(a), ai);
  }
  workgroupBarrier();
  return r;
}

// This invocation's share of x[base + start .. base + stop), strided by the workgroup size.
fn fold_range(base: u32, start: u32, stop: u32, lid: u32) -> vec2<u32> {
  var v = identity();
  var vi = NONE;
  for (var k = start + lid; k < stop; k = k + WG) {
    let w = x[base + k];
    if (OP == SUM) { v = v + w; } else if (better(v, vi, w, k)) { v = w; vi = k; }
  }
  return vec2<u32>(bitcast<u32>(v), vi);
}

@compute @workgroup_size(WG)
fn reduce_rows_sg(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
  subgroup_slots(lid);
  for (var row = wid.x; row < p.rows; row = row + nwg.x) {
    let mine = fold_range(row * p.len, 0u, p.len, lid);
    let r = combine(lid, bitcast<f32>(mine.x), mine.y);
    if (lid == 0u) { emit(row, bitcast<f32>(r.x), r.y); }
  }
}

@compute @workgroup_size(WG)
fn reduce_split_sg(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
  subgroup_slots(lid);
  let start = wid.x * CHUNK;
  let stop = min(start + CHUNK, p.len);
  for (var row = wid.y; row < p.rows; row = row + nwg.y) {
    let mine = fold_range(row * p.len, start, stop, lid);
    let r = combine(lid, bitcast<f32>(mine.x), mine.y);
    if (lid == 0u) { part[row * nwg.x + wid.x] = r; }
  }
}

// p.len here is the number of partials per row.
@compute @workgroup_size(WG)
fn reduce_partials_sg(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
  subgroup_slots(lid);
  for (var row = wid.x; row < p.rows; row = row + nwg.x) {
    var v = identity();
    var vi = NONE;
    for (var k = lid; k < p.len; k = k + WG) {
      let q = part[row * p.len + k];
      let w = bitcast<f32>(q.x);
      if (OP == SUM) { v = v + w; } else if (q.y != NONE && better(v, vi, w, q.y)) { v = w; vi = q.y; }
    }
    let r = combine(lid, v, vi);
    if (lid == 0u) { emit(row, bitcast<f32>(r.x), r.y); }
  }
}
