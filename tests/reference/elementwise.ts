// fp64 references for the small decoder ops, written from their definitions.

export function addRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] + b[i % b.length];
  return out;
}

export function mulRef(a: ArrayLike<number>, b: ArrayLike<number>): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] * b[i % b.length];
  return out;
}

export function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, eps: number): Float64Array {
  const D = w.length;
  const rows = x.length / D;
  const out = new Float64Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) out[r * D + i] = x[r * D + i] * inv * w[i];
  }
  return out;
}

export function siluMulRef(g: ArrayLike<number>, u: ArrayLike<number>): Float64Array {
  const out = new Float64Array(g.length);
  for (let i = 0; i < g.length; i++) out[i] = (g[i] / (1 + Math.exp(-g[i]))) * u[i];
  return out;
}

export function softmaxRef(x: ArrayLike<number>, cols: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / cols; r++) {
    let mx = -Infinity;
    for (let i = 0; i < cols; i++) mx = Math.max(mx, x[r * cols + i]);
    let s = 0;
    for (let i = 0; i < cols; i++) s += Math.exp(x[r * cols + i] - mx);
    for (let i = 0; i < cols; i++) out[r * cols + i] = Math.exp(x[r * cols + i] - mx) / s;
  }
  return out;
}

/** First index of the maximum per row; a NaN counts as the maximum. */
export function argmaxRef(x: ArrayLike<number>, cols: number): Int32Array {
  const rows = x.length / cols;
  const out = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let i = 0; i < cols; i++) {
      const v = x[r * cols + i];
      if (Number.isNaN(v)) {
        best = i;
        break;
      }
      if (v > x[r * cols + best]) best = i;
    }
    out[r] = best;
  }
  return out;
}

export function embeddingRef(table: ArrayLike<number>, dim: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let t = 0; t < ids.length; t++) for (let i = 0; i < dim; i++) out[t * dim + i] = table[ids[t] * dim + i];
  return out;
}
