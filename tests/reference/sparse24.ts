// Plain-TS references for 2:4 sparsity: magnitude/Wanda pruning, the compressed
// encoding (values + ordered-metadata nibbles) and the fp64 product.

/** Keeps the two largest |w|·norm per group of 4 (ties: lower index); row-major [N, K]. */
export function pruneRef(w: ArrayLike<number>, N: number, K: number, norms?: ArrayLike<number>): Float64Array {
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++)
    for (let g = 0; g < K / 4; g++) {
      const idx = [0, 1, 2, 3]
        .map((j) => ({ j, s: Math.abs(w[n * K + 4 * g + j]) * (norms ? norms[4 * g + j] : 1) }))
        .sort((a, b) => b.s - a.s || a.j - b.j)
        .slice(0, 2)
        .map((e) => e.j);
      for (const j of idx) out[n * K + 4 * g + j] = w[n * K + 4 * g + j];
    }
  return out;
}

/** Encoding of a dense 2:4 matrix: values [N, K/2] and i32 meta words [N, ceil(K/32)]. */
export function compressRef(w: ArrayLike<number>, N: number, K: number): { values: Float64Array; meta: Int32Array } {
  const words = Math.ceil(K / 32);
  const values = new Float64Array((N * K) / 2);
  const meta = new Int32Array(N * words);
  for (let n = 0; n < N; n++)
    for (let g = 0; g < K / 4; g++) {
      const nz = [0, 1, 2, 3].filter((j) => w[n * K + 4 * g + j] !== 0);
      if (nz.length > 2) throw new Error(`row ${n} group ${g} is not 2:4`);
      // complete with the lowest zero positions, keep ascending
      for (let j = 0; nz.length < 2; j++) if (!nz.includes(j)) nz.push(j);
      nz.sort((a, b) => a - b);
      values[n * (K / 2) + 2 * g] = w[n * K + 4 * g + nz[0]];
      values[n * (K / 2) + 2 * g + 1] = w[n * K + 4 * g + nz[1]];
      meta[n * words + Math.floor(g / 8)] |= (nz[0] | (nz[1] << 2)) << (4 * (g % 8));
    }
  return { values, meta };
}
