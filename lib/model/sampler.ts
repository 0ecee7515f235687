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

  /** Picks the next token from `logits` (modified in place) given the context so far. */
  sample(logits: Float32Array, context: readonly number[]): number {
    const pen = this.o.repetitionPenalty ?? 1;
    if (pen !== 1)
      for (const id of new Set(context)) {
        const l = logits[id];
        logits[id] = l > 0 ? l / pen : l * pen;
      }
    const temp = this.o.temperature ?? 0.8;
    if (temp === 0) {
      let best = 0;
      for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
      return best;
    }
    // Candidates sorted by logit; softmax at the temperature over the survivors.
    let idx = Array.from(logits.keys());
    const topK = this.o.topK ?? 0;
    idx.sort((a, b) => logits[b] - logits[a]);
    if (topK > 0 && topK < idx.length) idx = idx.slice(0, topK);
    const mx = logits[idx[0]];
    let probs = idx.map((i) => Math.exp((logits[i] - mx) / temp));
    let z = probs.reduce((a, b) => a + b, 0);
    probs = probs.map((p) => p / z);
    const minP = this.o.minP ?? 0;
    let keep = probs.length;
    if (minP > 0) keep = Math.max(1, probs.findIndex((p) => p < minP * probs[0]) === -1 ? keep : probs.findIndex((p) => p < minP * probs[0]));
    const topP = this.o.topP ?? 1;
    if (topP < 1) {
      let acc = 0;
      for (let i = 0; i < keep; i++) {
        acc += probs[i];
        if (acc >= topP) {
          keep = i + 1;
          break;
        }
      }
    }
    z = 0;
    for (let i = 0; i < keep; i++) z += probs[i];
    let r = this.random() * z;
    for (let i = 0; i < keep; i++) {
      r -= probs[i];
      if (r <= 0) return idx[i];
    }
    return idx[keep - 1];
  }
}
