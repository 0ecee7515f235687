// Conformance of the small decoder ops on every device against fp64 references.
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { add, argmax, embedding, mul, rmsNorm, siluMul, softmax, tensor, type DType } from '../../lib/index.js';
import { compare, CPU_ISAS, DEVICES, forceCpuIsa, quantizeTo, randn, rng, type CpuIsa } from '../helpers.js';
import {
  addRef, argmaxRef, embeddingRef, mulRef, rmsNormRef, siluMulRef, softmaxRef,
} from '../reference/elementwise.js';

type FloatDType = 'f32' | 'f16' | 'bf16';
const FLOATS: FloatDType[] = ['f32', 'f16', 'bf16'];
// Relative-norm bound per output dtype: f32 math then one rounding to the storage
// type (2^-11 for f16, 2^-8 for bf16 unit roundoff), with slack for the f32 math.
const TOL: Record<FloatDType, number> = { f32: 2e-6, f16: 1e-3, bf16: 8e-3 };

async function expectClose(out: Float32Array | Int8Array | Int32Array, ref: ArrayLike<number>, dtype: FloatDType) {
  const s = compare(out as Float32Array, ref);
  expect(s.nonFinite, 'non-finite (unwritten) outputs').toBe(0);
  expect(s.relNorm).toBeLessThanOrEqual(TOL[dtype]);
}

// The cpu runs its copy of the kernels for every ISA path; other devices run once.
const DEVICE_ISAS: [string, CpuIsa | null][] = DEVICES.flatMap((d): [string, CpuIsa | null][] =>
  d === 'cpu' ? CPU_ISAS.map((i): [string, CpuIsa] => [d, i]) : [[d, null]],
);
afterAll(forceCpuIsa(CPU_ISAS[0]));

describe.each(DEVICE_ISAS)('small ops on %s (cpu isa %s)', (device, isa) => {
  beforeEach(() => {
    if (isa) forceCpuIsa(isa);
  });

  it('siluMul and softmax at the edges of exp: huge, tiny, infinite and NaN inputs', async () => {
    const g = new Float32Array([-1e4, -100, -88.5, -20, -1e-30, 0.25, 20, 88.5, 100, 1e4, Infinity, -Infinity, NaN, 3, -3, 7]);
    const u = Float32Array.from(g, (_, i) => 0.5 + i / 8);
    const out = await siluMul(tensor(g, [16], { device }), tensor(u, [16], { device })).toArray();
    const ref = siluMulRef(g, u);
    for (let i = 0; i < 16; i++) {
      if (Number.isNaN(ref[i])) expect(out[i], `silu(${g[i]})`).toBeNaN();
      else if (!Number.isFinite(ref[i])) expect(out[i], `silu(${g[i]})`).toBe(ref[i]);
      else expect(Math.abs(out[i] - ref[i]), `silu(${g[i]})`).toBeLessThanOrEqual(2e-6 * Math.abs(ref[i]) + 1e-30);
    }
    // softmax: a row spanning 200 in logits, a row with -inf entries, a row with a NaN
    const x = new Float32Array([...Array.from({ length: 16 }, (_, i) => -100 + (i * 200) / 15), 1, -Infinity, 2, -Infinity, ...new Array(12).fill(0.5), 1, 2, NaN, ...new Array(13).fill(0)]);
    const sm = await softmax(tensor(x, [3, 16], { device })).toArray();
    const sref = softmaxRef(x, 16);
    // exp through exp2 rounds (x − max)·log2 e in f32: relative error grows by ~2^-23 per unit of x − max
    const rowMax = [100, 2];
    for (let i = 0; i < 32; i++) {
      const tol = sref[i] === 0 ? 0 : (2e-6 + Math.abs(x[i] - rowMax[i >> 4]) * 1.2e-7) * sref[i] + 1e-38;
      expect(Math.abs(sm[i] - sref[i]), `softmax[${i}]`).toBeLessThanOrEqual(tol);
    }
    for (let i = 32; i < 48; i++) expect(sm[i]).toBeNaN();
  });

  describe.each(FLOATS)('%s', (dtype) => {
    const mk = (data: Float32Array, shape: number[]) => tensor(data, shape, { dtype, device });
    const q = (a: Float32Array) => quantizeTo(a, dtype);

    it.each([
      [[3, 5, 7], [3, 5, 7]],
      [[4, 1000], [1000]],
      [[2, 3, 4097], [4097]],
      [[1], [1]],
      [[9000], [9000]],
    ])('add and mul a%j b%j (b broadcasts over leading dims)', async (as, bs) => {
      const na = as.reduce((x, y) => x * y, 1);
      const nb = bs.reduce((x, y) => x * y, 1);
      const a = q(randn(na, 11 + na));
      const b = q(randn(nb, 13 + nb));
      const ta = mk(a, as);
      const tb = mk(b, bs);
      await expectClose(await add(ta, tb).toArray(), addRef(a, b), dtype);
      await expectClose(await mul(ta, tb).toArray(), mulRef(a, b), dtype);
    });

    it.each([
      [1, 64],
      [7, 333],
      [3, 4096],
    ])('rmsNorm rows=%i D=%i', async (rows, D) => {
      const x = q(randn(rows * D, 21 + D, 3));
      const w = q(randn(D, 22 + D));
      await expectClose(await rmsNorm(mk(x, [rows, D]), mk(w, [D]), 1e-5).toArray(), rmsNormRef(x, w, 1e-5), dtype);
    });

    it.each([[1], [129], [5 * 1408 + 3]])('siluMul n=%i', async (n) => {
      const g = q(randn(n, 31 + n, 4));
      const u = q(randn(n, 32 + n));
      await expectClose(await siluMul(mk(g, [n]), mk(u, [n])).toArray(), siluMulRef(g, u), dtype);
    });

    it.each([
      [1, 1],
      [5, 17],
      [2, 32000],
    ])('softmax rows=%i cols=%i', async (rows, cols) => {
      const x = q(randn(rows * cols, 41 + cols, 5));
      const out = await softmax(mk(x, [rows, cols])).toArray();
      await expectClose(out, softmaxRef(x, cols), dtype);
    });

    it.each([
      [1, 7],
      [4, 32000],
      [3, 1],
    ])('argmax rows=%i cols=%i', async (rows, cols) => {
      const x = q(randn(rows * cols, 51 + cols));
      const out = await argmax(mk(x, [rows, cols])).toArray();
      expect(out).toBeInstanceOf(Int32Array);
      expect(Array.from(out)).toEqual(Array.from(argmaxRef(x, cols)));
    });

    it('argmax: first of equal maxima wins, NaN wins', async () => {
      const x = new Float32Array([1, 5, 5, 2, /* row 2 */ 3, Number.NaN, 9, 1]);
      expect(Array.from(await argmax(mk(x, [2, 4])).toArray())).toEqual([1, 1]);
    });

    it('embedding gathers rows', async () => {
      const V = 37;
      const D = 70;
      const table = q(randn(V * D, 61));
      const r = rng(62);
      const ids = Int32Array.from({ length: 2 * 9 }, () => Math.floor(r() * V));
      const out = await embedding(mk(table, [V, D]), tensor(ids, [2, 9], { device })).toArray();
      await expectClose(out, embeddingRef(table, D, ids), dtype);
    });
  });
});

describe.each(DEVICES)('cast on %s', (device) => {
  const all: DType[] = ['f32', 'f16', 'bf16', 'i8', 'i32'];
  // Values chosen to exercise rounding ties, saturation and negative zero.
  const src = new Float32Array([0.5, 1.5, 2.5, -0.5, -1.5, 127.4, 128, -128.6, -300, 65519, 1e6, 3.14159, -0]);
  for (const to of all) {
    it(`f32 -> ${to}`, async () => {
      const t = tensor(src, [src.length], { device }).cast(to);
      expect(t.dtype).toBe(to);
      const out = Array.from(await t.toArray());
      const expected = Array.from(src, (v) => {
        if (to === 'f32') return v;
        if (to === 'f16' || to === 'bf16') return quantizeTo(new Float32Array([v]), to)[0];
        const lim = to === 'i8' ? 127 : 2147483647;
        // round half to even, then saturate
        const r = Math.abs(v % 1) === 0.5 ? 2 * Math.round(v / 2) : Math.round(v);
        return Math.max(-lim - 1, Math.min(lim, r)) || 0;
      });
      expect(out).toEqual(expected);
    });
  }
  it('i32 -> f32 -> i32 round trip is exact below 2^24', async () => {
    const r = rng(7);
    const v = Int32Array.from({ length: 1001 }, () => Math.floor((r() - 0.5) * 2 ** 24));
    const back = await tensor(v, [1001], { device }).cast('f32').cast('i32').toArray();
    expect(Array.from(back)).toEqual(Array.from(v));
  });
});
