// 2-D pooling over NCHW planes. Windows never read padding: max ignores padded positions and
// average divides by the number of real inputs in the window (Keras' 'same' pooling).
// Backward kernels gather: each input position sums the gradients of the windows that
// contain it, so no atomics are needed even when windows overlap.

struct Params {
  planes: u32, H: u32, W: u32, OH: u32,
  OW: u32, KH: u32, KW: u32, sh: u32,
  sw: u32, pt: u32, pl: u32, pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> idx: array<i32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> arg: array<i32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

const WG: u32 = 256u;

// The clipped window of output (oh, ow): [h0, h1) x [w0, w1) in input coordinates.
fn window(oh: u32, ow: u32) -> vec4<i32> {
  let h0 = i32(oh * p.sh) - i32(p.pt);
  let w0 = i32(ow * p.sw) - i32(p.pl);
  return vec4<i32>(max(h0, 0), max(w0, 0), min(h0 + i32(p.KH), i32(p.H)), min(w0 + i32(p.KW), i32(p.W)));
}

// Outputs whose windows contain input (ih, iw), along one axis: [first, last].
fn covering(i: u32, pad: u32, k: u32, s: u32, n: u32) -> vec2<i32> {
  let t = i32(i + pad);
  let first = max((t - i32(k) + i32(s)) / i32(s), 0); // ceil((t - k + 1) / s) for t - k + 1 >= 0
  let lo = select(0, first, t - i32(k) + 1 >= 0);
  return vec2<i32>(lo, min(t / i32(s), i32(n) - 1));
}

// The pooling kinds, by the names the engine asks for (pool.ts reads these codes).
const MAX: u32 = 0u;
const AVG: u32 = 1u;
override OP: u32;

// NaN tested on the bits (a driver may fold `v != v` to false): a NaN in a window wins, as in PyTorch.
fn is_nan(x: f32) -> bool { return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u; }

// Number of real inputs in a clipped window.
fn area(win: vec4<i32>) -> f32 { return f32((win.z - win.x) * (win.w - win.y)); }

@compute @workgroup_size(WG)
fn pool_fwd(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let total = p.planes * p.OH * p.OW;
  for (var o = gid.x; o < total; o += nwg.x * WG) {
    let plane = o / (p.OH * p.OW);
    let r = o % (p.OH * p.OW);
    let win = window(r / p.OW, r % p.OW);
    let base = plane * p.H * p.W;
    var best = x[base + u32(win.x) * p.W + u32(win.y)];
    var bi = win.x * i32(p.W) + win.y;
    var sum = 0.0;
    for (var ih = win.x; ih < win.z; ih++) {
      for (var iw = win.y; iw < win.w; iw++) {
        let v = x[base + u32(ih) * p.W + u32(iw)];
        sum += v;
        if ((v > best && !is_nan(best)) || (is_nan(v) && !is_nan(best))) { best = v; bi = ih * i32(p.W) + iw; }
      }
    }
    if (OP == MAX) { y[o] = best; idx[o] = bi; } else { y[o] = sum / area(win); }
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
        if (OP == MAX) { if (arg[o] == i32(r)) { g += dy[o]; } }
        else { g += dy[o] / area(window(u32(oh), u32(ow))); }
      }
    }
    dx[i] = g;
  }
}
