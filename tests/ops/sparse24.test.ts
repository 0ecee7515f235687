// 2:4 sparsity on every device: pruning, the compressed format, round trips and the
// sparse product against fp64 references.
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { sparse24, synchronize, tensor } from '../../lib/index.js';
import { compare, DEVICES, nativeForTests, quantizeTo, randn } from '../helpers.js';
import { matmulNaive, matmulRef } from '../reference/matmul.js';
import { compressRef, pruneRef } from '../reference/sparse24.js';

type FloatDType = 'f32' | 'f16' | 'bf16';
const FLOATS: FloatDType[] = ['f32', 'f16', 'bf16'];

async function pruned(device: string, dtype: FloatDType, N: number, K: number, seed: number) {
  const w0 = quantizeTo(randn(N * K, seed), dtype);
  const wp = sparse24.prune(tensor(w0, [N, K], { dtype, device }));
  return { w0, wp, dense: (await wp.toArray()) as Float32Array };
}

describe.each(DEVICES)('sparse24 on %s', (device) => {
  describe.each(FLOATS)('%s', (dtype) => {
    it('prune keeps exactly the two largest of every group; compress matches the reference encoding; round trip is bit-exact', async () => {
      const N = 33;
      const K = 68;
      const { w0, wp, dense } = await pruned(device, dtype, N, K, 3);
      expect(Array.from(dense)).toEqual(Array.from(pruneRef(w0, N, K)));
      for (let i = 0; i < N * K; i += 4) expect(dense.slice(i, i + 4).filter((v) => v !== 0).length).toBe(2);
      const w24 = await sparse24.compress(wp);
      expect(w24.values.shape).toEqual([N, K / 2]);
      expect(w24.meta.shape).toEqual([N, 3]);
      const ref = compressRef(dense, N, K);
      expect(Array.from(await w24.values.toArray())).toEqual(Array.from(ref.values));
      expect(Array.from(await w24.meta.toArray())).toEqual(Array.from(ref.meta));
      expect(Array.from(await sparse24.decompress(w24).toArray())).toEqual(Array.from(dense));
    });

    it('groups with fewer than two non-zeros compress and round-trip', async () => {
      const w = new Float32Array([0, 0, 0, 0, 0, 0, 3, 0, 5, 0, 0, 0, 0, 2, 0, 7]);
      const w24 = await sparse24.compress(tensor(w, [2, 8], { dtype, device }));
      expect(Array.from(await sparse24.decompress(w24).toArray())).toEqual(Array.from(quantizeTo(w, dtype)));
    });

    it('Wanda pruning scores |w|·‖x_k‖', async () => {
      const N = 9;
      const K = 32;
      const w0 = quantizeTo(randn(N * K, 5), dtype);
      const norms = Float32Array.from(randn(K, 6), (v) => Math.abs(v) + 0.01);
      const out = await sparse24.prune(tensor(w0, [N, K], { dtype, device }), {
        method: 'wanda',
        activationNorms: tensor(quantizeTo(norms, dtype), [K], { dtype, device }),
      }).toArray();
      expect(Array.from(out)).toEqual(Array.from(pruneRef(w0, N, K, quantizeTo(norms, dtype))));
    });

    it.each([
      [1, 4, 1],
      [5, 64, 33],
      [64, 64, 33],
      [3, 256, 130],
      // G = 31 groups: 3 steps of 8 groups, one of 4, 3 scalar ones (every SIMD tail)
      [2, 124, 17],
      [7, 124, 5],
      // the AVX2 dot form: two weight rows a pass for 2-6 x rows (odd N: a last row alone),
      // one accumulator per pair at 4-6 rows (4-group steps), 8 rows in one pass
      [4, 124, 11],
      [6, 60, 3],
      [8, 124, 9],
      // M > 8: the blocked form (above 6 rows on AVX-512), x blocks of 2 or 4 vectors by M and ISA. K across k blocks
      // with a tail that is not a whole metadata word; N past one row block with a short
      // microkernel tail; M padded up to the x block
      [9, 300, 97],
      [20, 96, 40],
      [70, 196, 7],
    ])('matmul M=%i K=%i N=%i equals the dense product of the pruned weight', async (M, K, N) => {
      const { wp, dense } = await pruned(device, dtype, N, K, 10 + M + K + N);
      const w24 = await sparse24.compress(wp);
      const x = quantizeTo(randn(M * K, 20 + M), dtype);
      const bias = quantizeTo(randn(N, 21), dtype);
      const xt = tensor(x, [M, K], { dtype, device });
      const ref = matmulRef(x, dense, bias, M, K, N);
      const y = (await sparse24.matmul(xt, w24, { bias: tensor(bias, [N], { dtype, device }) }).toArray()) as Float32Array;
      const s = compare(y, ref);
      expect(s.nonFinite).toBe(0);
      // the FlashAttention-style rule: ≤ 2 × the error of a straightforward same-precision product + 1e-5
      const naive = compare(matmulNaive(x, dense, bias, M, K, N, dtype), ref).maxAbs;
      expect(s.maxAbs).toBeLessThanOrEqual(2 * naive + 1e-5);
      if (dtype === 'f32') expect(s.relNorm).toBeLessThanOrEqual(1e-5);
    });
  });
});

describe('sparse24 on cpu: large shapes and every ISA path', () => {
  it.each(['avx512', 'avx2', 'scalar'] as const)('%s: (M, N) ∈ {(1, 1024), (8, 33), (33, 200), (256, 1)}, K=4096 (f16)', async (isa) => {
    const n = nativeForTests();
    const prev = n.devices().find((d) => d.name === 'cpu')!.detail;
    n.setCpuIsa(isa);
    try {
      for (const [M, N] of [[1, 1024], [8, 33], [33, 200], [256, 1]]) {
        const K = 4096;
        const { wp, dense } = await pruned('cpu', 'f16', N, K, 30 + M + N);
        const w24 = await sparse24.compress(wp);
        const x = quantizeTo(randn(M * K, 40 + M), 'f16');
        const y = (await sparse24.matmul(tensor(x, [M, K], { dtype: 'f16' }), w24).toArray()) as Float32Array;
        const ref = matmulRef(x, dense, undefined, M, K, N);
        expect(compare(y, ref).nonFinite).toBe(0);
        // f32 accumulation over 2048 kept products, then one f16 rounding
        expect(compare(y, ref).relNorm, `${isa} M=${M} N=${N}`).toBeLessThanOrEqual(1.5e-3);
      }
    } finally {
      n.setCpuIsa(prev.startsWith('avx512') ? 'avx512' : (prev as 'avx2' | 'scalar'));
    }
  });
});

describe('sparse24 on cpu: many rows', () => {
  it('M = 4133 runs in passes of rows: peak RSS grows far less than the f32 copies of the whole x (x, xT ~68 MB each) and chunk edges are right', async () => {
    const M = 4133; // 16 passes of 256 rows and a last one of 37
    const K = 4096;
    const N = 512;
    const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
    const { dense, wp } = await pruned('cpu', 'f16', N, K, 50);
    const w24 = await sparse24.compress(wp);
    const x = quantizeTo(randn(M * K, 51), 'f16');
    const xt = tensor(x, [M, K], { dtype: 'f16' });
    await synchronize('cpu');
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    const before = hwm();
    const y = sparse24.matmul(xt, w24);
    await synchronize('cpu');
    const growth = hwm() - before;
    // y (f16, 4 MB) and one pass's copies (~9 MB); the whole-x copies alone were 136 MB.
    expect(growth).toBeLessThan(48 * 1024 * 1024);
    const out = (await y.toArray()) as Float32Array;
    expect(out.every(Number.isFinite)).toBe(true);
    // Rows at both edges of the first pass, inside a middle one and in the short last one.
    for (const m of [0, 255, 256, 2049, 4095, 4096, M - 1]) {
      const ref = matmulRef(x.subarray(m * K, (m + 1) * K), dense, undefined, 1, K, N);
      expect(compare(out.subarray(m * N, (m + 1) * N), ref).relNorm, `row ${m}`).toBeLessThanOrEqual(1.5e-3);
    }
  });
});

describe('sparse24 bad input', () => {
  it('compress names the first group with more than two non-zeros', async () => {
    const w = new Float32Array(2 * 8).fill(0);
    w[8 + 4] = 1;
    w[8 + 5] = 2;
    w[8 + 6] = 3;
    await expect(sparse24.compress(tensor(w, [2, 8]))).rejects.toThrow(/row 1 group 1 \(columns 4\.\.7\) has 3/);
  });
  it('rejects bad shapes, devices and options', async () => {
    const w24 = await sparse24.compress(sparse24.prune(tensor(randn(4 * 8, 1), [4, 8])));
    expect(() => sparse24.matmul(tensor(randn(12, 2), [2, 6]), w24)).toThrow(/Expected x of shape \[M, 8\] to match the weight \[4, 8\] but received \[2, 6\]/);
    expect(() => sparse24.matmul(tensor(randn(16, 2), [2, 8], { dtype: 'f16' }), w24)).toThrow(/dtype/);
    expect(() => sparse24.prune(tensor(randn(6, 3), [1, 6]))).toThrow(/K a multiple of 4 \(2:4 groups\) but K = 6/);
    expect(() => sparse24.prune(tensor(randn(8, 3), [1, 8]), { method: 'random' } as never)).toThrow(/Expected opts.method 'magnitude' or 'wanda' but received 'random'/);
    expect(() => sparse24.prune(tensor(randn(8, 3), [1, 8]), { method: 'wanda', activationNorms: tensor([1, 2], [2]) })).toThrow(/activationNorms of shape \[8\] but received \[2\]/);
    expect(() => sparse24.matmul(tensor(randn(8, 2), [1, 8]), {} as never)).toThrow(/Expected a Sparse24Weight for w/);
    if (DEVICES.length > 1) {
      const other = DEVICES[1];
      expect(() => sparse24.matmul(tensor(randn(8, 2), [1, 8], { device: other }), w24)).toThrow(/same device/);
    }
    w24.dispose();
    expect(() => sparse24.decompress(w24)).toThrow(/disposed/);
  });
});
