// LLM.int8() matmul, K = N = 4096 (a 7B-class projection), M ∈ {1, 16, 256}, f16
// activations with 0, 0.1% and 1% outlier columns (threshold 6); the dense f16 / f32
// matmul of the same shape is the baseline. M = 1 is decode: memory-bound on the int8
// weights (N·K bytes), so it is reported against read bandwidth.
import { int8, matmul, synchronize, tensor, type Tensor } from '../../lib/index.js';
import type { BenchCase, BenchModule } from '../types.js';

const rand = (n: number, seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin((i + seed) * 12.9898) * 2);

/** x[M,K] with |values| <= 2 and `count` columns holding a 20 in one row each. */
function activations(M: number, K: number, count: number): Float32Array {
  const x = rand(M * K, 1);
  for (let j = 0; j < count; j++) {
    const k = Math.floor(((j + 0.5) * K) / count);
    x[(j % M) * K + k] = 20;
  }
  return x;
}

const module: BenchModule = (devices, { quick }) => {
  const K = 4096;
  const N = 4096;
  const cases: BenchCase[] = [];
  for (const device of devices) {
    if (device === 'simt' && !quick) continue; // the emulator is for correctness, not speed
    for (const M of quick ? [1, 16] : [1, 16, 256]) {
      const shape = `M=${M} K=${K} N=${N}`;
      const ops = 2 * M * N * K;
      const memoryBound = M === 1;
      for (const dtype of ['f16', 'f32'] as const)
        cases.push({
          name: `int8 baseline: matmul ${dtype} ${shape}`,
          op: 'matmul',
          device,
          work: { flops: ops, bytes: N * K * (dtype === 'f16' ? 2 : 4) },
          bound: memoryBound ? 'memory' : 'compute',
          async setup() {
            const x: Tensor = tensor(rand(M * K, 1), [M, K], { dtype, device });
            const w: Tensor = tensor(rand(N * K, 2), [N, K], { dtype, device });
            await synchronize(device);
            return {
              async run(sync) {
                matmul(x, w).dispose();
                await sync();
              },
              dispose() {
                x.dispose();
                w.dispose();
              },
            };
          },
        });
      for (const [label, fraction] of [['0%', 0], ['0.1%', 0.001], ['1%', 0.01]] as const) {
        const count = Math.round(fraction * K);
        cases.push({
          name: `int8 matmul f16 ${shape} outliers=${label} (${count} columns)`,
          op: 'int8.matmul',
          device,
          work: { intOps: ops, bytes: N * K },
          bound: memoryBound ? 'memory' : 'compute',
          baseline: `int8 baseline: matmul f16 ${shape}`,
          async setup() {
            const x: Tensor = tensor(activations(M, K, count), [M, K], { dtype: 'f16', device });
            const w: Tensor = tensor(rand(N * K, 2), [N, K], { dtype: 'f16', device });
            const w8 = int8.quantizeWeight(w);
            w.dispose();
            await synchronize(device);
            return {
              async run(sync) {
                int8.matmul(x, w8, { threshold: 6 }).dispose();
                await sync();
              },
              dispose() {
                x.dispose();
                w8.dispose();
              },
            };
          },
        });
      }
    }
  }
  return cases;
};
export default module;
