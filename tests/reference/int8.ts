// LLM.int8() reference (Dettmers et al. 2022, arXiv 2208.07339, §3.2–3.3), written from
// the paper's definitions in plain TS:
//   vector-wise quantization: one absmax scale per row of x and per row of w (= per
//   output feature), q = round(v · 127 / absmax);
//   mixed-precision decomposition: the feature columns O where some |x[m,k]| >= threshold
//   are multiplied in floating point, everything else in int8 with int32 accumulation.
// The library fixes the rounding the paper leaves open: the f32 product v·fround(127/absmax),
// rounded half to even — replayed here with Math.fround so integer results match exactly.
// Everything after the integers is fp64.

/** Round half to even. */
export function rne(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

function quantizeValue(v: number, inv: number): number {
  return Math.max(-127, Math.min(127, rne(Math.fround(v * inv))));
}

function invScale(absmax: number): number {
  return absmax > 0 ? Math.fround(127 / absmax) : 0;
}

export interface WeightRef {
  q: Int8Array; // [N, K]
  scale: Float32Array; // [N] absmax
}

/** w[N,K] given as the values the device holds (already rounded to its dtype). */
export function quantizeWeightRef(w: Float32Array, N: number, K: number): WeightRef {
  const q = new Int8Array(N * K);
  const scale = new Float32Array(N);
  for (let n = 0; n < N; n++) {
    let am = 0;
    for (let k = 0; k < K; k++) am = Math.max(am, Math.abs(w[n * K + k]));
    const inv = invScale(am);
    for (let k = 0; k < K; k++) q[n * K + k] = quantizeValue(w[n * K + k], inv);
    scale[n] = am;
  }
  return { q, scale };
}

export interface RowsRef {
  q: Int8Array; // [M, K]
  scale: Float32Array; // [M] absmax over non-outlier columns; NaN for rows with NaN/±Inf
  outlierColumns: number[];
}

/**
 * Outlier columns: some finite |x[m,k]| >= threshold (threshold 0: none). A row holding
 * NaN or ±Inf takes no part in choosing them, gets scale NaN and q = 0.
 */
export function quantizeRowsRef(x: Float32Array, M: number, K: number, threshold: number): RowsRef {
  const isOutlier = new Uint8Array(K);
  if (threshold > 0)
    for (let m = 0; m < M; m++)
      for (let k = 0; k < K; k++) {
        const v = Math.abs(x[m * K + k]);
        if (Number.isFinite(v) && v >= threshold) isOutlier[k] = 1;
      }
  const outlierColumns: number[] = [];
  isOutlier.forEach((f, k) => {
    if (f) outlierColumns.push(k);
  });
  const q = new Int8Array(M * K);
  const scale = new Float32Array(M);
  for (let m = 0; m < M; m++) {
    let finite = true;
    let am = 0;
    for (let k = 0; k < K; k++) {
      const v = x[m * K + k];
      if (!Number.isFinite(v)) finite = false;
      else if (!isOutlier[k]) am = Math.max(am, Math.abs(v));
    }
    if (!finite) {
      scale[m] = NaN;
      continue;
    }
    const inv = invScale(am);
    for (let k = 0; k < K; k++) q[m * K + k] = isOutlier[k] ? 0 : quantizeValue(x[m * K + k], inv);
    scale[m] = am;
  }
  return { q, scale, outlierColumns };
}

export interface MatmulRef {
  /** y in fp64 (NaN rows for non-finite x rows) */
  y: Float64Array;
  /** per element: a bound on |y| built from absolute values, for rounding tolerances */
  magnitude: Float64Array;
}

/**
 * y = (xq·qᵀ) ⊙ (sx ⊗ sw)/127² + x[:,O]·deq(w[:,O])ᵀ + bias, deq(w) = q·sw/127.
 * The integer product is exact (JS numbers hold it exactly).
 */
export function int8MatmulRef(
  x: Float32Array, M: number, K: number, w: WeightRef, N: number, threshold: number, bias?: Float32Array,
): MatmulRef {
  const r = quantizeRowsRef(x, M, K, threshold);
  const y = new Float64Array(M * N);
  const magnitude = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let dot = 0;
      let absDot = 0;
      for (let k = 0; k < K; k++) {
        const p = r.q[m * K + k] * w.q[n * K + k];
        dot += p;
        absDot += Math.abs(p);
      }
      let out = 0;
      let absOut = 0;
      for (const k of r.outlierColumns) {
        const p = x[m * K + k] * w.q[n * K + k];
        out += p;
        absOut += Math.abs(p);
      }
      const sw = w.scale[n] / 127;
      const b = bias ? bias[n] : 0;
      y[m * N + n] = (dot * r.scale[m] / 127 + out) * sw + b;
      magnitude[m * N + n] = (absDot * r.scale[m] / 127 + absOut) * sw + Math.abs(b);
    }
  return { y, magnitude };
}
