// Pooling with the window compiled in (SKH x SKW, strides SSH x SSW, top padding PT) over planes
// whose rows are whole vec4s (W % 4 == 0). The two block kernels read an input or output element
// about once per block that needs it instead of once per window that holds it:
// pool_fwd_rows computes a 4 x ROWS block of outputs, reducing each input row it loads once
// across its 4 windows (max and the column of the max, or sum) and then folding that row into
// every output row whose window holds it (consecutive output rows share SKH - SSH input rows).
// pool_bwd_rows gathers the gradient of SSH input rows x 4 columns: the outputs covering them
// are the same for all, so each output's gradient and argmax are read once per block.
// pool_bwd_plane4 is pool.wgsl's plane walk with the plane zeroed in vec4.
// What measurements on lavapipe showed: the number of loads and stores decides (the maximum's
// NaN-aware compares cost next to nothing), and a rarely taken slow path inside a kernel costs
// every invocation (a branch's body runs under a mask even when no lane takes it).
// @include pool

override SSH: u32 = 1u;
override PT: u32 = 0u;
override ROWS: u32 = 2u; // at most 4 (b0..b3 below)
// 1 when a stored output's window reaches past column W (right padding): those columns are masked.
override CLIPW: u32 = 0u;

fn nan4(v: vec4<f32>) -> vec4<bool> { return (bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu)) > vec4<u32>(0x7f800000u); }

// Where v replaces the maximum m so far, scanning in row-major order: v is larger, or the
// first NaN (no later value replaces a NaN, as `v > NaN` is false).
fn wins(v: vec4<f32>, m: vec4<f32>) -> vec4<bool> { return (v > m) | (nan4(v) & !nan4(m)); }

// Input row i's part (m: max or sum, pos: where) of the 4 windows of output row oh0 + r.
fn fold(best: ptr<function, vec4<f32>>, at: ptr<function, vec4<i32>>, m: vec4<f32>, pos: vec4<i32>, i: u32, oh0: u32, r: u32) {
  let kh = i - r * SSH;
  if (r >= ROWS || i < r * SSH || kh >= SKH) { return; }
  if (OP == AVG) { *best += m; return; }
  // The window's first real row starts it (rows above the input are top padding).
  let oh = oh0 + r;
  let first = kh == select(0u, PT - oh * SSH, oh * SSH < PT);
  let take = wins(m, *best) | vec4<bool>(first);
  *best = select(*best, m, take);
  *at = select(*at, pos, take);
}

// Output row oh's 4 outputs from ow0, those inside the output.
fn store(best: vec4<f32>, at: vec4<i32>, plane: u32, oh: u32, ow0: u32) {
  for (var c = 0u; c < 4u; c++) {
    let ow = ow0 + c;
    let o = (plane * p.OH + oh) * p.OW + ow;
    if (oh < p.OH && ow < p.OW) {
      if (OP == AVG) { y[o] = best[c] / area(window(oh, ow)); } else { y[o] = best[c]; idx[o] = at[c]; }
    }
  }
}

// NaN is handled in the comparisons themselves (`wins`): a second scan of the windows where a
// NaN was read made every invocation 2-3x slower, though none took it (see above).
@compute @workgroup_size(WG)
fn pool_fwd_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let runs = (p.OW + 3u) / 4u;
  let bands = (p.OH + ROWS - 1u) / ROWS;
  let nseg = (3u * SSW + SKW + 3u) / 4u; // vec4s spanning the 4 windows of a row
  let nrows = (ROWS - 1u) * SSH + SKH; // input rows under ROWS output rows
  for (var t = gid.x; t < p.planes * bands * runs; t += nwg.x * WG) {
    let q = div_u(t, runs); // plane * bands + band
    let plane = div_u(q, bands);
    let oh0 = (q - plane * bands) * ROWS;
    let ow0 = (t - q * runs) * 4u;
    let c0 = ow0 * SSW;
    let cols = vec4<u32>(c0) + vec4<u32>(0u, SSW, 2u * SSW, 3u * SSW); // each window's first column
    // Max (or sum) and its position per output row, as separate variables: a function-scope
    // array indexed in a loop may be kept in memory rather than registers.
    var b0: vec4<f32>; var b1: vec4<f32>; var b2: vec4<f32>; var b3: vec4<f32>;
    var a0: vec4<i32>; var a1: vec4<i32>; var a2: vec4<i32>; var a3: vec4<i32>;
    for (var i = 0u; i < nrows; i++) {
      let ih = i32(oh0 * SSH + i) - i32(PT);
      let rb = ((plane * p.H + u32(ih)) * p.W + c0) / 4u;
      let inrow = ih >= 0 && ih < i32(p.H);
      var seg: array<f32, 16>;
      for (var j = 0u; j < 4u; j++) {
        if (j < nseg) {
          let v = x4[rb + j];
          seg[4u * j] = v.x; seg[4u * j + 1u] = v.y; seg[4u * j + 2u] = v.z; seg[4u * j + 3u] = v.w;
        }
      }
      // This row's part of the 4 windows: the first column is always inside the row.
      var m = vec4<f32>(seg[0], seg[SSW], seg[2u * SSW], seg[3u * SSW]);
      var k = vec4<u32>(0u);
      for (var kw = 1u; kw < SKW; kw++) {
        let v = vec4<f32>(seg[kw], seg[SSW + kw], seg[2u * SSW + kw], seg[3u * SSW + kw]);
        let inside = select(cols + vec4<u32>(kw) < vec4<u32>(p.W), vec4<bool>(true), CLIPW == 0u);
        if (OP == AVG) { m += select(vec4<f32>(0.0), v, inside); }
        else {
          let take = wins(v, m) & inside;
          m = select(m, v, take);
          k = select(k, vec4<u32>(kw), take);
        }
      }
      let pos = vec4<i32>(ih * i32(p.W)) + vec4<i32>(cols + k);
      if (inrow) {
        fold(&b0, &a0, m, pos, i, oh0, 0u);
        fold(&b1, &a1, m, pos, i, oh0, 1u);
        fold(&b2, &a2, m, pos, i, oh0, 2u);
        fold(&b3, &a3, m, pos, i, oh0, 3u);
      }
    }
    store(b0, a0, plane, oh0, ow0);
    if (ROWS > 1u) { store(b1, a1, plane, oh0 + 1u, ow0); }
    if (ROWS > 2u) { store(b2, a2, plane, oh0 + 2u, ow0); }
    if (ROWS > 3u) { store(b3, a3, plane, oh0 + 3u, ow0); }
  }
}

// The gradient of SSH input rows x 4 columns (padded rows [SSH u, SSH u + SSH)): the outputs
// covering them are at most ceil(SKH / SSH) rows by (SKW + 2) / SSW + 1 columns, each read once.
// Max adds an output's gradient where its saved argmax is; average where its window covers.
@compute @workgroup_size(WG)
fn pool_bwd_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let W4 = p.W / 4u;
  let blocks = (p.H + p.pt + SSH - 1u) / SSH;
  let DH = (SKH - 1u) / SSH + 1u;
  let DW = (SKW + 2u) / SSW + 1u;
  for (var t = gid.x; t < p.planes * blocks * W4; t += nwg.x * WG) {
    let q = div_u(t, W4); // plane * blocks + u
    let plane = div_u(q, blocks);
    let u = q - plane * blocks;
    let c0 = (t - q * W4) * 4u;
    let cols = vec4<i32>(i32(c0)) + vec4<i32>(0, 1, 2, 3);
    let tc = c0 + p.pl; // padded column of the first input
    let lo = select(0u, (tc + SSW - SKW) / SSW, tc + SSW >= SKW); // first output covering it
    var g0: vec4<f32>; var g1: vec4<f32>; var g2: vec4<f32>; var g3: vec4<f32>; // per input row (as b0..b3)
    for (var dh = 0u; dh < DH; dh++) {
      let oh = u + dh - (DH - 1u); // wraps above the first output row: skipped as >= OH
      for (var dw = 0u; dw < DW; dw++) {
        let ow = lo + dw;
        let o = (plane * p.OH + oh) * p.OW + ow;
        if (u + dh < DH - 1u || oh >= p.OH || ow >= p.OW) { continue; }
        var d = vec4<f32>(dy[o]);
        if (OP == AVG) {
          let w0 = i32(ow * SSW) - i32(p.pl);
          d = select(vec4<f32>(0.0), d / area(window(oh, ow)), (cols >= vec4<i32>(w0)) & (cols < vec4<i32>(w0 + i32(SKW))));
        }
        // Row r's share: for max where the argmax is (row r's offset against cols), for average
        // where the window's rows cover it.
        var a = 0;
        if (OP == MAX) { a = arg[o]; }
        let kh = u * SSH - oh * SSH; // u >= oh
        g0 += share(d, a, kh, u, 0u, cols);
        if (SSH > 1u) { g1 += share(d, a, kh, u, 1u, cols); }
        if (SSH > 2u) { g2 += share(d, a, kh, u, 2u, cols); }
        if (SSH > 3u) { g3 += share(d, a, kh, u, 3u, cols); }
      }
    }
    put(g0, plane, u, 0u, c0);
    if (SSH > 1u) { put(g1, plane, u, 1u, c0); }
    if (SSH > 2u) { put(g2, plane, u, 2u, c0); }
    if (SSH > 3u) { put(g3, plane, u, 3u, c0); }
  }
}

// An output's gradient d for the 4 inputs cols of padded row SSH u + r (kh + r rows into its window).
fn share(d: vec4<f32>, a: i32, kh: u32, u: u32, r: u32, cols: vec4<i32>) -> vec4<f32> {
  if (OP == AVG) { return select(vec4<f32>(0.0), d, kh + r < SKH); }
  let ih = i32(u * SSH + r) - i32(p.pt);
  return select(vec4<f32>(0.0), d, vec4<i32>(a - ih * i32(p.W)) == cols);
}

// Row r of block u (those inside the input), from column c0.
fn put(g: vec4<f32>, plane: u32, u: u32, r: u32, c0: u32) {
  let ih = i32(u * SSH + r) - i32(p.pt);
  if (ih >= 0 && ih < i32(p.H)) { dx4[(plane * p.H + u32(ih)) * (p.W / 4u) + c0 / 4u] = g; }
}

// One invocation per plane, as pool_bwd_plane, zeroing the plane four values at a time
// (planes of a multiple of 4 values, so each starts on a vec4).
@compute @workgroup_size(64)
fn pool_bwd_plane4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let size = p.H * p.W;
  for (var plane = gid.x; plane < p.planes; plane += nwg.x * 64u) {
    let base = plane * size;
    for (var i = base / 4u; i < (base + size) / 4u; i++) { dx4[i] = vec4<f32>(0.0); }
    for (var oh = 0u; oh < p.OH; oh++) {
      let orow = (plane * p.OH + oh) * p.OW;
      for (var ow = 0u; ow < p.OW; ow++) {
        let o = orow + ow;
        if (OP == MAX) { let e = base + u32(arg[o]); dx4[e / 4u][e % 4u] += dy[o]; continue; }
        let win = window(oh, ow);
        let g = dy[o] / area(win);
        for (var ih = win.x; ih < win.z; ih++) {
          for (var iw = win.y; iw < win.w; iw++) { let e = base + u32(ih) * p.W + u32(iw); dx4[e / 4u][e % 4u] += g; }
        }
      }
    }
  }
}
