// RoPE conformance on every device against the fp64 HF-formula reference.
import { describe, expect, it } from 'vitest';
import {
  pagedAttention, pagedSlots, rope, ropeAndCache, ropeScalingFromHF, synchronize, tensor, writeKvCache, type RopeScaling,
} from '../../lib/index.js';
import { compare, DEVICES, nativeForTests, quantizeTo, randn, rng } from '../helpers.js';
import { attentionNaive, attentionRef } from '../reference/attention.js';
import { ropeRef, type RopeRefOptions } from '../reference/rope.js';

type FloatDType = 'f32' | 'f16' | 'bf16';
// Relative-norm bounds: f32 = the angle/sincos error (we reduce the angle in f64;
// measured ~1e-7) plus f32 rounding; f16/bf16 = one rounding of the output.
const TOL: Record<FloatDType, number> = { f32: 1e-6, f16: 1e-3, bf16: 8e-3 };

const SCALINGS: (RopeScaling | undefined)[] = [
  undefined,
  { type: 'linear', factor: 4 },
  { type: 'dynamic', factor: 2, originalMaxPositions: 4096, seqLen: 20000 },
  { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
  { type: 'yarn', factor: 4, originalMaxPositions: 32768 },
];

function positions(T: number, seed: number, max = 131071): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: T }, () => Math.floor(r() * (max + 1)));
}

async function runRope(device: string, dtype: FloatDType, T: number, Hq: number, Hkv: number, D: number, opts: RopeRefOptions, seed: number) {
  const q0 = quantizeTo(randn(T * Hq * D, seed), dtype);
  const k0 = quantizeTo(randn(T * Hkv * D, seed + 1), dtype);
  const pos = positions(T, seed + 2);
  const q = tensor(q0, [T, Hq, D], { dtype, device });
  const k = tensor(k0, [T, Hkv, D], { dtype, device });
  rope(q, k, tensor(pos, [T], { device }), opts);
  return { q0, k0, pos, q: (await q.toArray()) as Float32Array, k: (await k.toArray()) as Float32Array };
}

describe.each(DEVICES)('rope on %s', (device) => {
  describe.each<FloatDType>(['f32', 'f16', 'bf16'])('%s', (dtype) => {
    it.each([
      [64, 'neox'],
      [80, 'gptj'],
      [128, 'neox'],
      [256, 'gptj'],
    ] as const)('D=%i %s, every scaling, partial rotary', async (D, style) => {
      for (const [si, scaling] of SCALINGS.entries()) {
        for (const rotaryDim of [D, D / 2]) {
          const T = 5;
          const Hq = 4;
          const Hkv = 2;
          const opts = { base: 500000, style, rotaryDim, scaling };
          const r = await runRope(device, dtype, T, Hq, Hkv, D, opts, 100 * D + 10 * si + rotaryDim);
          const qs = compare(r.q, ropeRef(r.q0, T, Hq, D, r.pos, opts));
          const ks = compare(r.k, ropeRef(r.k0, T, Hkv, D, r.pos, opts));
          const what = `D=${D} ${style} scaling=${scaling?.type ?? 'none'} rotaryDim=${rotaryDim}`;
          expect(qs.nonFinite + ks.nonFinite, what).toBe(0);
          expect(qs.relNorm, what).toBeLessThanOrEqual(TOL[dtype]);
          expect(ks.relNorm, what).toBeLessThanOrEqual(TOL[dtype]);
          // dims past rotaryDim pass through bit-identical
          for (let t = 0; t < T * Hq; t++)
            for (let d = rotaryDim; d < D; d++) expect(r.q[t * D + d]).toBe(r.q0[t * D + d]);
        }
      }
    });

    it('inverse undoes the rotation; q alone (k omitted) works', async () => {
      const T = 7;
      const H = 3;
      const D = 64;
      const x0 = quantizeTo(randn(T * H * D, 5), dtype);
      const x = tensor(x0, [T, H, D], { dtype, device });
      const p = tensor(positions(T, 6), [T], { device });
      rope(x, null, p, { base: 10000 });
      const rotated = (await x.toArray()) as Float32Array;
      expect(compare(rotated, ropeRef(x0, T, H, D, Array.from(positions(T, 6)), { base: 10000, style: 'neox', rotaryDim: D })).relNorm).toBeLessThanOrEqual(TOL[dtype]);
      rope(x, undefined, p, { base: 10000, inverse: true });
      const back = compare((await x.toArray()) as Float32Array, x0);
      // two roundings of the storage type (forward, inverse)
      expect(back.relNorm).toBeLessThanOrEqual(2 * TOL[dtype]);
    });
  });

  it('q·k after rotation depends only on the distance m − n (relative position)', async () => {
    const D = 128;
    const qv = randn(D, 71);
    const kv = randn(D, 72);
    const pairs = [
      [1000, 990],
      [50000, 49990],
      [131071, 131061],
    ];
    const dots: number[] = [];
    for (const [m, n] of pairs) {
      const q = tensor(qv, [1, 1, D], { device });
      const k = tensor(kv, [1, 1, D], { device });
      rope(q, null, tensor([m], [1], { dtype: 'i32', device }), { base: 500000 });
      rope(k, null, tensor([n], [1], { dtype: 'i32', device }), { base: 500000 });
      const a = (await q.toArray()) as Float32Array;
      const b = (await k.toArray()) as Float32Array;
      dots.push(a.reduce((s, v, i) => s + v * b[i], 0));
    }
    for (const d of dots) expect(Math.abs(d - dots[0])).toBeLessThanOrEqual(1e-4 * Math.abs(dots[0]) + 1e-4);
  });

  it('stays accurate at position 131071 with base 500000 (f32)', async () => {
    const T = 16;
    const D = 128;
    const x0 = randn(T * D, 81);
    const pos = Int32Array.from({ length: T }, (_, i) => 131071 - i * 977);
    const x = tensor(x0, [T, 1, D], { device });
    rope(x, null, tensor(pos, [T], { device }), { base: 500000 });
    const s = compare((await x.toArray()) as Float32Array, ropeRef(x0, T, 1, D, pos, { base: 500000, style: 'neox', rotaryDim: D }));
    // An f32 angle (pos·inv_freq rounded to f32) would be off by up to ~4e-3 rad here.
    expect(s.maxAbs).toBeLessThanOrEqual(2e-6 * 4);
  });

  it('rejects negative positions at the next sync point', async () => {
    const q = tensor(randn(2 * 8, 3), [2, 1, 8], { device });
    rope(q, null, tensor([3, -1], [2], { dtype: 'i32', device }));
    const err = await q.toArray().then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/rope/);
    expect(err?.message).toMatch(/-1/);
  });
});

describe('rope arguments', () => {
  const q = tensor(randn(2 * 2 * 8, 1), [2, 2, 8]);
  const p = tensor([0, 1], [2], { dtype: 'i32' });
  it('rejects bad input with clear errors', () => {
    expect(() => rope(q, null, p, { rotaryDim: 7 })).toThrow(/Expected an even opts.rotaryDim in \[2, 8\] but received 7/);
    expect(() => rope(q, null, p, { rotaryDim: 10 })).toThrow(/\[2, 8\] but received 10/);
    expect(() => rope(q, null, tensor([0, 1, 2], [3], { dtype: 'i32' }))).toThrow(/Expected positions of shape \[2\] but received \[3\]/);
    expect(() => rope(q, null, tensor([0, 1], [2]))).toThrow(/Expected dtype i32 for positions but received f32/);
    expect(() => rope(q, null, p, { base: Number.POSITIVE_INFINITY })).toThrow(/finite number for opts.base/);
    expect(() => rope(q, null, p, { scaling: { type: 'ntk' } as never })).toThrow(/Expected opts.scaling.type to be one of linear, dynamic, llama3, yarn but received 'ntk'/);
    expect(() => rope(q, null, p, { scaling: { type: 'linear', factor: Number.NaN } })).toThrow(/opts.scaling.factor/);
    expect(() => rope(q, tensor(randn(2 * 2 * 4, 2), [2, 2, 4]), p)).toThrow(/Expected k of shape \[2, Hkv, 8\]/);
    expect(() => rope(q, null, p, { style: 'llama' as never })).toThrow(/'neox' or 'gptj'/);
  });
  it('parses HF rope_scaling', () => {
    expect(ropeScalingFromHF(null)).toBeUndefined();
    expect(ropeScalingFromHF({ rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 })).toEqual({
      type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192,
    });
    expect(ropeScalingFromHF({ type: 'yarn', factor: 4, original_max_position_embeddings: 32768 })).toMatchObject({ type: 'yarn', betaFast: 32, betaSlow: 1 });
    expect(ropeScalingFromHF({ type: 'linear', factor: 2 })).toEqual({ type: 'linear', factor: 2 });
    expect(() => ropeScalingFromHF({ type: 'longrope', factor: 2 })).toThrow(/Unsupported rope_scaling type 'longrope'/);
  });
});

describe('rope on every cpu ISA path', () => {
  it.each(['avx512', 'avx2', 'scalar'] as const)('%s matches the reference', async (isa) => {
    const n = nativeForTests();
    const prev = n.devices().find((d) => d.name === 'cpu')!.detail;
    n.setCpuIsa(isa);
    try {
      for (const dtype of ['f32', 'f16', 'bf16'] as const)
        for (const style of ['neox', 'gptj'] as const) {
          const opts = { base: 10000, style, rotaryDim: 96, scaling: { type: 'yarn', factor: 4, originalMaxPositions: 4096 } as const };
          const r = await runRope('cpu', dtype, 9, 3, 1, 112, opts, 7);
          expect(compare(r.q, ropeRef(r.q0, 9, 3, 112, r.pos, opts)).relNorm, `${isa} ${dtype} ${style}`).toBeLessThanOrEqual(TOL[dtype]);
          expect(compare(r.k, ropeRef(r.k0, 9, 1, 112, r.pos, opts)).relNorm).toBeLessThanOrEqual(TOL[dtype]);
        }
    } finally {
      n.setCpuIsa(prev.startsWith('avx512') ? 'avx512' : (prev as 'avx2' | 'scalar'));
    }
  });
});

describe.each(DEVICES)('ropeAndCache on %s', (device) => {
  it.each<FloatDType>(['f32', 'f16'])('%s: q rotated in place, rotated k and v written to their pages, other slots untouched', async (dtype) => {
    const T = 6;
    const Hq = 4;
    const Hkv = 2;
    const D = 80;
    const pages = 3;
    const pageSize = 4;
    const q0 = quantizeTo(randn(T * Hq * D, 91), dtype);
    const k0 = quantizeTo(randn(T * Hkv * D, 92), dtype);
    const v0 = quantizeTo(randn(T * Hkv * D, 93), dtype);
    const pos = Int32Array.from([5, 6, 7, 0, 1, 100]);
    const slots = Int32Array.from([9, 10, 11, 0, 1, 4]);
    const fill = quantizeTo(randn(pages * pageSize * Hkv * D, 94), dtype);
    const q = tensor(q0, [T, Hq, D], { dtype, device });
    const k = tensor(k0, [T, Hkv, D], { dtype, device });
    const kCache = tensor(fill, [pages, pageSize, Hkv, D], { dtype, device });
    const vCache = tensor(fill, [pages, pageSize, Hkv, D], { dtype, device });
    const opts = { base: 10000, style: 'neox' as const, rotaryDim: 64 };
    ropeAndCache(q, k, tensor(v0, [T, Hkv, D], { dtype, device }), tensor(pos, [T], { device }), {
      kCache, vCache, slots: tensor(slots, [T], { device }),
    }, opts);
    expect(compare((await q.toArray()) as Float32Array, ropeRef(q0, T, Hq, D, pos, opts)).relNorm).toBeLessThanOrEqual(TOL[dtype]);
    expect(Array.from(await k.toArray())).toEqual(Array.from(k0)); // k itself unchanged
    const kRef = ropeRef(k0, T, Hkv, D, pos, opts);
    const kc = (await kCache.toArray()) as Float32Array;
    const vc = (await vCache.toArray()) as Float32Array;
    const row = Hkv * D;
    for (let slot = 0; slot < pages * pageSize; slot++) {
      const t = Array.from(slots).indexOf(slot);
      const got = kc.subarray(slot * row, (slot + 1) * row);
      const gotV = vc.subarray(slot * row, (slot + 1) * row);
      if (t < 0) {
        expect(Array.from(got), `slot ${slot} untouched`).toEqual(Array.from(fill.subarray(slot * row, (slot + 1) * row)));
        expect(Array.from(gotV)).toEqual(Array.from(fill.subarray(slot * row, (slot + 1) * row)));
      } else {
        expect(compare(got, kRef.subarray(t * row, (t + 1) * row)).relNorm, `slot ${slot}`).toBeLessThanOrEqual(TOL[dtype]);
        expect(Array.from(gotV)).toEqual(Array.from(v0.subarray(t * row, (t + 1) * row)));
      }
    }
  });

  it('rejects slots outside the cache at the next sync point', async () => {
    const q = tensor(randn(8, 1), [1, 1, 8], { device });
    const k = tensor(randn(8, 2), [1, 1, 8], { device });
    const kCache = tensor(randn(2 * 2 * 8, 3), [2, 2, 1, 8], { device });
    ropeAndCache(q, k, k.reshape([1, 1, 8]), tensor([0], [1], { dtype: 'i32', device }), {
      kCache, vCache: tensor(randn(32, 4), [2, 2, 1, 8], { device }), slots: tensor([4], [1], { dtype: 'i32', device }),
    });
    const err = await kCache.toArray().then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/slot/);
  });

  // 3 tokens: each CUDA block checks the whole call itself; 100: a check launch runs
  // first. Either way a failing call must not leave q, k or the caches half-updated.
  it.each([3, 100])('a call of %i tokens with one bad position or slot changes nothing', async (T) => {
    const Hq = 2, Hkv = 1, D = 8, pages = 4, ps = 32;
    for (const bad of ['slot past the cache', 'negative slot', 'negative position', 'negative position, no cache'] as const) {
      const q0 = randn(T * Hq * D, 501), k0 = randn(T * Hkv * D, 502), v0 = randn(T * Hkv * D, 503);
      const c0 = randn(pages * ps * Hkv * D, 504);
      const q = tensor(q0, [T, Hq, D], { device });
      const k = tensor(k0, [T, Hkv, D], { device });
      const kCache = tensor(c0, [pages, ps, Hkv, D], { device });
      const vCache = tensor(c0, [pages, ps, Hkv, D], { device });
      const slots = Int32Array.from({ length: T }, (_, t) => (7 * t) % (pages * ps));
      const pos = Int32Array.from({ length: T }, (_, t) => 5 + t);
      if (bad === 'slot past the cache') slots[T - 1] = pages * ps;
      else if (bad === 'negative slot') slots[T >> 1] = -1;
      else pos[T - 1] = -1;
      const posT = tensor(pos, [T], { device });
      if (bad === 'negative position, no cache') rope(q, k, posT);
      else ropeAndCache(q, k, tensor(v0, [T, Hkv, D], { device }), posT, { kCache, vCache, slots: tensor(slots, [T], { device }) });
      const err = await synchronize(device).then(() => null, (e: Error) => e);
      expect(err?.message, bad).toMatch(bad.includes('position') ? /positions\[\d+\] = -1/ : /slots\[\d+\] = (-1|128)/);
      for (const [name, t, ref] of [['q', q, q0], ['k', k, k0], ['kCache', kCache, c0], ['vCache', vCache, c0]] as const)
        expect(Array.from(await t.toArray()), `${bad}: ${name} changed`).toEqual(Array.from(ref));
    }
  });
});

describe.each(DEVICES)('writeKvCache on %s', (device) => {
  // Row sizes 3·40 elements (16-byte words on CUDA) and 1·5 (f32: 4-byte words, f16/bf16:
  // 2-byte ones); slots spread over every page, the last slot of the cache among them.
  it.each<[FloatDType, number, number]>([
    ['f32', 3, 40], ['f16', 3, 40], ['bf16', 3, 40], ['f32', 1, 5], ['f16', 1, 5], ['bf16', 1, 5],
  ])('%s Hkv=%i D=%i: k and v rows land unrotated in their slots, every other slot untouched', async (dtype, Hkv, D) => {
    const pages = 5;
    const pageSize = 3;
    const nslots = pages * pageSize;
    const slots = Int32Array.from([14, 2, 7, 0, 9, 5, 11]);
    const T = slots.length;
    const k0 = quantizeTo(randn(T * Hkv * D, 301), dtype);
    const v0 = quantizeTo(randn(T * Hkv * D, 302), dtype);
    const kFill = quantizeTo(randn(nslots * Hkv * D, 303), dtype);
    const vFill = quantizeTo(randn(nslots * Hkv * D, 304), dtype);
    const kCache = tensor(kFill, [pages, pageSize, Hkv, D], { dtype, device });
    const vCache = tensor(vFill, [pages, pageSize, Hkv, D], { dtype, device });
    const k = tensor(k0, [T, Hkv, D], { dtype, device });
    writeKvCache(k, tensor(v0, [T, Hkv, D], { dtype, device }), { kCache, vCache, slots: tensor(slots, [T], { device }) });
    const kc = (await kCache.toArray()) as Float32Array;
    const vc = (await vCache.toArray()) as Float32Array;
    const row = Hkv * D;
    const want = (fill: Float32Array, src: Float32Array) => {
      const w = fill.slice();
      slots.forEach((slot, t) => w.set(src.subarray(t * row, (t + 1) * row), slot * row));
      return Array.from(w);
    };
    expect(Array.from(kc)).toEqual(want(kFill, k0));
    expect(Array.from(vc)).toEqual(want(vFill, v0));
    expect(Array.from(await k.toArray())).toEqual(Array.from(k0)); // the source is not touched
  });

  it('rows written one decode step at a time through pagedSlots read back through pagedAttention as the fp64 attention of the sequence', async () => {
    // Two sequences on interleaved, out-of-order pages; each step appends one token
    // per sequence (T = 2), as a decoder without rope would.
    const Hq = 4, Hkv = 2, D = 16, pageSize = 4, steps = 11;
    const tables = [[5, 0, 3], [1, 4, 2]];
    const dtype = 'f16';
    const kAll = quantizeTo(randn(2 * steps * Hkv * D, 311), dtype);
    const vAll = quantizeTo(randn(2 * steps * Hkv * D, 312), dtype);
    const q0 = quantizeTo(randn(2 * Hq * D, 313), dtype);
    const kCache = tensor(new Float32Array(6 * pageSize * Hkv * D).fill(Number.NaN), [6, pageSize, Hkv, D], { dtype, device });
    const vCache = tensor(new Float32Array(6 * pageSize * Hkv * D).fill(Number.NaN), [6, pageSize, Hkv, D], { dtype, device });
    const row = Hkv * D;
    for (let pos = 0; pos < steps; pos++) {
      const rows = (a: Float32Array) => Float32Array.from([0, 1].flatMap((s) => Array.from(a.subarray((s * steps + pos) * row, (s * steps + pos + 1) * row))));
      const slots = pagedSlots(tables, [0, 1], [pos, pos], pageSize);
      writeKvCache(tensor(rows(kAll), [2, Hkv, D], { dtype, device }), tensor(rows(vAll), [2, Hkv, D], { dtype, device }), {
        kCache, vCache, slots: tensor(slots, [2], { device }),
      });
    }
    const table = tensor(Int32Array.from(tables.flat()), [2, 3], { device });
    const { out } = pagedAttention(tensor(q0, [2, Hq, D], { dtype, device }), kCache, vCache, table, tensor(Int32Array.from([steps, steps]), [2], { device }));
    const got = (await out.toArray()) as Float32Array;
    for (let s = 0; s < 2; s++) {
      const shape = { B: 1, Sq: 1, Sk: steps, Hq, Hkv, D, causal: false };
      const qs = q0.subarray(s * Hq * D, (s + 1) * Hq * D);
      const ks = kAll.subarray(s * steps * row, (s + 1) * steps * row);
      const vs = vAll.subarray(s * steps * row, (s + 1) * steps * row);
      const ref = attentionRef(qs, ks, vs, shape).out;
      const naive = compare(attentionNaive(qs, ks, vs, shape, dtype), ref).maxAbs;
      const err = compare(got.subarray(s * Hq * D, (s + 1) * Hq * D), ref);
      expect(err.nonFinite, `sequence ${s}: non-finite outputs (a row left unwritten in the NaN-filled cache)`).toBe(0);
      expect(err.maxAbs, `sequence ${s}`).toBeLessThanOrEqual(2 * naive + 1e-5);
    }
  });

  it('a slot outside the cache fails at the next sync point, naming it, and writes nothing', async () => {
    for (const bad of [-1, 8]) {
      const fill = randn(2 * 4 * 8, 321);
      const kCache = tensor(fill, [2, 4, 1, 8], { device });
      const vCache = tensor(fill, [2, 4, 1, 8], { device });
      const k = tensor(randn(16, 322), [2, 1, 8], { device });
      writeKvCache(k, k.reshape([2, 1, 8]), { kCache, vCache, slots: tensor(Int32Array.from([3, bad]), [2], { device }) });
      const err = await synchronize(device).then(() => null, (e: Error) => e);
      expect(err?.message).toMatch(new RegExp(`writeKvCache: expected cache slots in \\[0, 8\\) but slots\\[1\\] = ${bad}`));
      expect(Array.from(await kCache.toArray()), 'slot 3 kept its old row').toEqual(Array.from(fill));
      expect(Array.from(await vCache.toArray())).toEqual(Array.from(fill));
    }
  });

  it('rejects mismatched arguments, naming them', () => {
    const k = tensor(randn(16, 331), [2, 1, 8], { device });
    const kCache = tensor(randn(64, 332), [2, 4, 1, 8], { device });
    const vCache = tensor(randn(64, 333), [2, 4, 1, 8], { device });
    const slots = tensor(Int32Array.from([0, 1]), [2], { device });
    expect(() => writeKvCache(k, tensor(randn(8, 1), [1, 1, 8], { device }), { kCache, vCache, slots })).toThrow(/Expected v of shape \[2, 1, 8\]/);
    expect(() => writeKvCache(k, k, { kCache, vCache, slots: tensor(Int32Array.from([0]), [1], { device }) })).toThrow(/cache\.slots of shape \[2\]/);
    expect(() => writeKvCache(k, k, { kCache, vCache, slots: tensor([0, 1], [2], { device }) })).toThrow(/cache\.slots/);
    expect(() => writeKvCache(k, k, { kCache: tensor(randn(64, 334), [2, 4, 1, 8], { dtype: 'f16', device }), vCache, slots })).toThrow(
      /cache\.kCache of shape \[numPages, pageSize, 1, 8\] and dtype f32/,
    );
    expect(() => writeKvCache(k, k, { kCache, vCache: tensor(randn(48, 335), [2, 3, 1, 8], { device }), slots })).toThrow(/cache\.vCache of the shape/);
    expect(() => writeKvCache(k, k, { kCache, vCache: kCache, slots })).toThrow(/different tensors/);
    expect(() => writeKvCache(k, k, { kCache, vCache: kCache.reshape([2, 4, 1, 8]), slots })).toThrow(/different tensors/);
    expect(() => writeKvCache(tensor(randn(16, 336), [2, 8], { device }), k, { kCache, vCache, slots })).toThrow(/k of rank 3/);
  });
});
