// 2:4 sparse matmul vs dense matmul of the same (pruned) weights, K = N = 4096.
// M=1 is memory-bound: bytes = the compressed weight (values + metadata). M=4: a decode
// step of 4 sequences.
import { matmul, sparse24, synchronize, tensor } from '../../lib/index.js';
import type { BenchCase, BenchModule } from '../types.js';

const rand = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 0.5);

const module: BenchModule = (devices, { quick }) => {
  const K = quick ? 1024 : 4096;
  const N = K;
  const cases: BenchCase[] = [];
  for (const device of devices) {
    if (device === 'simt' && !quick) continue;
    for (const M of [1, 4, 16, 256]) {
      const dense = `matmul f16 M=${M} K=${K} N=${N} (dense, 2:4 pruned)`;
      const make = (sparse: boolean): BenchCase => ({
        name: sparse ? `sparse24 f16 M=${M} K=${K} N=${N}` : dense,
        op: sparse ? 'sparse24' : 'matmul',
        device,
        work: sparse
          ? { flops: 2 * M * N * K, bytes: (N * K) / 2 * 2 + (N * K) / 8 }
          : { flops: 2 * M * N * K, bytes: N * K * 2 },
        bound: M === 1 ? 'memory' : 'compute',
        baseline: sparse ? dense : undefined,
        async setup() {
          const w = sparse24.prune(tensor(rand(N * K, 1), [N, K], { dtype: 'f16', device }));
          const w24 = sparse ? await sparse24.compress(w) : undefined;
          const x = tensor(rand(M * K, 2), [M, K], { dtype: 'f16', device });
          await synchronize(device);
          return {
            async run(sync) {
              (w24 ? sparse24.matmul(x, w24) : matmul(x, w)).dispose();
              await sync();
            },
            dispose() {
              w.dispose();
              w24?.dispose();
              x.dispose();
            },
          };
        },
      });
      cases.push(make(false), make(true));
    }
  }
  return cases;
};
export default module;
