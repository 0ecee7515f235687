// FlashAttention forward and paged decode on every device against the fp64 reference,
// with the FlashAttention error rule: max|out − ref| ≤ 2·max|out_naive − ref| + 1e-5,
// where out_naive is the plain algorithm in the op's own precision.
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { flashAttention, flashAttentionVarlen, pagedAttention, pagedSlots, tensor } from '../../lib/index.js';
import { compare, CPU_ISAS, DEVICES, forceCpuIsa, nativeForTests, quantizeTo, randn, rng } from '../helpers.js';
import { attentionNaive as nativeNaive } from '../../lib/ops/attention.js';
import { attentionNaive, attentionRef, type AttnShape } from '../reference/attention.js';

type FloatDType = 'f32' | 'f16' | 'bf16';
const DTYPES: FloatDType[] = ['f32', 'f16', 'bf16'];
// Storage precision of one output element of magnitude ≤ 4 (two ulps): how far two
// correct kernels that sum in different orders may differ after rounding.
const ULP2: Record<FloatDType, number> = { f32: 2e-6, f16: 4e-3, bf16: 3.2e-2 };

function inputs(s: AttnShape, dtype: FloatDType, seed: number) {
  const q = quantizeTo(randn(s.B * s.Sq * s.Hq * s.D, seed), dtype);
  const k = quantizeTo(randn(s.B * s.Sk * s.Hkv * s.D, seed + 1), dtype);
  const v = quantizeTo(randn(s.B * s.Sk * s.Hkv * s.D, seed + 2), dtype);
  return { q, k, v };
}

/** Runs flashAttention and checks the error rule and the LSE against the fp64 reference. */
async function checkDense(device: string, s: AttnShape, dtype: FloatDType, seed: number) {
  const { q, k, v } = inputs(s, dtype, seed);
  const opts = { device, dtype };
  const r = flashAttention(
    tensor(q, [s.B, s.Sq, s.Hq, s.D], opts),
    tensor(k, [s.B, s.Sk, s.Hkv, s.D], opts),
    tensor(v, [s.B, s.Sk, s.Hkv, s.D], opts),
    { causal: s.causal, scale: s.scale, returnLse: true },
  );
  const out = (await r.out.toArray()) as Float32Array;
  const lse = (await r.lse!.toArray()) as Float32Array;
  const ref = attentionRef(q, k, v, s);
  const naive = attentionNaive(q, k, v, s, dtype);
  const what = `${device} ${dtype} ${JSON.stringify(s)}`;
  const got = compare(out, ref.out);
  expect(got.nonFinite, what).toBe(0);
  expect(got.maxAbs, what).toBeLessThanOrEqual(2 * compare(naive, ref.out).maxAbs + 1e-5);
  // LSE: f32 score math, a relative bound; −inf exactly where no key is visible.
  for (let i = 0; i < lse.length; i++) {
    if (ref.lse[i] === -Infinity) expect(lse[i], what).toBe(-Infinity);
    else expect(Math.abs(lse[i] - ref.lse[i]), `${what} lse[${i}]`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref.lse[i])));
  }
  return out;
}

// (Sq, Sk) pairs from the issue with head dims, head counts, batch and causal spread
// over them so each appears without the full cross product (simt is an emulator).
const CASES: [number, number, number, number, number, number, boolean][] = [
  // Sq, Sk, D, Hq, Hkv, B, causal
  [1, 1, 64, 1, 1, 1, false],
  [1, 339, 128, 8, 8, 2, true],
  [113, 203, 80, 4, 1, 3, true],
  [128, 217, 96, 4, 2, 1, false],
  [108, 256, 256, 2, 2, 1, true],
  [256, 512, 64, 2, 1, 1, false],
  [512, 256, 128, 1, 1, 1, true],
  [37, 71, 8, 2, 1, 2, false],
  [64, 64, 200, 3, 3, 1, true],
  [33, 130, 96, 8, 1, 2, false],
];

describe.each(DEVICES)('flashAttention on %s', (device) => {
  describe.each(DTYPES)('%s', (dtype) => {
    it.each(CASES)('Sq=%i Sk=%i D=%i Hq=%i Hkv=%i B=%i causal=%s', async (Sq, Sk, D, Hq, Hkv, B, causal) => {
      await checkDense(device, { B, Sq, Sk, Hq, Hkv, D, causal }, dtype, Sq * 7 + Sk + D);
    });
  });

  it('causal with Sq > Sk: the first Sq − Sk rows see no key and give exactly 0', async () => {
    const s = { B: 2, Sq: 70, Sk: 20, Hq: 2, Hkv: 1, D: 64, causal: true };
    const out = await checkDense(device, s, 'f32', 5);
    for (let b = 0; b < s.B; b++)
      for (let i = 0; i < s.Sq; i++)
        for (let x = 0; x < s.Hq * s.D; x++) {
          const val = out[(b * s.Sq + i) * s.Hq * s.D + x];
          if (i < s.Sq - s.Sk) expect(val).toBe(0);
          else expect(val).not.toBe(0);
        }
  });

  // Key j is noise plus 0.5·j and q is positive: the scores climb along the keys, so a
  // row's weight sits on its last few keys. With few terms to average, the rounding of P
  // (bf16 on the cpu's VDPBF16PS path and in the tensor-core kernels) shows most here.
  it.each(DTYPES)('%s: weight concentrated on the last keys (scores rising along the sequence) keeps the error rule', async (dtype) => {
    for (const [Sq, Sk, D, causal] of [[64, 300, 64, true], [5, 1000, 128, false]] as const) {
      const s = { B: 1, Sq, Sk, Hq: 4, Hkv: 1, D, causal };
      const noise = randn(Sk * D, 91 + D);
      const k = quantizeTo(Float32Array.from(noise, (x, i) => 0.1 * x + 0.5 * Math.floor(i / D)), dtype);
      const v = quantizeTo(randn(Sk * D, 92), dtype);
      const q = quantizeTo(Float32Array.from(randn(Sq * 4 * D, 93), (x) => 0.3 + 0.05 * x), dtype);
      const o = { device, dtype };
      const r = flashAttention(tensor(q, [1, Sq, 4, D], o), tensor(k, [1, Sk, 1, D], o), tensor(v, [1, Sk, 1, D], o), { causal });
      const ref = attentionRef(q, k, v, s);
      const got = compare((await r.out.toArray()) as Float32Array, ref.out);
      expect(got.nonFinite).toBe(0);
      expect(got.maxAbs, JSON.stringify(s)).toBeLessThanOrEqual(2 * compare(attentionNaive(q, k, v, s, dtype), ref.out).maxAbs + 1e-5);
    }
  });

  it('a custom scale and large logits stay exact (running max handles overflow)', async () => {
    await checkDense(device, { B: 1, Sq: 33, Sk: 150, Hq: 2, Hkv: 2, D: 64, causal: false, scale: 3 }, 'f32', 17);
  });

  // The benchmark's baseline (scores materialized; on cuda/simt three tensor-core passes)
  // must compute attention too, or its speed-up figure means nothing.
  it('the bench baseline (naive, materialized scores) matches the reference', async () => {
    const shapes: AttnShape[] = [
      { B: 2, Sq: 70, Sk: 150, Hq: 4, Hkv: 2, D: 64, causal: true },
      { B: 1, Sq: 33, Sk: 40, Hq: 2, Hkv: 1, D: 136, causal: false },
      { B: 1, Sq: 90, Sk: 20, Hq: 2, Hkv: 2, D: 16, causal: true },
    ];
    for (const dtype of device === 'cpu' ? DTYPES : (['f16', 'bf16'] as const))
      for (const [i, s] of shapes.entries()) {
        const { q, k, v } = inputs(s, dtype, 60 + i);
        const o = { device, dtype };
        const out = (await nativeNaive(tensor(q, [s.B, s.Sq, s.Hq, s.D], o), tensor(k, [s.B, s.Sk, s.Hkv, s.D], o),
          tensor(v, [s.B, s.Sk, s.Hkv, s.D], o), { causal: s.causal }).toArray()) as Float32Array;
        const ref = attentionRef(q, k, v, s);
        const e = compare(out, ref.out);
        expect(e.nonFinite).toBe(0);
        expect(e.maxAbs, `${dtype} ${JSON.stringify(s)}`).toBeLessThanOrEqual(2 * compare(attentionNaive(q, k, v, s, dtype), ref.out).maxAbs + 1e-5);
      }
    if (device !== 'cpu') {
      const t = tensor(randn(2 * 4 * 8, 1), [1, 2, 4, 8], { device });
      await expect(nativeNaive(t, t, t).toArray()).rejects.toThrow(/naive attention baseline on .* takes f16 or bf16 .* but received f32/);
    }
  });

  it('scale 0 (uniform weights over the visible keys) and a negative scale keep the causal mask', async () => {
    await checkDense(device, { B: 1, Sq: 70, Sk: 150, Hq: 2, Hkv: 1, D: 64, causal: true, scale: 0 }, 'f16', 18);
    await checkDense(device, { B: 1, Sq: 70, Sk: 150, Hq: 2, Hkv: 1, D: 64, causal: true, scale: -0.5 }, 'bf16', 19);
  });

  it('packed varlen prefill equals per-sequence attention (empty sequences included)', async () => {
    const lensQ = [5, 0, 70, 33, 3];
    const lensK = [9, 4, 70, 100, 0];
    const Hq = 4;
    const Hkv = 2;
    const D = 72;
    for (const dtype of DTYPES) {
      const Tq = lensQ.reduce((a, b) => a + b);
      const Tk = lensK.reduce((a, b) => a + b);
      const q = quantizeTo(randn(Tq * Hq * D, 31), dtype);
      const k = quantizeTo(randn(Tk * Hkv * D, 32), dtype);
      const v = quantizeTo(randn(Tk * Hkv * D, 33), dtype);
      const cu = (l: number[]) => Int32Array.from([0, ...l.map((_, i) => l.slice(0, i + 1).reduce((a, b) => a + b))]);
      const cuQ = cu(lensQ);
      const cuK = cu(lensK);
      const o = { device, dtype };
      const r = flashAttentionVarlen(
        tensor(q, [Tq, Hq, D], o), tensor(k, [Tk, Hkv, D], o), tensor(v, [Tk, Hkv, D], o),
        tensor(cuQ, [cuQ.length], { device }), tensor(cuK, [cuK.length], { device }), { causal: true, returnLse: true },
      );
      const out = (await r.out.toArray()) as Float32Array;
      const lse = (await r.lse!.toArray()) as Float32Array;
      expect(r.lse!.shape).toEqual([Hq, Tq]);
      for (let sIdx = 0; sIdx < lensQ.length; sIdx++) {
        const s = { B: 1, Sq: lensQ[sIdx], Sk: lensK[sIdx], Hq, Hkv, D, causal: true };
        if (s.Sq === 0) continue;
        const qs = q.subarray(cuQ[sIdx] * Hq * D, cuQ[sIdx + 1] * Hq * D);
        const ks = k.subarray(cuK[sIdx] * Hkv * D, cuK[sIdx + 1] * Hkv * D);
        const vs = v.subarray(cuK[sIdx] * Hkv * D, cuK[sIdx + 1] * Hkv * D);
        const ref = attentionRef(qs, ks, vs, s);
        const naive = attentionNaive(qs, ks, vs, s, dtype);
        const got = compare(out.subarray(cuQ[sIdx] * Hq * D, cuQ[sIdx + 1] * Hq * D), ref.out);
        expect(got.nonFinite).toBe(0);
        expect(got.maxAbs, `${dtype} seq ${sIdx}`).toBeLessThanOrEqual(2 * compare(naive, ref.out).maxAbs + 1e-5);
        for (let h = 0; h < Hq; h++)
          for (let i = 0; i < s.Sq; i++) {
            const want = ref.lse[h * s.Sq + i];
            const have = lse[h * Tq + cuQ[sIdx] + i];
            if (want === -Infinity) expect(have).toBe(-Infinity);
            else expect(Math.abs(have - want)).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(want)));
          }
      }
    }
  });

  it('rejects bad packed offsets at the next sync point', async () => {
    const q = tensor(randn(6 * 8, 1), [6, 1, 8], { device });
    const cuQ = tensor(new Int32Array([0, 4, 6]), [3], { device });
    const cuK = tensor(new Int32Array([0, 5, 3]), [3], { device }); // decreasing
    const { out } = flashAttentionVarlen(q, q, q, cuQ, cuK);
    const err = await out.toArray().then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/non-decreasing cuSeqlensK/);
    const { out: out2 } = flashAttentionVarlen(q, q, q, cuQ, tensor(new Int32Array([0, 2, 5]), [3], { device }));
    const err2 = await out2.toArray().then(() => null, (e: Error) => e);
    expect(err2?.message).toMatch(/cuSeqlensK\[2\] = 6 .* but received 5/);
  });
});

/** A paged cache holding random rows everywhere; sequence t's tokens live on shuffled pages. */
function pagedSetup(lens: number[], pageSize: number, Hkv: number, D: number, dtype: FloatDType, seed: number) {
  const maxPages = Math.max(1, ...lens.map((l) => Math.ceil(l / pageSize))) + 1;
  const used = lens.reduce((a, l) => a + Math.ceil(l / pageSize), 0);
  const numPages = used + 3;
  const r = rng(seed);
  const perm = Array.from({ length: numPages }, (_, i) => i).sort(() => r() - 0.5);
  const table = new Int32Array(lens.length * maxPages).fill(-7); // unused entries are never read
  let next = 0;
  lens.forEach((l, t) => {
    for (let i = 0; i < Math.ceil(l / pageSize); i++) table[t * maxPages + i] = perm[next++];
  });
  const kc = quantizeTo(randn(numPages * pageSize * Hkv * D, seed + 1), dtype);
  const vc = quantizeTo(randn(numPages * pageSize * Hkv * D, seed + 2), dtype);
  // The contiguous K/V of sequence t, gathered through the page table.
  const gather = (c: Float32Array, t: number) => {
    const rowLen = Hkv * D;
    const out = new Float32Array(lens[t] * rowLen);
    for (let j = 0; j < lens[t]; j++) {
      const slot = table[t * maxPages + Math.floor(j / pageSize)] * pageSize + (j % pageSize);
      out.set(c.subarray(slot * rowLen, (slot + 1) * rowLen), j * rowLen);
    }
    return out;
  };
  return { maxPages, numPages, table, kc, vc, gather };
}

/**
 * pagedAttention (no split, 5 splits, 700 splits, auto) against the contiguous op and the
 * fp64 reference. 700 splits: more than any row has keys (empty splits), and more than
 * the CUDA combine kernel stages at once (512).
 */
async function checkPaged(
  device: string, dtype: FloatDType, pageSize: number, D: number, Hq: number, Hkv: number, lens = [1, 339, 0, 700, 64],
) {
  const T = lens.length;
  const p = pagedSetup(lens, pageSize, Hkv, D, dtype, pageSize + D);
  const q = quantizeTo(randn(T * Hq * D, 5), dtype);
  const o = { device, dtype };
  const args = [
    tensor(q, [T, Hq, D], o), tensor(p.kc, [p.numPages, pageSize, Hkv, D], o), tensor(p.vc, [p.numPages, pageSize, Hkv, D], o),
    tensor(p.table, [T, p.maxPages], { device }), tensor(Int32Array.from(lens), [T], { device }),
  ] as const;
  const runs = await Promise.all(
    [1, 5, 700, undefined].map(async (numSplits) => {
      const r = pagedAttention(...args, { numSplits, returnLse: true });
      return { out: (await r.out.toArray()) as Float32Array, lse: (await r.lse!.toArray()) as Float32Array };
    }),
  );
  const one = runs[0];
  for (let t = 0; t < T; t++) {
    const rowQ = q.subarray(t * Hq * D, (t + 1) * Hq * D);
    const slice = (a: Float32Array) => a.subarray(t * Hq * D, (t + 1) * Hq * D);
    if (lens[t] === 0) {
      for (const r of runs) expect(Array.from(slice(r.out)).every((x) => x === 0)).toBe(true);
      continue;
    }
    const s = { B: 1, Sq: 1, Sk: lens[t], Hq, Hkv, D, causal: false };
    const k = p.gather(p.kc, t);
    const v = p.gather(p.vc, t);
    const contiguous = (await flashAttention(tensor(rowQ, [1, 1, Hq, D], o), tensor(k, [1, lens[t], Hkv, D], o), tensor(v, [1, lens[t], Hkv, D], o)).out.toArray()) as Float32Array;
    const ref = attentionRef(rowQ, k, v, s);
    const bound = 2 * compare(attentionNaive(rowQ, k, v, s, dtype), ref.out).maxAbs + 1e-5;
    expect(compare(slice(one.out), contiguous).maxAbs, `seq ${t} paged vs contiguous`).toBeLessThanOrEqual(ULP2[dtype]);
    for (const [i, r] of runs.entries()) {
      const e = compare(slice(r.out), ref.out);
      expect(e.nonFinite).toBe(0);
      expect(e.maxAbs, `seq ${t} run ${i}`).toBeLessThanOrEqual(bound);
      expect(compare(slice(r.out), slice(one.out)).maxAbs, `seq ${t} split run ${i} vs no split`).toBeLessThanOrEqual(ULP2[dtype]);
      for (let h = 0; h < Hq; h++)
        expect(Math.abs(r.lse[t * Hq + h] - ref.lse[h]), `lse seq ${t} head ${h}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref.lse[h])));
    }
  }
}

/**
 * pagedAttention rows as the model's prefill passes them: sequence 0 a 37-token chunk after
 * 50 cached tokens, sequence 1 one decode row, sequence 2 a 9-token chunk from 0, sequence 3
 * a 5-token chunk (shorter than a prefill run: the per-row path) — each row against the
 * fp64 per-row reference, output and LSE.
 */
async function checkPrefillChunks(device: string, dtype: FloatDType) {
  const [Hq, Hkv, D, pageSize] = [8, 2, 40, 16];
  // Rows, in order (cuda takes 64-row tiles that are one chunk; cpu any run of 8+ rows):
  // 0–127 one chunk (two whole tiles); 128–191 two sequences whose lengths rise by one
  // across the seam but whose pages differ (one tile, not a chunk); 192–255 decode rows
  // and short chunks; 244–285 a chunk whose last 30 rows are the final, partial tile.
  const chunks = [
    { total: 138, from: 10 },
    { total: 32, from: 0 },
    { total: 64, from: 32 },
    { total: 20, from: 19 },
    { total: 9, from: 0 },
    { total: 5, from: 0 },
    { total: 87, from: 50 },
    { total: 70, from: 28 },
  ];
  const seqPages = chunks.map((c) => Math.ceil(c.total / pageSize));
  const maxPages = Math.max(...seqPages) + 1;
  const numPages = seqPages.reduce((a, b) => a + b, 0) + 2;
  const r = rng(404);
  const perm = Array.from({ length: numPages }, (_, i) => i).sort(() => r() - 0.5);
  let next = 0;
  const pagesOf = seqPages.map((n) => perm.slice(next, (next += n)));
  const rowSeq: number[] = [];
  const lens: number[] = [];
  chunks.forEach((c, si) => {
    for (let p = c.from; p < c.total; p++) {
      rowSeq.push(si);
      lens.push(p + 1);
    }
  });
  const T = lens.length;
  const table = new Int32Array(T * maxPages).fill(-3);
  rowSeq.forEach((si, t) => table.set(pagesOf[si], t * maxPages));
  const kc = quantizeTo(randn(numPages * pageSize * Hkv * D, 405), dtype);
  const vc = quantizeTo(randn(numPages * pageSize * Hkv * D, 406), dtype);
  const q = quantizeTo(randn(T * Hq * D, 407), dtype);
  const gather = (c: Float32Array, si: number, len: number) => {
    const rowLen = Hkv * D;
    const out = new Float32Array(len * rowLen);
    for (let j = 0; j < len; j++) {
      const slot = pagesOf[si][Math.floor(j / pageSize)] * pageSize + (j % pageSize);
      out.set(c.subarray(slot * rowLen, (slot + 1) * rowLen), j * rowLen);
    }
    return out;
  };
  const o = { device, dtype };
  const res = pagedAttention(
    tensor(q, [T, Hq, D], o), tensor(kc, [numPages, pageSize, Hkv, D], o), tensor(vc, [numPages, pageSize, Hkv, D], o),
    tensor(table, [T, maxPages], { device }), tensor(Int32Array.from(lens), [T], { device }), { returnLse: true },
  );
  const out = (await res.out.toArray()) as Float32Array;
  const lse = (await res.lse!.toArray()) as Float32Array;
  for (let t = 0; t < T; t++) {
    const s = { B: 1, Sq: 1, Sk: lens[t], Hq, Hkv, D, causal: false };
    const rowQ = q.subarray(t * Hq * D, (t + 1) * Hq * D);
    const k = gather(kc, rowSeq[t], lens[t]);
    const v = gather(vc, rowSeq[t], lens[t]);
    const ref = attentionRef(rowQ, k, v, s);
    const e = compare(out.subarray(t * Hq * D, (t + 1) * Hq * D), ref.out);
    expect(e.nonFinite).toBe(0);
    expect(e.maxAbs, `row ${t}`).toBeLessThanOrEqual(2 * compare(attentionNaive(rowQ, k, v, s, dtype), ref.out).maxAbs + 1e-5);
    for (let h = 0; h < Hq; h++) expect(Math.abs(lse[t * Hq + h] - ref.lse[h]), `lse row ${t} head ${h}`).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref.lse[h])));
  }
}

describe.each(DEVICES)('pagedAttention on %s', (device) => {
  it.each([
    ['f16', 100, 16],
    ['f32', 37, 5],
  ] as const)('%s sliding window %i (page size %i): each row sees only its last window keys', async (dtype, window, pageSize) => {
    const lens = [1, 339, 0, 700, window, window + 1];
    const T = lens.length;
    const [Hq, Hkv, D] = [8, 2, 64];
    const p = pagedSetup(lens, pageSize, Hkv, D, dtype, 77 + window);
    const q = quantizeTo(randn(T * Hq * D, 6), dtype);
    const o = { device, dtype };
    const args = [
      tensor(q, [T, Hq, D], o), tensor(p.kc, [p.numPages, pageSize, Hkv, D], o), tensor(p.vc, [p.numPages, pageSize, Hkv, D], o),
      tensor(p.table, [T, p.maxPages], { device }), tensor(Int32Array.from(lens), [T], { device }),
    ] as const;
    const full = (await pagedAttention(...args).out.toArray()) as Float32Array;
    for (const numSplits of [1, 3, undefined]) {
      const out = (await pagedAttention(...args, { window, numSplits }).out.toArray()) as Float32Array;
      for (let t = 0; t < T; t++) {
        const slice = (a: Float32Array) => a.subarray(t * Hq * D, (t + 1) * Hq * D);
        if (lens[t] === 0) {
          expect(Array.from(slice(out)).every((x) => x === 0)).toBe(true);
          continue;
        }
        const s = { B: 1, Sq: 1, Sk: lens[t], Hq, Hkv, D, causal: false, window };
        const rowQ = q.subarray(t * Hq * D, (t + 1) * Hq * D);
        const k = p.gather(p.kc, t);
        const v = p.gather(p.vc, t);
        const ref = attentionRef(rowQ, k, v, s);
        const bound = 2 * compare(attentionNaive(rowQ, k, v, s, dtype), ref.out).maxAbs + 1e-5;
        const e = compare(slice(out), ref.out);
        expect(e.nonFinite).toBe(0);
        expect(e.maxAbs, `seq ${t} splits ${numSplits}`).toBeLessThanOrEqual(bound);
        // rows longer than the window must differ from attending to everything
        if (lens[t] > window) expect(compare(slice(out), slice(full)).maxAbs, `seq ${t} window applied`).toBeGreaterThan(10 * bound);
        else expect(compare(slice(out), slice(full)).maxAbs).toBeLessThanOrEqual(ULP2[dtype]);
      }
    }
    await expect(async () => pagedAttention(...args, { window: -1 })).rejects.toThrow(/non-negative integer opts.window .* received -1/);
    const q4 = tensor(q.subarray(0, Hq * D), [1, 1, Hq, D], o);
    const k4 = tensor(p.gather(p.kc, 1).subarray(0, 3 * Hkv * D), [1, 3, Hkv, D], o);
    expect(() => flashAttention(q4, k4, k4, { window: 2 } as never)).toThrow(/opts.window .* pagedAttention only/);
  });

  describe.each(DTYPES)('%s', (dtype) => {
    it.each([
      [16, 128, 8, 2],
      [64, 64, 4, 4],
      [7, 96, 6, 1],
      // D = 72 ends in half a 16-lane vector (row groups of 4); G = 3 takes rows one at a time.
      [16, 72, 8, 2],
      [5, 40, 9, 3],
      [8, 200, 4, 2],
    ])('pageSize=%i D=%i Hq=%i Hkv=%i: equals the contiguous op, split-KV equals no split', async (pageSize, D, Hq, Hkv) => {
      await checkPaged(device, dtype, pageSize, D, Hq, Hkv);
    });
    // One short sequence is one key split: on the cpu its kv heads are then shared out
    // over the threads in contiguous groups (uneven when Hkv = 3 or 5).
    it.each([
      [16, 64, 8, 4, 37],
      [32, 80, 9, 3, 128],
      [8, 48, 5, 5, 100],
    ])('pageSize=%i D=%i Hq=%i Hkv=%i, one sequence of %i keys: equals the contiguous op', async (pageSize, D, Hq, Hkv, len) => {
      await checkPaged(device, dtype, pageSize, D, Hq, Hkv, [len]);
    });
  });

  it.each(DTYPES)('%s: scores rising ~200 (log2 units) along the sequence still match the reference', async (dtype) => {
    // Key j is noise plus 0.5·j in every element, q is positive: the scores climb with j,
    // so the running max grows all along and a kernel that stopped rescaling O and l
    // (or let P = 2^(s − m) use a stale m far below s) overflows to inf.
    const [L, Hq, Hkv, D, pageSize] = [300, 4, 1, 16, 16];
    const p = pagedSetup([L], pageSize, Hkv, D, dtype, 91);
    for (let slot = 0; slot < p.numPages * pageSize; slot++) {
      const page = Math.floor(slot / pageSize);
      const i = Array.from(p.table).indexOf(page); // the page's place in the sequence
      if (i < 0) continue;
      const j = i * pageSize + (slot % pageSize);
      for (let e = 0; e < Hkv * D; e++) p.kc[slot * Hkv * D + e] = quantizeTo(Float32Array.of(0.1 * p.kc[slot * Hkv * D + e] + 0.5 * j), dtype)[0];
    }
    const q = quantizeTo(Float32Array.from(randn(Hq * D, 8), (x) => 0.3 + 0.05 * x), dtype);
    const o = { device, dtype };
    const r = pagedAttention(
      tensor(q, [1, Hq, D], o), tensor(p.kc, [p.numPages, pageSize, Hkv, D], o), tensor(p.vc, [p.numPages, pageSize, Hkv, D], o),
      tensor(p.table, [1, p.maxPages], { device }), tensor(Int32Array.of(L), [1], { device }), { returnLse: true },
    );
    const out = (await r.out.toArray()) as Float32Array;
    const lse = (await r.lse!.toArray()) as Float32Array;
    const s = { B: 1, Sq: 1, Sk: L, Hq, Hkv, D, causal: false };
    const k = p.gather(p.kc, 0);
    const v = p.gather(p.vc, 0);
    const ref = attentionRef(q, k, v, s);
    expect(ref.lse[0] - Math.log(L)).toBeGreaterThan(100); // the scores really do climb
    const e = compare(out, ref.out);
    expect(e.nonFinite).toBe(0);
    expect(e.maxAbs).toBeLessThanOrEqual(2 * compare(attentionNaive(q, k, v, s, dtype), ref.out).maxAbs + 1e-5);
    for (let h = 0; h < Hq; h++) expect(Math.abs(lse[h] - ref.lse[h])).toBeLessThanOrEqual(1e-5 * (1 + Math.abs(ref.lse[h])));
  });

  it.each(DTYPES)('%s: prefill chunks (rows of one sequence, lengths rising by one) match the per-row reference', async (dtype) => {
    await checkPrefillChunks(device, dtype);
  });

  it('rejects page indices out of range and seqLens past the block table at the next sync point', async () => {
    const q = tensor(randn(2 * 2 * 8, 1), [2, 2, 8], { device });
    const kc = tensor(randn(3 * 4 * 1 * 8, 2), [3, 4, 1, 8], { device });
    const bt = (rows: number[]) => tensor(Int32Array.from(rows), [2, 2], { device });
    const lens = (l: number[]) => tensor(Int32Array.from(l), [2], { device });
    const bad = async (table: number[], l: number[]) =>
      pagedAttention(q, kc, kc, bt(table), lens(l)).out.toArray().then(() => null, (e: Error) => e);
    expect((await bad([0, 1, 2, 3], [8, 5]))?.message).toMatch(/page indices in \[0, 3\) but blockTable\[1\]\[1\] = 3/);
    expect((await bad([0, 1, 2, -1], [8, 4]))).toBeNull(); // the -1 is past seqLens[1]: never read
    expect((await bad([0, 1, 2, 1], [8, 9]))?.message).toMatch(/seqLens\[1\] in \[0, 8\] .* but received 9/);
    // A prefill chunk (8 rows, lengths 5–12; f16, which cuda runs on its FA tiles) whose
    // third page is outside the cache: the chunk path must not take it (cuda checks its
    // tiles on the device) and the first row that reads the page is named.
    const q8 = tensor(randn(8 * 2 * 8, 3), [8, 2, 8], { device, dtype: 'f16' });
    const kc16 = tensor(randn(3 * 4 * 1 * 8, 2), [3, 4, 1, 8], { device, dtype: 'f16' });
    const chunk = pagedAttention(q8, kc16, kc16, tensor(Int32Array.from({ length: 24 }, (_, i) => [0, 1, 5][i % 3]), [8, 3], { device }),
      tensor(Int32Array.from({ length: 8 }, (_, i) => 5 + i), [8], { device }));
    await expect(chunk.out.toArray()).rejects.toThrow(/page indices in \[0, 3\) but blockTable\[4\]\[2\] = 5/);
  });
});

describe('attention on every cpu ISA path', () => {
  it.each(CPU_ISAS)('%s matches the reference (dense, paged)', async (isa) => {
    const restore = forceCpuIsa(isa);
    try {
      for (const dtype of DTYPES) {
        await checkDense('cpu', { B: 2, Sq: 77, Sk: 131, Hq: 6, Hkv: 2, D: 88, causal: true }, dtype, 3);
        await checkDense('cpu', { B: 1, Sq: 5, Sk: 300, Hq: 4, Hkv: 4, D: 256, causal: false }, dtype, 4);
        await checkPaged('cpu', dtype, 16, 88, 6, 3);
        await checkPrefillChunks('cpu', dtype);
      }
    } finally {
      restore();
    }
  });
});

describe('flashAttention at long sequences (cpu)', () => {
  // One head and a small D: the fp64 reference is O(Sq·Sk·D) in plain TS.
  it.each([
    [1023, 1024, true, 'f32'],
    [2048, 2048, false, 'bf16'],
  ] as const)('Sq=%i Sk=%i causal=%s %s', async (Sq, Sk, causal, dtype) => {
    await checkDense('cpu', { B: 1, Sq, Sk, Hq: 1, Hkv: 1, D: 8, causal }, dtype, 9);
  });

  it('Sq = Sk = 16384 runs in O(S) memory: peak RSS grows far less than the 1 GiB a score matrix needs', async () => {
    const S = 16384;
    const D = 64;
    const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const q = tensor(randn(S * D, 1), [1, S, 1, D], { dtype: 'f16' });
    const k = tensor(randn(S * D, 2), [1, S, 1, D], { dtype: 'f16' });
    const v = tensor(randn(S * D, 3), [1, S, 1, D], { dtype: 'f16' });
    await v.toArray();
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    const before = hwm();
    const { out } = flashAttention(q, k, v, { causal: true });
    const res = await out.toArray();
    const growth = hwm() - before;
    expect(res.every(Number.isFinite)).toBe(true);
    // Output + its f32 copy for toArray (~6 MiB) and per-thread tiles; a score matrix is 1 GiB.
    expect(growth).toBeLessThan(64 * 1024 * 1024);
    // Spot-check the last row (it sees every key) against fp64.
    const qa = (await q.toArray()) as Float32Array;
    const ka = (await k.toArray()) as Float32Array;
    const va = (await v.toArray()) as Float32Array;
    const last = attentionRef(qa.subarray((S - 1) * D), ka, va, { B: 1, Sq: 1, Sk: S, Hq: 1, Hkv: 1, D, causal: false });
    expect(compare(res.subarray((S - 1) * D), last.out).maxAbs).toBeLessThanOrEqual(2e-3);
  });
});

describe('attention arguments', () => {
  const t = (shape: number[], dtype: FloatDType = 'f32') => tensor(randn(shape.reduce((a, b) => a * b), 1), shape, { dtype });
  const q = t([1, 4, 6, 16]);
  const k = t([1, 5, 2, 16]);
  it('rejects bad shapes, dtypes and options with clear errors', () => {
    expect(() => flashAttention(q, t([1, 5, 4, 16]), t([1, 5, 4, 16]))).toThrow(/q head count \(6\) to be a multiple of the kv head count \(4\)/);
    expect(() => flashAttention(t([1, 4, 2, 12]), t([1, 5, 2, 12]), t([1, 5, 2, 12]))).toThrow(/multiple of 8 in \[8, 256\] but received 12/);
    expect(() => flashAttention(t([1, 4, 2, 264]), t([1, 5, 2, 264]), t([1, 5, 2, 264]))).toThrow(/but received 264/);
    expect(() => flashAttention(q, k, t([1, 6, 2, 16]))).toThrow(/Expected v of the shape of k \[1, 5, 2, 16\] but received \[1, 6, 2, 16\]/);
    expect(() => flashAttention(q, k, t([1, 5, 2, 8]))).toThrow(/Expected v of the shape of k/);
    expect(() => flashAttention(q, t([1, 5, 2, 8]), t([1, 5, 2, 8]))).toThrow(/Expected k with head dim 16 \(that of q\) but received \[1, 5, 2, 8\]/);
    expect(() => flashAttention(q, t([2, 5, 2, 16]), t([2, 5, 2, 16]))).toThrow(/Expected k with batch 1 \(that of q\) but received \[2, 5, 2, 16\]/);
    expect(() => flashAttention(q, t([1, 5, 2, 16], 'f16'), t([1, 5, 2, 16], 'f16'))).toThrow(/Expected k to have the dtype of q \(f32\) but received f16/);
    expect(() => flashAttention(q, k, k, { scale: Number.NaN })).toThrow(/Expected a finite number for opts.scale but received NaN/);
    expect(() => flashAttention(q, k, k, { scale: Number.POSITIVE_INFINITY })).toThrow(/opts.scale/);
    expect(() => flashAttention(t([4, 6, 16]), k, k)).toThrow(/Expected q of rank 4 \[B, S, H, D\] but received shape \[4, 6, 16\]/);
    expect(() => flashAttention(q, k, k, 'causal' as never)).toThrow(/options object for opts/);
  });

  it('native entry points validate again (a direct call cannot crash)', () => {
    const n = nativeForTests();
    expect(() => n.attention(q.handle, t([1, 5, 4, 16]).handle, t([1, 5, 4, 16]).handle, null, null, {})).toThrow(RangeError);
    expect(() => n.attention(q.handle, k.handle, k.handle, null, null, { scale: Number.NaN })).toThrow(/finite number for opts.scale/);
    expect(() => n.attention(q.handle, k.handle, t([1, 6, 2, 16]).handle, null, null, {})).toThrow(/v of the shape of k/);
    expect(() => n.pagedAttention(t([2, 2, 8]).handle, t([3, 4, 1, 8]).handle, t([3, 4, 1, 8]).handle, tensor(new Int32Array(2), [1, 2]).handle, tensor(new Int32Array(2), [2]).handle, {})).toThrow(/blockTable of shape \[2, maxPages\]/);
  });

  it('pagedAttention validates its arguments', () => {
    const pq = t([2, 4, 16]);
    const kc = t([3, 4, 2, 16]);
    const bt = tensor(new Int32Array(4), [2, 2]);
    const lens = tensor(new Int32Array(2), [2]);
    expect(() => pagedAttention(pq, t([3, 4, 3, 16]), t([3, 4, 3, 16]), bt, lens)).toThrow(/q head count \(4\) to be a multiple of the kv head count \(3\)/);
    expect(() => pagedAttention(pq, kc, t([3, 4, 2, 8]), bt, lens)).toThrow(/Expected vCache of shape \[numPages, pageSize, Hkv, 16\]/);
    expect(() => pagedAttention(pq, kc, kc, tensor(new Int32Array(4), [4]), lens)).toThrow(/Expected blockTable of shape \[2, maxPages\] but received \[4\]/);
    expect(() => pagedAttention(pq, kc, kc, bt, tensor([1, 2], [2]))).toThrow(/Expected dtype i32 for seqLens but received f32/);
    expect(() => pagedAttention(pq, kc, kc, bt, lens, { numSplits: 1.5 })).toThrow(/integer opts.numSplits/);
    expect(() => pagedAttention(pq, kc, kc, bt, lens, { scale: Number.NaN })).toThrow(/finite number for opts.scale/);
  });

  it('pagedSlots maps (sequence, position) to cache slots for ropeAndCache', () => {
    expect(Array.from(pagedSlots([[4, 1], [0]], [0, 0, 1], [0, 5, 3], 4))).toEqual([16, 5, 3]);
    expect(() => pagedSlots([[4, 1]], [0], [8], 4)).toThrow(/Expected positions\[0\] in \[0, 8\) but received 8/);
  });
});
