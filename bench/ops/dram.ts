// Decode-shaped GEMV (M = 1) with weights far larger than any cache (K = N = 16384:
// 512 MiB in f16), so the figure is DRAM bandwidth, not L3: dense f16, 2:4-sparse f16
// and LLM.int8 weights of the same (pruned) matrix; dense f16 is the baseline. M = 4
// (a decode step of 4 sequences) for dense and 2:4: whether the sparse kernel's
// decoding keeps up with the halved bytes. The 4096² shapes of the other modules fit
// in the large L3s of server CPUs.
import { int8, matmul, sparse24, synchronize, tensor, type Tensor } from '../../lib/index.js';
import type { BenchCase, BenchModule } from '../types.js';

const rand = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);

const module: BenchModule = (devices, { quick }) => {
  if (quick) return [];
  const K = 16384;
  const N = K;
  const cases: BenchCase[] = [];
  for (const device of devices) {
    if (device === 'simt') continue;
    const make = (kind: 'dense' | 'sparse24' | 'int8', M = 1): BenchCase => {
      const dense = `matmul f16 M=${M} K=${K} N=${N} (weights from DRAM)`;
      return {
        name: kind === 'dense' ? dense : `${kind === 'int8' ? 'int8 matmul' : 'sparse24'} f16 M=${M} K=${K} N=${N} (weights from DRAM)`,
        op: kind === 'dense' ? 'matmul' : kind === 'int8' ? 'int8.matmul' : 'sparse24',
        device,
        work: { bytes: kind === 'dense' ? 2 * N * K : kind === 'int8' ? N * K : N * K + (N * K) / 8 },
        bound: 'memory',
        baseline: kind === 'dense' ? undefined : dense,
        async setup() {
          const w: Tensor = sparse24.prune(tensor(rand(N * K, 1), [N, K], { dtype: 'f16', device }));
          const x = tensor(rand(M * K, 2), [M, K], { dtype: 'f16', device });
          const w24 = kind === 'sparse24' ? await sparse24.compress(w) : undefined;
          const w8 = kind === 'int8' ? int8.quantizeWeight(w) : undefined;
          await synchronize(device);
          return {
            async run(sync) {
              (w24 ? sparse24.matmul(x, w24) : w8 ? int8.matmul(x, w8) : matmul(x, w)).dispose();
              await sync();
            },
            dispose() {
              w.dispose();
              w24?.dispose();
              w8?.dispose();
              x.dispose();
            },
          };
        },
      };
    };
    cases.push(make('dense'), make('sparse24'), make('int8'), make('dense', 4), make('sparse24', 4));
  }
  return cases;
};
export default module;
