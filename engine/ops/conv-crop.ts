// Kernel taps that never meet the input. A 7x7 'same' layer on a 2x2 map (CBR-LargeT's last
// layer at 28 px) multiplies padding by 40 of its 49 taps for every output: only the centre 3x3
// can reach a pixel. Such a layer is the same sums as a convolution with the kernel cropped to
// the taps some output reaches and the padding reduced to match, at a fraction of the work, and
// a 3x3 crop is then served by the Winograd variants. The forward and the input gradient read
// the cropped taps in place (through the weight strides and an offset); the weight gradient of
// the taps cropped away is zero. Every product dropped is with padding: values are unchanged.
import { empty, type Tensor } from '../tensor/tensor.js';
import { fillKernel, stridedCopy } from '../kernels/launch.js';
import type { Geometry } from './conv.js';

/** The cropped layer; `off`: its first tap's place in the full kernel's [KH, KW] plane. */
export interface Crop { g: Geometry; kh0: number; kw0: number; off: number }

/** The kernel as stored ([Cout, Cin, KH, KW] contiguous) and where the taps in use start in it. */
export interface Stored { KH: number; KW: number; off: number }

/** Along one axis: the first and last tap that some output's window lands inside the input. */
function reach(size: number, out: number, k: number, s: number, before: number): [number, number] {
  return [Math.max(0, before - (out - 1) * s), Math.min(k - 1, size - 1 + before)];
}

/** The crop of g's kernel to the taps that meet the input, or null where every tap does. */
export function cropTaps(g: Geometry): Crop | null {
  const [h0, h1] = reach(g.H, g.OH, g.KH, g.sh, g.pt), [w0, w1] = reach(g.W, g.OW, g.KW, g.sw, g.pl);
  if ((h0 === 0 && h1 === g.KH - 1 && w0 === 0 && w1 === g.KW - 1) || h1 < h0 || w1 < w0) return null;
  const KH = h1 - h0 + 1, KW = w1 - w0 + 1, pt = g.pt - h0, pl = g.pl - w0;
  // The far padding that keeps the output size: the last window still ends where it did.
  const pb = (g.OH - 1) * g.sh + KH - g.H - pt, pr = (g.OW - 1) * g.sw + KW - g.W - pl;
  if (pb < 0 || pr < 0) return null;
  return { g: { ...g, KH, KW, pt, pb, pl, pr, flops: 2 * g.N * g.Cout * g.OH * g.OW * g.Cin * g.KH * g.KW }, kh0: h0, kw0: w0, off: h0 * g.KW + w0 };
}

/** The full kernel's weight gradient from the cropped one's: zero at the taps cropped away. */
export function uncropWeightGrad(dw: Tensor, c: Crop, full: readonly number[]): Tensor {
  const out = fillKernel(empty([...full]), 0);
  stridedCopy(dw, out, dw.shape, dw.strides, 0, out.strides, c.kh0 * out.strides[2]! + c.kw0 * out.strides[3]!, 'conv2d.crop');
  return out;
}
