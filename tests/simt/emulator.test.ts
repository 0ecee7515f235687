// Tests of the simt emulator itself: tensor-core fragment layouts against a direct
// matrix product, the planted race that only the reverse schedule exposes, a read
// before cp.async.wait seeing stale data, divergence and GPU limits reported as errors,
// and bit-identical results of the real kernels under every schedule.
import { afterAll, describe, expect, it } from 'vitest';
import { flashAttention, matmul, pagedAttention, rope, sparse24, tensor, writeKvCache, type Tensor } from '../../lib/index.js';
import { attentionNaive } from '../../lib/ops/attention.js';
import { DEVICES, nativeForTests, randn, rng } from '../helpers.js';

const n = nativeForTests();
const hasSimt = DEVICES.includes('simt');
// The simt device needs only the CUDA headers; CI machines have them, so there it must exist.
if (process.env.CI && !hasSimt) throw new Error('CI: the simt device was not built (CUDA headers missing?)');

const run = (name: string, bufs: ArrayBufferView[], a0 = 0, a1 = 0) => n.simtSelfTest!(name, bufs, a0, a1);

// Small multiples of 1/8 are exact in f16 and bf16, so products are exact in f32.
function exactHalves(count: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: count }, () => (Math.floor(r() * 33) - 16) / 8);
}
function f16bits(v: number): number {
  if (v === 0) return Object.is(v, -0) ? 0x8000 : 0;
  const s = v < 0 ? 0x8000 : 0;
  const a = Math.abs(v);
  const e = Math.floor(Math.log2(a));
  return s | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
}
function bf16bits(v: number): number {
  return new Uint32Array(new Float32Array([v]).buffer)[0] >>> 16;
}

describe.runIf(hasSimt)('simt emulator', () => {
  afterAll(() => {
    n.simtSchedule!('forward');
  });

  it.each([
    ['f16 registers', 0, 0],
    ['f16 ldmatrix', 1, 0],
    ['f16 ldmatrix.trans', 2, 0],
    ['bf16 registers', 0, 1],
    ['bf16 ldmatrix.trans', 2, 1],
  ])('mma m16n8k16 %s matches A·B + C', async (_, mode, bf16) => {
    const A = exactHalves(256, 1 + mode);
    const B = exactHalves(128, 2 + mode); // B[k][n], 16 × 8
    const C = Float32Array.from(randn(128, 3));
    const enc = bf16 ? bf16bits : f16bits;
    const Bt = new Uint16Array(128);
    const Bkn = new Uint16Array(128);
    for (let k = 0; k < 16; k++)
      for (let j = 0; j < 8; j++) {
        Bt[j * 16 + k] = enc(B[k * 8 + j]);
        Bkn[k * 8 + j] = enc(B[k * 8 + j]);
      }
    const D = new Float32Array(128).fill(Number.NaN);
    await run('mma_f16', [Uint16Array.from(A, enc), Bt, Bkn, C, D], mode, bf16);
    for (let i = 0; i < 16; i++)
      for (let j = 0; j < 8; j++) {
        let s = C[i * 8 + j];
        for (let k = 0; k < 16; k++) s += A[i * 16 + k] * B[k * 8 + j];
        expect(D[i * 8 + j]).toBeCloseTo(s, 4);
      }
  });

  it('mma m16n8k32 s8 is exact', async () => {
    const r = rng(9);
    const A = Int8Array.from({ length: 16 * 32 }, () => Math.floor(r() * 256) - 128);
    const Bt = Int8Array.from({ length: 8 * 32 }, () => Math.floor(r() * 256) - 128); // [n][k]
    const C = Int32Array.from({ length: 128 }, () => Math.floor(r() * 2001) - 1000);
    const D = new Int32Array(128);
    await run('mma_s8', [A, Bt, C, D]);
    for (let i = 0; i < 16; i++)
      for (let j = 0; j < 8; j++) {
        let s = C[i * 8 + j];
        for (let k = 0; k < 32; k++) s += A[i * 32 + k] * Bt[j * 32 + k];
        expect(D[i * 8 + j]).toBe(s);
      }
  });

  it.each([0, 1])('mma.sp m16n8k32 (ordered metadata, selector %i) matches the decompressed product', async (sel) => {
    const r = rng(20 + sel);
    const legal = [0x4, 0x8, 0x9, 0xc, 0xd, 0xe];
    const vals = exactHalves(16 * 16, 30 + sel);
    const meta = new Uint32Array(16);
    const W = new Float32Array(16 * 32);
    for (let row = 0; row < 16; row++)
      for (let grp = 0; grp < 8; grp++) {
        const nib = legal[Math.floor(r() * legal.length)];
        meta[row] |= nib << (4 * grp);
        W[row * 32 + 4 * grp + (nib & 3)] = vals[row * 16 + 2 * grp];
        W[row * 32 + 4 * grp + (nib >> 2)] = vals[row * 16 + 2 * grp + 1];
      }
    const B = exactHalves(32 * 8, 40 + sel); // [n][k]
    const D = new Float32Array(128).fill(Number.NaN);
    await run('mma_sp', [Uint16Array.from(vals, f16bits), meta, Uint16Array.from(B, f16bits), D], sel);
    for (let i = 0; i < 16; i++)
      for (let j = 0; j < 8; j++) {
        let s = 0;
        for (let k = 0; k < 32; k++) s += W[i * 32 + k] * B[j * 32 + k];
        expect(D[i * 8 + j], `row ${i} col ${j}`).toBe(s);
      }
  });

  it('mma.sp rejects an illegal metadata nibble', async () => {
    const meta = new Uint32Array(16).fill(0x44444444);
    meta[3] = 0x44444404; // group 1 of row 3: nibble 0x0 is undefined
    await expect(
      run('mma_sp', [new Uint16Array(256), meta, new Uint16Array(256), new Float32Array(128)], 0),
    ).rejects.toThrow(/illegal metadata nibble 0x0 for row 3 group 1/);
  });

  it('a planted shared-memory race gives different results under forward and reverse', async () => {
    const out: Record<string, number[]> = {};
    for (const s of ['forward', 'reverse'] as const) {
      n.simtSchedule!(s);
      const o = new Int32Array(64);
      await run('race', [o]);
      out[s] = Array.from(o);
    }
    // forward: thread i reads s[i+1] before thread i+1 wrote it (-1); reverse: after.
    expect(out.forward.slice(0, 63).every((v) => v === -1)).toBe(true);
    expect(out.reverse.slice(0, 63)).toEqual(Array.from({ length: 63 }, (_, i) => i + 2));
  });

  it('a read before cp.async.wait sees stale data; after the wait it sees the copy', async () => {
    const out = new Int32Array(2).fill(-7);
    await run('cp_async_early_read', [Int32Array.from([42, 43, 44, 45]), out]);
    expect(out[0]).toBe(0);
    expect(out[1]).toBe(42);
  });

  it('reports divergent barriers and mismatched warp masks as errors, and keeps working', async () => {
    await expect(run('divergent_barrier', [new Int32Array(32)])).rejects.toThrow(
      /divergent barrier in block \(0,0,0\).*16 threads while 16 threads have exited/,
    );
    await expect(run('partial_shuffle', [new Int32Array(32)])).rejects.toThrow(/mask 0xffffffff but the lanes that arrived are 0xffff/);
    const o = new Int32Array(64);
    await run('dynamic_smem', [o], 64, 256);
    expect(Array.from(o)).toEqual(Array.from({ length: 64 }, (_, i) => (i + 1) % 64));
  });

  it('rejects what a GPU rejects: oversized blocks, too much shared memory, misaligned ldmatrix and cp.async', async () => {
    await expect(run('big_block', [new Int32Array(1)], 2048)).rejects.toThrow(/at most 1024 threads/);
    await expect(run('dynamic_smem', [new Int32Array(64)], 64, 64 * 1024)).rejects.toThrow(/65536 bytes of dynamic shared memory exceed the 49152-byte limit/);
    await expect(run('misaligned_ldmatrix', [new Int32Array(32)])).rejects.toThrow(/ldmatrix: row address .* not 16-byte aligned/);
    await expect(run('misaligned_cp_async', [new Int32Array(16), new Int32Array(32)])).rejects.toThrow(/cp.async: addresses must be 16-byte aligned/);
  });

  it('the real kernels give bit-identical results under forward, reverse and random schedules', async () => {
    const results: Float32Array[][] = [];
    for (const s of ['forward', 'reverse', 'random'] as const) {
      n.simtSchedule!(s);
      const device = 'simt';
      const outs: Float32Array[] = [];
      const keep: Tensor[] = [];
      const t = (d: Float32Array, shape: number[], dtype: 'f32' | 'f16' | 'bf16') => {
        const x = tensor(d, shape, { dtype, device });
        keep.push(x);
        return x;
      };
      for (const dtype of ['f16', 'bf16', 'f32'] as const) {
        for (const M of [3, 70]) {
          const y = matmul(t(randn(M * 136, 1), [M, 136], dtype), t(randn(72 * 136, 2), [72, 136], dtype), { bias: t(randn(72, 3), [72], dtype) });
          outs.push((await y.toArray()) as Float32Array);
        }
      }
      const q = t(randn(5 * 4 * 64, 4), [5, 4, 64], 'f16');
      rope(q, t(randn(5 * 2 * 64, 5), [5, 2, 64], 'f16'), tensor([1, 9, 300, 4000, 70000], [5], { dtype: 'i32', device }), { base: 500000 });
      outs.push((await q.toArray()) as Float32Array);
      // the paged-cache append: a slot check, then the row copy (f16 rows: 16-byte words)
      const kc0 = t(randn(4 * 3 * 2 * 64, 17), [4, 3, 2, 64], 'f16');
      const vc0 = t(randn(4 * 3 * 2 * 64, 18), [4, 3, 2, 64], 'f16');
      writeKvCache(t(randn(5 * 2 * 64, 19), [5, 2, 64], 'f16'), t(randn(5 * 2 * 64, 20), [5, 2, 64], 'f16'), {
        kCache: kc0, vCache: vc0, slots: tensor([11, 0, 5, 7, 2], [5], { dtype: 'i32', device }),
      });
      outs.push((await kc0.toArray()) as Float32Array, (await vc0.toArray()) as Float32Array);
      const w24 = await sparse24.compress(sparse24.prune(t(randn(40 * 96, 6), [40, 96], 'f16')));
      outs.push((await sparse24.matmul(t(randn(33 * 96, 7), [33, 96], 'f16'), w24).toArray()) as Float32Array);
      // Attention: each FA instance (D ≤ 64, ≤ 128, > 128 in two output chunks, f32 rows),
      // then paged decode with splits and the combine, beside a prefill-chunk tile.
      for (const [dtype, Sq, Sk, D, causal] of [['f16', 70, 90, 64, true], ['bf16', 33, 40, 136, false], ['f16', 20, 75, 96, true], ['f32', 9, 30, 40, true]] as const) {
        const a = flashAttention(t(randn(Sq * 2 * D, 8), [1, Sq, 2, D], dtype), t(randn(Sk * D, 9), [1, Sk, 1, D], dtype), t(randn(Sk * D, 10), [1, Sk, 1, D], dtype), { causal, returnLse: true });
        outs.push((await a.out.toArray()) as Float32Array, (await a.lse!.toArray()) as Float32Array);
      }
      // the bench's naive baseline: scores, softmax and P·V passes
      const nq = t(randn(70 * 2 * 64, 14), [1, 70, 2, 64], 'bf16');
      outs.push((await attentionNaive(nq, t(randn(90 * 64, 15), [1, 90, 1, 64], 'bf16'), t(randn(90 * 64, 16), [1, 90, 1, 64], 'bf16'), { causal: true }).toArray()) as Float32Array);
      // Rows 0–63 one chunk (lengths 11–74); rows 64–73 a chunk but for row 69 (a tile
      // check that lets thread 0 set its flag after the others cleared it would take it).
      const T = 74, pages = 12, ps = 8, maxPages = 10;
      const lens = Int32Array.from({ length: T }, (_, i) => (i < 64 ? 11 + i : i === 69 ? 30 : i - 14));
      const table = new Int32Array(T * maxPages).map((_, i) => i % maxPages);
      const kc = t(randn(pages * ps * 2 * 32, 11), [pages, ps, 2, 32], 'f16');
      const pa = pagedAttention(t(randn(T * 4 * 32, 12), [T, 4, 32], 'f16'), kc, t(randn(pages * ps * 2 * 32, 13), [pages, ps, 2, 32], 'f16'),
        tensor(table, [T, maxPages], { dtype: 'i32', device }), tensor(lens, [T], { dtype: 'i32', device }), { numSplits: 3, returnLse: true });
      outs.push((await pa.out.toArray()) as Float32Array, (await pa.lse!.toArray()) as Float32Array);
      results.push(outs);
      keep.forEach((x) => x.dispose());
    }
    for (let i = 0; i < results[0].length; i++) {
      expect(Array.from(results[1][i]), `output ${i} reverse`).toEqual(Array.from(results[0][i]));
      expect(Array.from(results[2][i]), `output ${i} random`).toEqual(Array.from(results[0][i]));
    }
  });
});
