// fp64 RoPE reference, written from the Hugging Face definitions
// (modeling_rope_utils: default / linear / dynamic / llama3 / yarn) — independent of
// native/common/rope.h.
import type { RopeScaling } from '../../lib/index.js';

export interface RopeRefOptions {
  base: number;
  style: 'neox' | 'gptj';
  rotaryDim: number;
  scaling?: RopeScaling;
  inverse?: boolean;
}

/** Inverse frequencies and the cos/sin multiplier, as HF computes them. */
export function ropeFrequencies(o: RopeRefOptions): { invFreq: number[]; mscale: number } {
  const dim = o.rotaryDim;
  let base = o.base;
  const s = o.scaling;
  if (s?.type === 'dynamic' && s.seqLen > s.originalMaxPositions)
    base = base * ((s.factor * s.seqLen) / s.originalMaxPositions - (s.factor - 1)) ** (dim / (dim - 2));
  let invFreq = Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));
  let mscale = 1;
  if (s?.type === 'linear') invFreq = invFreq.map((f) => f / s.factor);
  if (s?.type === 'llama3') {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
    const highWavelen = s.originalMaxPositions / s.highFreqFactor;
    invFreq = invFreq.map((f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f;
      if (wavelen > lowWavelen) return f / s.factor;
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return ((1 - smooth) * f) / s.factor + smooth * f;
    });
  }
  if (s?.type === 'yarn') {
    const betaFast = s.betaFast ?? 32;
    const betaSlow = s.betaSlow ?? 1;
    const corrDim = (rot: number) => (dim * Math.log(s.originalMaxPositions / (rot * 2 * Math.PI))) / (2 * Math.log(o.base));
    const low = Math.max(Math.floor(corrDim(betaFast)), 0);
    let high = Math.min(Math.ceil(corrDim(betaSlow)), dim - 1);
    if (low === high) high += 0.001;
    invFreq = invFreq.map((f, i) => {
      const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
      const extra = 1 - ramp;
      return (f / s.factor) * (1 - extra) + f * extra;
    });
    mscale = s.attnFactor ?? (s.factor <= 1 ? 1 : 0.1 * Math.log(s.factor) + 1);
  }
  return { invFreq, mscale };
}

/** Applies RoPE to x[T, H, D] (flat) in fp64; returns a new array. */
export function ropeRef(x: ArrayLike<number>, T: number, H: number, D: number, positions: ArrayLike<number>, o: RopeRefOptions): Float64Array {
  const { invFreq, mscale } = ropeFrequencies(o);
  const out = Float64Array.from(x);
  const half = o.rotaryDim / 2;
  const sign = o.inverse ? -1 : 1;
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const ang = positions[t] * invFreq[i];
      const c = Math.cos(ang) * mscale;
      const s = sign * Math.sin(ang) * mscale;
      for (let h = 0; h < H; h++) {
        const base = (t * H + h) * D;
        const i0 = o.style === 'neox' ? i : 2 * i;
        const i1 = o.style === 'neox' ? i + half : 2 * i + 1;
        const x0 = x[base + i0];
        const x1 = x[base + i1];
        out[base + i0] = x0 * c - x1 * s;
        out[base + i1] = x1 * c + x0 * s;
      }
    }
  }
  return out;
}
