// Plain-TS references for y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]).
import { quantizeTo } from '../helpers.js';

export type FloatDType = 'f32' | 'f16' | 'bf16';

/** The exact product in fp64 (inputs taken as given: quantize them to the storage dtype first). */
export function matmulRef(
  x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | undefined,
  M: number, K: number, N: number,
): Float64Array {
  const y = new Float64Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

/**
 * A straightforward same-precision implementation: sequential f32 accumulation
 * (every step rounded with Math.fround), output rounded to `dtype`. Its error against
 * matmulRef is the yardstick for low-precision tolerances (DESIGN §5).
 */
export function matmulNaive(
  x: ArrayLike<number>, w: ArrayLike<number>, bias: ArrayLike<number> | undefined,
  M: number, K: number, N: number, dtype: FloatDType,
): Float32Array {
  const y = new Float32Array(M * N);
  for (let m = 0; m < M; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s = Math.fround(s + Math.fround(x[m * K + k] * w[n * K + k]));
      y[m * N + n] = bias ? Math.fround(s + bias[n]) : s;
    }
  return quantizeTo(y, dtype);
}
