// Attention references in plain TS, written from the definition softmax(q·kᵀ·scale)·v
// (independent of the native kernels: no tiling, no online softmax, no exp2).
//   attentionRef:   fp64 throughout — the truth.
//   attentionNaive: the straightforward algorithm in the op's own precision (f32
//                   math via Math.fround, output rounded to the storage dtype) — the
//                   yardstick of the FlashAttention error rule.
// Layout: q[B,Sq,Hq,D], k/v[B,Sk,Hkv,D] as flat arrays; causal aligned bottom-right.
import { quantizeTo } from '../helpers.js';

export interface AttnShape {
  B: number;
  Sq: number;
  Sk: number;
  Hq: number;
  Hkv: number;
  D: number;
  causal: boolean;
  scale?: number;
  /** sliding window: a row sees only the `window` keys ending at its last visible one */
  window?: number;
}

function run(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: AttnShape, round: (x: number) => number) {
  const { B, Sq, Sk, Hq, Hkv, D } = s;
  const scale = round(s.scale ?? 1 / Math.sqrt(D));
  const out = new Float64Array(B * Sq * Hq * D);
  const lse = new Float64Array(B * Hq * Sq);
  const p = new Float64Array(Sk);
  const G = Hq / Hkv;
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const kh = Math.floor(h / G);
      for (let i = 0; i < Sq; i++) {
        const qo = ((b * Sq + i) * Hq + h) * D;
        const last = s.causal ? i + Sk - Sq : Sk - 1;
        const first = s.window ? last - s.window + 1 : 0;
        let mx = -Infinity;
        for (let j = 0; j < Sk; j++) {
          if (j > last || j < first) {
            p[j] = -Infinity;
            continue;
          }
          const ko = ((b * Sk + j) * Hkv + kh) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot = round(dot + round(q[qo + d] * k[ko + d]));
          p[j] = round(dot * scale);
          mx = Math.max(mx, p[j]);
        }
        const oo = ((b * Sq + i) * Hq + h) * D;
        if (mx === -Infinity) {
          lse[(b * Hq + h) * Sq + i] = -Infinity;
          continue; // no visible key: 0
        }
        let sum = 0;
        for (let j = 0; j < Sk; j++) {
          p[j] = j > last || j < first ? 0 : round(Math.exp(p[j] - mx));
          sum = round(sum + p[j]);
        }
        lse[(b * Hq + h) * Sq + i] = mx + Math.log(sum);
        for (let j = Math.max(0, first); j <= Math.min(last, Sk - 1); j++) {
          const w = round(p[j] / sum);
          const vo = ((b * Sk + j) * Hkv + kh) * D;
          for (let d = 0; d < D; d++) out[oo + d] = round(out[oo + d] + round(w * v[vo + d]));
        }
      }
    }
  return { out, lse };
}

export function attentionRef(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: AttnShape) {
  return run(q, k, v, s, (x) => x);
}

export function attentionNaive(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, s: AttnShape, dtype: 'f32' | 'f16' | 'bf16',
): Float32Array {
  const { out } = run(q, k, v, s, Math.fround);
  return quantizeTo(Float32Array.from(out), dtype);
}
