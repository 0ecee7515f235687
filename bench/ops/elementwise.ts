// Decoder-sized elementwise ops (memory-bound: GB/s against the measured read
// bandwidth) and the JS→native enqueue overhead of a tiny op.
import { add, rmsNorm, siluMul, softmax, tensor, type Tensor } from '../../lib/index.js';
import type { BenchCase, BenchModule } from '../types.js';

// Seeded, non-zero data (values do not matter for timing, but NaN/denormals would).
function data(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = (s / 4294967296) * 2 - 1 || 0.5;
  }
  return a;
}

const make = (shape: number[], seed: number, device: string): Tensor =>
  tensor(data(shape.reduce((a, b) => a * b, 1), seed), shape, { device });

// One case whose run() enqueues `op` once and synchronizes; bytes = elements moved × 4.
function memCase(device: string, op: string, shape: number[], arrays: number, extraBytes: number,
  build: (ins: Tensor[]) => Tensor, inputs: number[][]): BenchCase {
  const numel = shape.reduce((a, b) => a * b, 1);
  return {
    name: `${op} f32 [${shape.join('x')}]`,
    op,
    device,
    bound: 'memory',
    work: { bytes: arrays * numel * 4 + extraBytes },
    async setup() {
      const ins = inputs.map((s, i) => make(s, 11 + i, device));
      return {
        async run(sync) {
          const y = build(ins);
          await sync();
          y.dispose();
        },
        dispose: () => ins.forEach((t) => t.dispose()),
      };
    },
  };
}

const bench: BenchModule = (devices, { quick }) => {
  const tokens = quick ? 64 : 512;
  const D = 4096, F = 11008, S = quick ? 256 : 1024;
  const calls = quick ? 2000 : 10_000;
  return devices.flatMap((device): BenchCase[] => [
    // add: read a, b; write y.
    memCase(device, 'add', [tokens, D], 3, 0, ([a, b]) => add(a, b), [[tokens, D], [tokens, D]]),
    // rmsNorm: read x, write y (+ the weight row).
    memCase(device, 'rmsNorm', [tokens, D], 2, D * 4, ([x, w]) => rmsNorm(x, w), [[tokens, D], [D]]),
    // siluMul: read gate, up; write y (the Llama MLP width).
    memCase(device, 'siluMul', [tokens, F], 3, 0, ([g, u]) => siluMul(g, u), [[tokens, F], [tokens, F]]),
    // softmax over attention-score rows: read x, write y.
    memCase(device, 'softmax', [32 * (quick ? 8 : 32), S], 2, 0, ([x]) => softmax(x), [[32 * (quick ? 8 : 32), S]]),
    {
      name: `enqueue ${calls}× add [8] + 1 sync`,
      op: 'enqueue',
      device,
      bound: 'memory',
      work: { calls },
      async setup() {
        const a = make([8], 3, device), b = make([8], 4, device);
        const outs: Tensor[] = new Array(calls);
        return {
          async run(sync) {
            for (let i = 0; i < calls; i++) outs[i] = add(a, b);
            await sync();
            for (const t of outs) t.dispose();
          },
          dispose() {
            a.dispose();
            b.dispose();
          },
        };
      },
    },
  ]);
};

export default bench;
