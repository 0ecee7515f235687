// Token sampling against an independent statement of its semantics: the distribution
// each option set should produce (full sort, plain loops) vs the empirical frequencies
// of many seeded draws; excluded tokens must never appear.
import { describe, expect, it } from 'vitest';
import { Sampler, type SamplingOptions } from '../../lib/model/sampler.js';
import { randn } from '../helpers.js';

/** The probability of each token under `o` (HF order: top-k, softmax at T, min-p, top-p). */
function expected(logits: Float32Array, o: SamplingOptions): Float64Array {
  const T = o.temperature ?? 0.8;
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  const k = o.topK && o.topK < order.length ? o.topK : order.length;
  const kept = order.slice(0, k);
  const ex = kept.map((i) => Math.exp((logits[i] - logits[kept[0]]) / T));
  const z = ex.reduce((a, b) => a + b, 0);
  const p = ex.map((e) => e / z);
  let n = p.length;
  if (o.minP) {
    const cut = p.findIndex((x) => x < o.minP! * p[0]);
    if (cut >= 0) n = Math.max(1, cut);
  }
  if (o.topP !== undefined && o.topP < 1) {
    let acc = 0;
    for (let i = 0; i < n; i++) {
      acc += p[i];
      if (acc >= o.topP) {
        n = i + 1;
        break;
      }
    }
  }
  const out = new Float64Array(logits.length);
  const zn = p.slice(0, n).reduce((a, b) => a + b, 0);
  for (let i = 0; i < n; i++) out[kept[i]] = p[i] / zn;
  return out;
}

function frequencies(logits: Float32Array, o: SamplingOptions, draws: number): Float64Array {
  const s = new Sampler({ ...o, seed: 1234 });
  const f = new Float64Array(logits.length);
  for (let d = 0; d < draws; d++) f[s.sample(logits.slice(), [])] += 1 / draws;
  return f;
}

describe('Sampler', () => {
  const small = Float32Array.from(randn(40, 3, 2));
  // a long-tailed large vocabulary: the nucleus needs the candidate threshold lowered
  const large = Float32Array.from({ length: 3000 }, (_, i) => -0.004 * i + 0.3 * Math.sin(i * 7.1));
  it.each([
    ['temperature 0.7', small, { temperature: 0.7 }],
    ['top-k 5', small, { temperature: 1, topK: 5 }],
    ['top-p 0.8', small, { temperature: 1.3, topP: 0.8 }],
    ['min-p 0.1', small, { temperature: 1, minP: 0.1 }],
    ['top-k 20, top-p 0.9, min-p 0.05', small, { temperature: 0.9, topK: 20, topP: 0.9, minP: 0.05 }],
    ['large vocab, top-p 0.97', large, { temperature: 1, topP: 0.97 }],
    ['large vocab, top-k 700', large, { temperature: 2, topK: 700 }],
  ] as const)('%s: draws follow the expected distribution; excluded tokens never appear', (_, logits, opts) => {
    const o: SamplingOptions = opts;
    const draws = logits.length > 100 ? 12000 : 20000;
    const want = expected(logits, o);
    const got = frequencies(logits, o, draws);
    let excludedExists = false;
    for (let i = 0; i < logits.length; i++) {
      if (want[i] === 0) {
        excludedExists ||= true;
        expect(got[i], `token ${i} is filtered out`).toBe(0);
      } else {
        const sd = Math.sqrt((want[i] * (1 - want[i])) / draws);
        expect(Math.abs(got[i] - want[i]), `token ${i}`).toBeLessThanOrEqual(5 * sd + 2 / draws);
      }
    }
    if (o.topK || o.topP || o.minP) expect(excludedExists, 'the filter excludes something here').toBe(true);
  });

  it('greedy is the argmax; a seed reproduces its draws; the repetition penalty demotes seen tokens', () => {
    const l = Float32Array.from([0.5, 3, 2.9, -1]);
    expect(new Sampler({ temperature: 0 }).sample(l.slice(), [])).toBe(1);
    expect(new Sampler({ temperature: 0, repetitionPenalty: 1.2 }).sample(l.slice(), [1])).toBe(2); // 3 / 1.2 < 2.9
    const a = new Sampler({ temperature: 1, seed: 9 });
    const b = new Sampler({ temperature: 1, seed: 9 });
    const da = Array.from({ length: 50 }, () => a.sample(small.slice(), []));
    expect(Array.from({ length: 50 }, () => b.sample(small.slice(), []))).toEqual(da);
    expect(new Set(da).size).toBeGreaterThan(3);
  });

  it('non-finite logits: +inf wins, NaN and -inf are never drawn', () => {
    const s = new Sampler({ temperature: 1, seed: 3 });
    expect(s.sample(Float32Array.from([0, Infinity, 5]), [])).toBe(1);
    for (let d = 0; d < 200; d++) {
      const t = s.sample(Float32Array.from([Number.NaN, 0.2, -Infinity, 0.1]), []);
      expect([1, 3]).toContain(t);
    }
  });
});
