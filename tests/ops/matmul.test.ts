import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { matmul, tensor } from '../../lib/index.js';
import { DEVICES, compare, nativeForTests, quantizeTo, randn } from '../helpers.js';
import { type FloatDType, matmulNaive, matmulRef } from '../reference/matmul.js';

const DTYPES: FloatDType[] = ['f32', 'f16', 'bf16'];
type CpuIsa = 'avx512' | 'avx2' | 'scalar';

interface Case {
  M: number;
  K: number;
  N: number;
  bias: boolean;
}

// Odd sizes on purpose: none is a multiple of a microkernel tile (12x32, 6x16, 4x8),
// of a SIMD width, or of the K block; M <= 8 takes the GEMV path.
const SHAPES: Case[] = [
  { M: 1, K: 1, N: 1, bias: false },
  { M: 1, K: 300, N: 200, bias: true },
  { M: 2, K: 701, N: 13, bias: false },
  { M: 3, K: 1, N: 5, bias: true },
  { M: 5, K: 17, N: 1, bias: false },
  { M: 8, K: 129, N: 67, bias: true },
  { M: 9, K: 33, N: 31, bias: false },
  { M: 13, K: 1, N: 7, bias: false },
  { M: 37, K: 257, N: 65, bias: true },
  { M: 128, K: 300, N: 200, bias: false },
  { M: 100, K: 31, N: 1, bias: true },
];

function makeInputs(c: Case, dtype: FloatDType, seed: number) {
  const x = quantizeTo(randn(c.M * c.K, seed), dtype);
  const w = quantizeTo(randn(c.N * c.K, seed + 1, 1 / Math.sqrt(c.K)), dtype);
  const bias = c.bias ? quantizeTo(randn(c.N, seed + 2), dtype) : undefined;
  return { x, w, bias };
}

/** Runs matmul on `device` and checks it against the fp64 reference with the DESIGN §5 rule. */
async function checkCase(device: string, dtype: FloatDType, c: Case, seed: number): Promise<void> {
  const { x, w, bias } = makeInputs(c, dtype, seed);
  const xt = tensor(x, [c.M, c.K], { dtype, device });
  const wt = tensor(w, [c.N, c.K], { dtype, device });
  const bt = bias ? tensor(bias, [c.N], { dtype, device }) : undefined;
  const yt = matmul(xt, wt, { bias: bt });
  expect(yt.shape).toEqual([c.M, c.N]);
  expect(yt.dtype).toBe(dtype);
  const y = await yt.toArray();
  [xt, wt, bt, yt].forEach((t) => t?.dispose());

  const ref = matmulRef(x, w, bias, c.M, c.K, c.N);
  const got = compare(y, ref);
  const label = `${device} ${dtype} M=${c.M} K=${c.K} N=${c.N} bias=${c.bias}`;
  expect(got.nonFinite, label).toBe(0);
  if (dtype === 'f32') {
    expect(got.relNorm, label).toBeLessThanOrEqual(1e-5);
  } else {
    const naive = compare(matmulNaive(x, w, bias, c.M, c.K, c.N, dtype), ref);
    expect(got.relNorm, label).toBeLessThanOrEqual(2 * naive.relNorm + 1e-5);
    expect(got.maxAbs, label).toBeLessThanOrEqual(2 * naive.maxAbs + 1e-5);
  }
}

describe.each(DEVICES)('matmul on %s', (device) => {
  describe.each(DTYPES)('%s', (dtype) => {
    it.each(SHAPES.map((c, i) => [`${c.M}x${c.K}x${c.N}${c.bias ? ' +bias' : ''}`, c, i] as const))(
      '%s matches the fp64 reference',
      async (_name, c, i) => {
        await checkCase(device, dtype, c, 1000 + 17 * i);
      },
    );

    it('GEMV rows (M = 1..8) agree with the same rows computed by the GEMM path', async () => {
      const K = 190;
      const N = 70;
      const full = makeInputs({ M: 24, K, N, bias: true }, dtype, 77);
      const wt = tensor(full.w, [N, K], { dtype, device });
      const bt = tensor(full.bias!, [N], { dtype, device });
      const xt = tensor(full.x, [24, K], { dtype, device });
      const yFull = await matmul(xt, wt, { bias: bt }).toArray();
      // One output ulp of the dtype, relative: the two paths sum in different orders,
      // so a rounded output may land on the neighbouring value.
      const tol = { f32: 1e-6, f16: 2 ** -10, bf16: 2 ** -7 }[dtype];
      for (let M = 1; M <= 8; M++) {
        const xm = tensor(full.x.subarray(0, M * K), [M, K], { dtype, device });
        const ym = await matmul(xm, wt, { bias: bt }).toArray();
        const d = compare(ym, yFull.subarray(0, M * N));
        expect(d.nonFinite, `M=${M}`).toBe(0);
        expect(d.relNorm, `M=${M}`).toBeLessThanOrEqual(tol);
        xm.dispose();
      }
      [xt, wt, bt].forEach((t) => t.dispose());
    });
  });

  it('adds bias[n] to every row', async () => {
    const M = 11;
    const K = 23;
    const N = 45;
    const { x, w, bias } = makeInputs({ M, K, N, bias: true }, 'f32', 5);
    const xt = tensor(x, [M, K], { device });
    const wt = tensor(w, [N, K], { device });
    const bt = tensor(bias!, [N], { device });
    const withBias = await matmul(xt, wt, { bias: bt }).toArray();
    const without = await matmul(xt, wt).toArray();
    for (let m = 0; m < M; m++)
      for (let n = 0; n < N; n++)
        expect(withBias[m * N + n] - without[m * N + n]).toBeCloseTo(bias![n], 5);
    [xt, wt, bt].forEach((t) => t.dispose());
  });

  it('K = 0 gives the bias (or zeros) in every row', async () => {
    const x = tensor(new Float32Array(0), [3, 0], { device });
    const w = tensor(new Float32Array(0), [2, 0], { device });
    const b = tensor([1.5, -2], [2], { device });
    expect(Array.from(await matmul(x, w, { bias: b }).toArray())).toEqual([1.5, -2, 1.5, -2, 1.5, -2]);
    expect(Array.from(await matmul(x, w).toArray())).toEqual([0, 0, 0, 0, 0, 0]);
    [x, w, b].forEach((t) => t.dispose());
  });

  it('rejects mismatched shapes and dtypes, naming the argument', () => {
    const x = tensor(randn(6, 1), [2, 3], { device });
    const w = tensor(randn(8, 2), [2, 4], { device });
    const w16 = tensor(randn(6, 3), [2, 3], { dtype: 'f16', device });
    const b = tensor(randn(3, 4), [3], { device });
    const w3 = tensor(randn(6, 5), [2, 3], { device });
    expect(() => matmul(x, w)).toThrow(RangeError);
    expect(() => matmul(x, w16)).toThrow(/w/);
    expect(() => matmul(x, w3, { bias: b })).toThrow(/opts\.bias/);
    [x, w, w16, b, w3].forEach((t) => t.dispose());
  });
});

// Every compiled ISA path of the cpu kernels (GEMM and GEMV), switched in-process.
describe('matmul cpu ISA paths', () => {
  const addon = nativeForTests();
  let original: CpuIsa = 'avx512';
  beforeAll(() => {
    const detail = addon.devices().find((d) => d.name === 'cpu')!.detail;
    original = detail.startsWith('avx512') ? 'avx512' : (detail as CpuIsa);
  });
  afterAll(() => {
    addon.setCpuIsa(original);
  });

  describe.each(['avx512', 'avx2', 'scalar'] as CpuIsa[])('%s', (isa) => {
    it.each(DTYPES)('%s: every shape matches the reference', async (dtype) => {
      const inEffect = addon.setCpuIsa(isa);
      try {
        // A machine without this ISA falls back to a lower one; the test still runs.
        expect(['avx512vnni', 'avx2', 'scalar']).toContain(inEffect);
        for (const [i, c] of SHAPES.entries()) await checkCase('cpu', dtype, c, 2000 + 31 * i);
      } finally {
        addon.setCpuIsa(original);
      }
    });

    // Larger than one block in every dimension: M > 256 (f16/bf16 f32 tile), K > 256
    // (several K blocks accumulate), N > 1024 (several packed B blocks) and two threads.
    it.each(DTYPES)('%s: 300x600x1100 with bias crosses every block boundary', async (dtype) => {
      addon.setCpuIsa(isa);
      try {
        await checkCase('cpu', dtype, { M: 300, K: 600, N: 1100, bias: true }, 99);
      } finally {
        addon.setCpuIsa(original);
      }
    });
  });
});
