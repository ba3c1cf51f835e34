// float64 reference of the channel-blocked layout NCHW[c/4]HW4 (engine/ops/layout.ts): plain
// index arithmetic, no code shared with the engine.
import type { Arr } from './float64.js';

const blocks = (c: number) => Math.ceil(c / 4);

/** [N, C, H, W] -> [N, ceil(C/4), H, W, 4], channel c at block c/4, lane c%4; padding lanes 0. */
export function toBlocked(x: Arr): Arr {
  const [N, C, H, W] = x.shape as [number, number, number, number];
  const Cb = blocks(C), HW = H * W;
  const out = new Float64Array(N * Cb * HW * 4);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < HW; s++) {
    out[((n * Cb + Math.floor(c / 4)) * HW + s) * 4 + (c % 4)] = x.data[(n * C + c) * HW + s]!;
  }
  return { shape: [N, Cb, H, W, 4], data: out };
}

/** [N, Cb, H, W, 4] -> [N, C, H, W] (lanes of channels >= C dropped). */
export function fromBlocked(x: Arr, C: number): Arr {
  const [N, Cb, H, W] = x.shape as [number, number, number, number, number];
  const HW = H * W;
  const out = new Float64Array(N * C * HW);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let s = 0; s < HW; s++) {
    out[(n * C + c) * HW + s] = x.data[((n * Cb + Math.floor(c / 4)) * HW + s) * 4 + (c % 4)]!;
  }
  return { shape: [N, C, H, W], data: out };
}

/** [Cout, Cin, KH, KW] -> [ceil(Cout/4), 4 ceil(Cin/4), KH, KW, 4] (lane = output channel % 4), zero-padded. */
export function blockWeights(w: Arr): Arr {
  const [Co, Ci, KH, KW] = w.shape as [number, number, number, number];
  const Cob = blocks(Co), Cip = 4 * blocks(Ci), K = KH * KW;
  const out = new Float64Array(Cob * Cip * K * 4);
  for (let co = 0; co < Co; co++) for (let ci = 0; ci < Ci; ci++) for (let k = 0; k < K; k++) {
    out[((Math.floor(co / 4) * Cip + ci) * K + k) * 4 + (co % 4)] = w.data[(co * Ci + ci) * K + k]!;
  }
  return { shape: [Cob, Cip, KH, KW, 4], data: out };
}

/** The inverse of blockWeights: [Cob, Cinp, KH, KW, 4] -> [Cout, Cin, KH, KW]. */
export function unblockWeights(wb: Arr, Co: number, Ci: number): Arr {
  const [, Cip, KH, KW] = wb.shape as [number, number, number, number, number];
  const K = KH * KW;
  const out = new Float64Array(Co * Ci * K);
  for (let co = 0; co < Co; co++) for (let ci = 0; ci < Ci; ci++) for (let k = 0; k < K; k++) {
    out[(co * Ci + ci) * K + k] = wb.data[((Math.floor(co / 4) * Cip + ci) * K + k) * 4 + (co % 4)]!;
  }
  return { shape: [Co, Ci, KH, KW], data: out };
}
