// Dense matmul benchmarks: compute-bound GEMM (M=256), memory-bound GEMV (M=1,
// bytes = weight bytes, the stream that must be read once), the GEMV's largest batch
// (M=8: a decode step of 8 sequences) and the small-batch M=16.
import { matmul, synchronize, tensor, type Tensor } from '../../lib/index.js';
import type { BenchCase, BenchModule } from '../types.js';

type FloatDType = 'f32' | 'f16' | 'bf16';

const BYTES: Record<FloatDType, number> = { f32: 4, f16: 2, bf16: 2 };

// Deterministic, non-zero, cheap to build (benchmarks do not need statistics).
function fillData(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.sin(seed + i * 0.61803) * 0.5;
  return a;
}

function matmulCase(device: string, dtype: FloatDType, M: number, K: number, N: number): BenchCase {
  const memoryBound = M <= 8;
  return {
    name: `matmul ${dtype} M=${M} K=${K} N=${N}`,
    op: 'matmul',
    device,
    // bf16 GEMM multiplies on VDPBF16PS where the cpu has it: its % is of the bf16 peak.
    work: memoryBound
      ? { flops: 2 * M * N * K, bytes: N * K * BYTES[dtype] }
      : { flops: 2 * M * N * K, flopsPeak: dtype === 'bf16' ? 'bf16' : 'fp32' },
    bound: memoryBound ? 'memory' : 'compute',
    async setup() {
      const x = tensor(fillData(M * K, 1), [M, K], { dtype, device });
      const w = tensor(fillData(N * K, 2), [N, K], { dtype, device });
      await synchronize(device);
      let last: Tensor | undefined;
      return {
        async run(sync) {
          last?.dispose();
          last = matmul(x, w);
          await sync();
        },
        dispose() {
          last?.dispose();
          x.dispose();
          w.dispose();
        },
      };
    },
  };
}

const matmulBench: BenchModule = (devices, { quick }) => {
  const big = quick ? 1024 : 4096;
  const gemmM = quick ? 64 : 256;
  const cases: BenchCase[] = [];
  for (const device of devices) {
    for (const dtype of ['f32', 'f16', 'bf16'] as const) cases.push(matmulCase(device, dtype, gemmM, big, big));
    for (const dtype of ['f16', 'f32'] as const) cases.push(matmulCase(device, dtype, 1, big, big));
    cases.push(matmulCase(device, 'f16', 8, big, big));
    for (const dtype of ['f16', 'f32'] as const) cases.push(matmulCase(device, dtype, 16, big, big));
  }
  return cases;
};

export default matmulBench;
