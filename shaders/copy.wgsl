// Data movement on raw 32-bit words (so int32 tensors move bit-exactly): a fill and a strided
// copy. The strided copy walks an iteration shape and reads and writes through independent
// strides and offsets, which covers permute, slice, broadcast, pad and concat.
// The float16 form (copy@f16, see engine/kernels/shaders.ts) moves 16-bit values with the same
// strided and transpose code; fill and convert are only run on 32-bit words.

struct Params {
  n: u32,
  rank: u32,
  src_offset: u32,
  dst_offset: u32,
  shape: array<vec4<u32>, 2>,
  src_strides: array<vec4<u32>, 2>,
  dst_strides: array<vec4<u32>, 2>,
}

@group(1) @binding(0) var<uniform> p: Params;
alias word = u32; // @storage

@group(0) @binding(1) var<storage, read_write> dst: array<word>;
@group(0) @binding(2) var<storage, read> src: array<word>;

const WG: u32 = 256u;

fn at(v: array<vec4<u32>, 2>, i: u32) -> u32 { return v[i / 4u][i % 4u]; }

@compute @workgroup_size(WG)
fn strided(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  if (p.rank == 1u) {
    // Coalesced to one axis (contiguous copies, scalar broadcasts): no index arithmetic.
    let ss = p.src_strides[0].x;
    let ds = p.dst_strides[0].x;
    for (var i = gid.x; i < p.n; i = i + nwg.x * WG) { dst[p.dst_offset + i * ds] = src[p.src_offset + i * ss]; }
    return;
  }
  for (var i = gid.x; i < p.n; i = i + nwg.x * WG) {
    var rem = i;
    var s = p.src_offset;
    var d = p.dst_offset;
    for (var k = i32(p.rank) - 1; k >= 0; k = k - 1) {
      let dim = at(p.shape, u32(k));
      let idx = rem % dim;
      rem = rem / dim;
      s = s + idx * at(p.src_strides, u32(k));
      d = d + idx * at(p.dst_strides, u32(k));
    }
    dst[d] = src[s];
  }
}

// Fill: src_offset carries the 32-bit pattern of the value.
@compute @workgroup_size(WG)
fn fill(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + nwg.x * WG) {
    dst[p.dst_offset + i] = word(p.src_offset);
  }
}

// Batched 2-D transpose: src is [batch, rows, cols] contiguous, dst [batch, cols, rows].
// 16 x 16 tiles pass through workgroup memory so both the reads and the writes are row-wise.
// shape = (rows, cols, batch); src_offset / dst_offset as in `strided`.
const TILE: u32 = 16u;
var<workgroup> tile: array<array<word, TILE + 1u>, TILE>; // +1: no bank conflicts on the transposed read

@compute @workgroup_size(TILE, TILE)
fn transpose(@builtin(local_invocation_id) l: vec3<u32>, @builtin(workgroup_id) w: vec3<u32>) {
  let rows = at(p.shape, 0u);
  let cols = at(p.shape, 1u);
  let b = w.z;
  let r = w.y * TILE + l.y;
  let c = w.x * TILE + l.x;
  if (r < rows && c < cols) { tile[l.y][l.x] = src[p.src_offset + (b * rows + r) * cols + c]; }
  workgroupBarrier();
  let orow = w.x * TILE + l.y; // a column of src is a row of dst
  let ocol = w.y * TILE + l.x;
  if (orow < cols && ocol < rows) { dst[p.dst_offset + (b * cols + orow) * rows + ocol] = tile[l.x][l.y]; }
}

// Conversion between float32 and int32 (float -> int truncates), by the codes below.
const INT_TO_FLOAT: u32 = 0u;
const FLOAT_TO_INT: u32 = 1u;
override OP: u32;

@compute @workgroup_size(WG)
fn convert(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.n; i = i + nwg.x * WG) {
    let v = u32(src[i]);
    if (OP == INT_TO_FLOAT) { dst[i] = word(bitcast<u32>(f32(bitcast<i32>(v)))); }
    else { dst[i] = word(bitcast<u32>(i32(bitcast<f32>(v)))); }
  }
}
