// 2-D pooling over NCHW planes. Windows never read padding: max ignores padded positions and
// average divides by the number of real inputs in the window (Keras' 'same' pooling).
// Three ways to the input gradient, none needing atomics where windows overlap:
// pool_bwd gathers (each input sums the gradients of the windows that contain it), pool_bwd_vec4
// the same for four inputs of a row at a time; pool_bwd_phase scatters one phase of outputs
// whose windows cannot overlap (outputs spaced ceil(k / s) apart in each axis) into a zeroed dx.
// Activations and gradients are `st`: f32, or f16 in the float16 form (loads widen to f32, sums
// in f32, one rounding on store; the scattering backward variants stay float32-only).

struct Params {
  planes: u32, H: u32, W: u32, OH: u32,
  OW: u32, KH: u32, KW: u32, sh: u32,
  sw: u32, pt: u32, pl: u32, phase: u32,
}

alias st = f32; // @storage

@group(1) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<st>;
@group(0) @binding(2) var<storage, read_write> y: array<st>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;
@group(0) @binding(4) var<storage, read> dy: array<st>;
@group(0) @binding(5) var<storage, read> arg: array<i32>;
@group(0) @binding(6) var<storage, read_write> dx: array<st>;

const WG: u32 = 256u;

// The clipped window of output (oh, ow): [h0, h1) x [w0, w1) in input coordinates.
fn window(oh: u32, ow: u32) -> vec4<i32> {
  let h0 = i32(oh * p.sh) - i32(p.pt);
  let w0 = i32(ow * p.sw) - i32(p.pl);
  return vec4<i32>(max(h0, 0), max(w0, 0), min(h0 + i32(p.KH), i32(p.H)), min(w0 + i32(p.KW), i32(p.W)));
}

// n / d without an integer division, which lavapipe runs one lane at a time (x86 has no vector
// integer division): a float quotient, corrected by one step each way. Exact while the quotient
// is below 2^22 (the float estimate is then off by at most one) and n below 2^31. Conversions go
// through i32, which x86 converts in vectors (u32 <-> f32 it does not).
fn div_u(n: u32, d: u32) -> u32 {
  let q = i32(f32(i32(n)) / f32(i32(d)));
  let r = i32(n) - q * i32(d);
  return u32(q + select(0, 1, r >= i32(d)) - select(0, 1, r < 0));
}

// Outputs whose windows contain input i (ih or iw), along one axis: [first, last].
fn covering(i: u32, pad: u32, k: u32, s: u32, n: u32) -> vec2<i32> {
  let t = i + pad;
  // ceil((t - k + 1) / s) = floor((t - k + s) / s) where t - k + 1 >= 0, else 0.
  let lo = select(0u, div_u(t + s - k, s), t + 1u >= k);
  return vec2<i32>(i32(lo), min(i32(div_u(t, s)), i32(n) - 1));
}

// The pooling kinds, by the names the engine asks for (pool.ts reads these codes).
const MAX: u32 = 0u;
const AVG: u32 = 1u;
override OP: u32;

// NaN tested on the bits (a driver may fold `v != v` to false): a NaN in a window wins, as in PyTorch.
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

// Number of real inputs in a clipped window.
fn area(win: vec4<i32>) -> f32 { return f32((win.z - win.x) * (win.w - win.y)); }

// The window [h0, h1) x [w0, w1) of plane `base`: max (NaN wins), its index in the plane, sum.
struct Pooled { best: f32, at: i32, sum: f32 }
fn pool_window(base: u32, win: vec4<i32>) -> Pooled {
  var best = f32(x[base + u32(win.x) * p.W + u32(win.y)]);
  var bi = win.x * i32(p.W) + win.y;
  var sum = 0.0;
  for (var ih = win.x; ih < win.z; ih++) {
    let row = base + u32(ih) * p.W;
    for (var iw = win.y; iw < win.w; iw++) {
      let v = f32(x[row + u32(iw)]);
      if (OP == AVG) { sum += v; }
      else if ((v > best && !is_nan(best)) || (is_nan(v) && !is_nan(best))) { best = v; bi = ih * i32(p.W) + iw; }
    }
  }
  return Pooled(best, bi, sum);
}

// RUN consecutive outputs of one output row per invocation: the divisions that locate an
// output (which lavapipe runs one lane at a time) are paid once per run, not per output.
override RUN: u32 = 4u;

@compute @workgroup_size(WG)
fn pool_fwd_run(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let runs = (p.OW + RUN - 1u) / RUN;
  let total = p.planes * p.OH * runs;
  for (var t = gid.x; t < total; t += nwg.x * WG) {
    let row = div_u(t, runs); // plane * OH + oh
    let plane = div_u(row, p.OH);
    let h0 = i32((row - plane * p.OH) * p.sh) - i32(p.pt);
    let base = plane * p.H * p.W;
    let ow0 = (t - row * runs) * RUN;
    for (var ow = ow0; ow < min(ow0 + RUN, p.OW); ow++) {
      let w0 = i32(ow * p.sw) - i32(p.pl);
      let win = vec4<i32>(max(h0, 0), max(w0, 0), min(h0 + i32(p.KH), i32(p.H)), min(w0 + i32(p.KW), i32(p.W)));
      let r = pool_window(base, win);
      let o = row * p.OW + ow;
      if (OP == MAX) { y[o] = st(r.best); idx[o] = r.at; } else { y[o] = st(r.sum / area(win)); }
    }
  }
}

// Specialised forward: window width and strides are pipeline constants (so the loops unroll),
// each invocation computes 4 outputs of a row from the input columns they span, read as whole
// vec4s (planes with W % 4 == 0 and no left padding, so every span starts on a vec4).
override SKH: u32 = 1u;
override SKW: u32 = 1u;
override SSW: u32 = 1u;
@group(0) @binding(7) var<storage, read> x4: array<vec4<st>>;

@compute @workgroup_size(WG)
fn pool_fwd_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let runs = (p.OW + 3u) / 4u;
  let span = 3u * SSW + SKW; // columns the 4 windows cover
  for (var t = gid.x; t < p.planes * p.OH * runs; t += nwg.x * WG) {
    let row = div_u(t, runs); // plane * OH + oh
    let plane = div_u(row, p.OH);
    let h0 = i32((row - plane * p.OH) * p.sh) - i32(p.pt);
    let ow0 = (t - row * runs) * 4u;
    let c0 = ow0 * SSW;
    var best = vec4<f32>(0.0);
    var at = vec4<i32>(-1);
    var sum = vec4<f32>(0.0);
    for (var kh = 0u; kh < SKH; kh++) {
      let ih = h0 + i32(kh);
      if (ih < 0 || ih >= i32(p.H)) { continue; }
      let rb = ((plane * p.H + u32(ih)) * p.W + c0) / 4u;
      var seg: array<f32, 16>;
      for (var j = 0u; j < 4u; j++) {
        if (4u * j < span) { let v = vec4<f32>(x4[rb + j]); seg[4u * j] = v.x; seg[4u * j + 1u] = v.y; seg[4u * j + 2u] = v.z; seg[4u * j + 3u] = v.w; }
      }
      for (var r = 0u; r < 4u; r++) {
        for (var kw = 0u; kw < SKW; kw++) {
          let col = r * SSW + kw;
          let v = seg[col];
          let real = c0 + col < p.W; // inside the row (right padding is not)
          if (OP == AVG) { sum[r] += select(0.0, v, real); continue; }
          let take = real && (at[r] < 0 || (!is_nan(best[r]) && (v > best[r] || is_nan(v))));
          best[r] = select(best[r], v, take);
          at[r] = select(at[r], ih * i32(p.W) + i32(c0 + col), take);
        }
      }
    }
    for (var r = 0u; r < 4u; r++) {
      let ow = ow0 + r;
      if (ow >= p.OW) { break; }
      let o = row * p.OW + ow;
      if (OP == MAX) { y[o] = st(best[r]); idx[o] = at[r]; }
      else { y[o] = st(sum[r] / area(window(row - plane * p.OH, ow))); }
    }
  }
}

// dx = 0, four values at a time (the scatter's starting point; sizes a multiple of 4).
@group(0) @binding(8) var<storage, read_write> dx4: array<vec4<st>>;
@compute @workgroup_size(WG)
fn pool_zero4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var i = gid.x; i < p.planes * p.H * p.W / 4u; i += nwg.x * WG) { dx4[i] = vec4<st>(vec4<f32>(0.0)); }
}

// Gather, four inputs of a row per invocation (W % 4 == 0): the outputs whose windows cover
// any of the four are visited once each, and the four sums stored as one vec4.
@compute @workgroup_size(WG)
fn pool_bwd_vec4(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let W4 = p.W / 4u;
  for (var t = gid.x; t < p.planes * p.H * W4; t += nwg.x * WG) {
    let r = div_u(t, W4); // plane * H + ih
    let c0 = (t - r * W4) * 4u;
    let plane = div_u(r, p.H);
    let ih = r - plane * p.H;
    let hs = covering(ih, p.pt, p.KH, p.sh, p.OH);
    let wa = covering(c0, p.pl, p.KW, p.sw, p.OW);
    let wb = covering(c0 + 3u, p.pl, p.KW, p.sw, p.OW);
    let cols = vec4<i32>(i32(c0)) + vec4<i32>(0, 1, 2, 3);
    var g = vec4<f32>(0.0);
    for (var oh = hs.x; oh <= hs.y; oh++) {
      let orow = (plane * p.OH + u32(oh)) * p.OW;
      for (var ow = wa.x; ow <= wb.y; ow++) {
        let o = orow + u32(ow);
        if (OP == MAX) {
          // The maximum's position relative to this row's first column.
          let at = vec4<i32>(arg[o] - i32(ih * p.W));
          g += select(vec4<f32>(0.0), vec4<f32>(f32(dy[o])), at == cols);
        } else {
          let w0 = ow * i32(p.sw) - i32(p.pl);
          g += select(vec4<f32>(0.0), vec4<f32>(f32(dy[o]) / area(window(u32(oh), u32(ow)))), (cols >= vec4<i32>(w0)) & (cols < vec4<i32>(w0 + i32(p.KW))));
        }
      }
    }
    dx4[t] = vec4<st>(g);
  }
}

// One invocation per plane, walking its outputs in order: no other invocation writes the plane,
// so it zeroes the plane and then adds each output's gradient, in one dispatch (enough planes
// keep every lane busy: the table rule asks for many).
@compute @workgroup_size(64)
fn pool_bwd_plane(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  for (var plane = gid.x; plane < p.planes; plane += nwg.x * 64u) {
    let base = plane * p.H * p.W;
    for (var i = base; i < base + p.H * p.W; i++) { dx[i] = st(0.0); }
    for (var oh = 0u; oh < p.OH; oh++) {
      let orow = (plane * p.OH + oh) * p.OW;
      for (var ow = 0u; ow < p.OW; ow++) {
        let o = orow + ow;
        if (OP == MAX) { let i = base + u32(arg[o]); dx[i] = st(f32(dx[i]) + f32(dy[o])); continue; }
        let win = window(oh, ow);
        let g = f32(dy[o]) / area(win);
        for (var ih = win.x; ih < win.z; ih++) {
          for (var iw = win.y; iw < win.w; iw++) { dx[base + u32(ih) * p.W + u32(iw)] = st(f32(dx[base + u32(ih) * p.W + u32(iw)]) + g); }
        }
      }
    }
  }
}

// One phase (a, b) = (phase / Q, phase % Q) of the scatter, Q = ceil(KW / sw): outputs
// (a + P u, b + Q v), P = ceil(KH / sh). Two of them are at least KH rows (KW columns) apart in
// the input, so their windows are disjoint and each dx element has at most one writer.
// One invocation walks one row u of the phase (the divisions once per row).
@compute @workgroup_size(WG)
fn pool_bwd_phase(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let P = (p.KH + p.sh - 1u) / p.sh;
  let Q = (p.KW + p.sw - 1u) / p.sw;
  let a = p.phase / Q;
  let b = p.phase % Q;
  let nu = (p.OH - a + P - 1u) / P; // the launcher skips phases with no outputs (a < OH, b < OW)
  for (var r = gid.x; r < p.planes * nu; r += nwg.x * WG) {
    let plane = div_u(r, nu);
    let oh = a + (r - plane * nu) * P;
    let base = plane * p.H * p.W;
    let h0 = i32(oh * p.sh) - i32(p.pt);
    for (var ow = b; ow < p.OW; ow += Q) {
      let o = (plane * p.OH + oh) * p.OW + ow;
      if (OP == MAX) {
        let i = base + u32(arg[o]);
        dx[i] = st(f32(dx[i]) + f32(dy[o]));
      } else {
        let w0 = i32(ow * p.sw) - i32(p.pl);
        let win = vec4<i32>(max(h0, 0), max(w0, 0), min(h0 + i32(p.KH), i32(p.H)), min(w0 + i32(p.KW), i32(p.W)));
        let g = f32(dy[o]) / area(win);
        for (var ih = win.x; ih < win.z; ih++) {
          for (var iw = win.y; iw < win.w; iw++) { dx[base + u32(ih) * p.W + u32(iw)] = st(f32(dx[base + u32(ih) * p.W + u32(iw)]) + g); }
        }
      }
    }
  }
}

@compute @workgroup_size(WG)
fn pool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = p.planes * p.OH * p.OW;
  for (var o = gid.x; o < total; o += nwg.x * WG) {
    let plane = o / (p.OH * p.OW);
    let r = o % (p.OH * p.OW);
    let win = window(r / p.OW, r % p.OW);
    let base = plane * p.H * p.W;
    var best = f32(x[base + u32(win.x) * p.W + u32(win.y)]);
    var bi = win.x * i32(p.W) + win.y;
    var sum = 0.0;
    for (var ih = win.x; ih < win.z; ih++) {
      for (var iw = win.y; iw < win.w; iw++) {
        let v = f32(x[base + u32(ih) * p.W + u32(iw)]);
        sum += v;
        if ((v > best && !is_nan(best)) || (is_nan(v) && !is_nan(best))) { best = v; bi = ih * i32(p.W) + iw; }
      }
    }
    if (OP == MAX) { y[o] = st(best); idx[o] = bi; } else { y[o] = st(sum / area(win)); }
  }
}

// Each input sums the gradients of the windows that contain it: for max only where it was
// the window's maximum, for average divided by the window's size.
@compute @workgroup_size(WG)
fn pool_bwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = p.planes * p.H * p.W;
  for (var i = gid.x; i < total; i += nwg.x * WG) {
    let plane = i / (p.H * p.W);
    let r = i % (p.H * p.W);
    let hs = covering(r / p.W, p.pt, p.KH, p.sh, p.OH);
    let ws = covering(r % p.W, p.pl, p.KW, p.sw, p.OW);
    var g = 0.0;
    for (var oh = hs.x; oh <= hs.y; oh++) {
      for (var ow = ws.x; ow <= ws.y; ow++) {
        let o = (plane * p.OH + u32(oh)) * p.OW + u32(ow);
        if (OP == MAX) { if (arg[o] == i32(r)) { g += f32(dy[o]); } }
        else { g += f32(dy[o]) / area(window(u32(oh), u32(ow))); }
      }
    }
    dx[i] = st(g);
  }
}
