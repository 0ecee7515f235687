// Token sampling on the host from one row of logits: repetition penalty, temperature,
// top-k, top-p (nucleus), min-p; temperature 0 = greedy. Reproducible for a seed.

export interface SamplingOptions {
  /** 0 = greedy (default 0.8) */
  temperature?: number;
  /** keep the k most likely tokens (0 = off) */
  topK?: number;
  /** keep the smallest set whose probability reaches p (1 = off) */
  topP?: number;
  /** drop tokens below minP × the top probability (0 = off) */
  minP?: number;
  /** > 1 discourages tokens already in the context (HF / CTRL style: logit ÷ or × penalty) */
  repetitionPenalty?: number;
  seed?: number;
}

function check(v: unknown, name: string, lo: number, hi: number, int = false): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v)))
    throw new RangeError(`Expected ${int ? 'an integer' : 'a number'} in [${lo}, ${hi}] for ${name} but received ${String(v)}`);
}

export function validateSampling(o: SamplingOptions): void {
  check(o.temperature, 'temperature', 0, 100);
  check(o.topK, 'topK', 0, 1e9, true);
  check(o.topP, 'topP', 0, 1);
  check(o.minP, 'minP', 0, 1);
  check(o.repetitionPenalty, 'repetitionPenalty', 1e-6, 100);
  check(o.seed, 'seed', 0, 2 ** 32 - 1, true);
}

export class Sampler {
  private state: number;

  constructor(private readonly o: SamplingOptions) {
    validateSampling(o);
    this.state = (o.seed ?? (Math.random() * 2 ** 32) >>> 0) >>> 0 || 0x9e3779b9;
  }

  private random(): number {
    // mulberry32
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /**
   * Picks the next token from `logits` (modified in place) given the context so far.
   * Semantics (HF-style, in this order): candidates sorted by logit; top-k keeps the k
   * best; probabilities softmax(logit / temperature) over those; min-p drops tokens
   * below minP × the best one's probability; top-p keeps the shortest prefix whose
   * probability reaches topP; one token is drawn from what is left.
   * Only the weights w = exp((logit − max) / temperature) of tokens that can survive
   * are sorted (numerically, no index comparator): those with w >= t for a threshold t
   * lowered until the set provably holds the top-k / the nucleus / the min-p
   * survivors. The kept set is then drawn from in index order, which leaves the
   * distribution as stated (sorting indices by a comparator cost ~9 ms per token at
   * 32 000 tokens).
   */
  sample(logits: Float32Array, context: readonly number[]): number {
    const pen = this.o.repetitionPenalty ?? 1;
    if (pen !== 1)
      for (const id of new Set(context)) {
        const l = logits[id];
        logits[id] = l > 0 ? l / pen : l * pen;
      }
    const temp = this.o.temperature ?? 0.8;
    const V = logits.length;
    let best = 0;
    for (let i = 1; i < V; i++) if (logits[i] > logits[best] || Number.isNaN(logits[best])) best = i;
    const mx = logits[best];
    if (temp === 0 || !Number.isFinite(mx)) return best; // greedy; or a +inf logit wins, all −inf / NaN: the first
    const w = new Float64Array(V);
    let total = 0;
    for (let i = 0; i < V; i++) {
      const x = Math.exp((logits[i] - mx) / temp); // NaN logits get NaN: never a candidate
      w[i] = x;
      if (x > 0) total += x;
    }
    const topK = this.o.topK ?? 0;
    const topP = this.o.topP ?? 1;
    const minP = this.o.minP ?? 0;
    if ((topK === 0 || topK >= V) && topP >= 1 && minP === 0) return this.draw(w, 0, 0, total, best);
    // Candidates {i : w[i] >= t}: with topK, enough of them; without, enough mass for
    // the nucleus (topP of the total) and every min-p survivor (w >= minP).
    let t = minP > 0 ? minP : 1 / 1024;
    let cw: Float64Array;
    for (;;) {
      let count = 0;
      let mass = 0;
      for (let i = 0; i < V; i++)
        if (w[i] >= t) {
          count++;
          mass += w[i];
        }
      const enough = topK > 0 ? count >= topK : topP >= 1 || minP > 0 || mass >= topP * total;
      if (enough || t < 1e-300 || count === V) {
        cw = new Float64Array(count);
        for (let i = 0, c = 0; i < V; i++) if (w[i] >= t) cw[c++] = w[i];
        break;
      }
      t /= 64;
    }
    // The candidates' weights sorted (native numeric sort, read from the end): the
    // filters need values only.
    cw.sort();
    const at = (r: number) => cw[cw.length - 1 - r]; // the r-th largest
    let n = topK > 0 && topK < cw.length ? topK : cw.length;
    let z0 = total; // normalizer: every token's mass, or the top-k set's
    if (topK > 0 && topK < V) {
      z0 = 0;
      for (let r = 0; r < n; r++) z0 += at(r);
    }
    if (minP > 0) {
      let r = 0;
      while (r < n && at(r) >= minP) r++; // the best token has w = 1
      n = Math.max(1, r);
    }
    if (topP < 1) {
      let acc = 0;
      for (let r = 0; r < n; r++) {
        acc += at(r) / z0;
        if (acc >= topP) {
          n = r + 1;
          break;
        }
      }
    }
    const cut = at(n - 1);
    let ties = 0; // tokens of weight == cut inside the kept prefix (ties are taken by index)
    for (let r = n - 1; r >= 0 && at(r) === cut; r--) ties++;
    let z = 0;
    for (let r = 0; r < n; r++) z += at(r);
    return this.draw(w, cut, ties, z, best);
  }

  /** Draws i with probability w[i] / z among {w > cut} and the first `ties` of {w == cut}, in index order. */
  private draw(w: Float64Array, cut: number, ties: number, z: number, fallback: number): number {
    let r = this.random() * z;
    let last = fallback;
    for (let i = 0, tie = 0; i < w.length; i++) {
      const x = w[i];
      if (!(x > cut || (x === cut && tie++ < ties))) continue;
      last = i;
      r -= x;
      if (r <= 0) return i;
    }
    return last;
  }
}
