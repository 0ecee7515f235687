// RoPE: T tokens, Hq = 32, Hkv = 8, D = 128, f16 — memory-bound (read + write of q and k).
// writeKvCache: the same T tokens' k and v rows appended to a paged cache (64-token
// pages in reverse order, as a fragmented cache holds them) — a row copy, memory-bound.
// As in a prefill, k and v were just written (hot); the destination cycles through 8
// caches (layers), so the cache rows are cold.
import { full, rope, synchronize, tensor, writeKvCache, type Tensor } from '../../lib/index.js';
import type { BenchCase, BenchModule } from '../types.js';

const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 2);

const module: BenchModule = (devices, { quick }) => {
  const T = quick ? 512 : 4096;
  const Hq = 32;
  const Hkv = 8;
  const D = 128;
  const bytes = 2 * 2 * T * (Hq + Hkv) * D; // f16, read + write
  const cases: BenchCase[] = [];
  for (const device of devices) {
    if (device === 'simt' && !quick) continue; // the emulator is for correctness, not speed
    const make = (fused: boolean): BenchCase => ({
      name: `rope f16 T=${T} Hq=${Hq} Hkv=${Hkv} D=${D}${fused ? '' : ' (two passes)'}`,
      op: 'rope',
      device,
      work: { bytes },
      bound: 'memory',
      baseline: fused ? `rope f16 T=${T} Hq=${Hq} Hkv=${Hkv} D=${D} (two passes)` : undefined,
      async setup() {
        const q: Tensor = tensor(rand(T * Hq * D), [T, Hq, D], { dtype: 'f16', device });
        const k: Tensor = tensor(rand(T * Hkv * D), [T, Hkv, D], { dtype: 'f16', device });
        const pos = tensor(Int32Array.from({ length: T }, (_, i) => i), [T], { device });
        await synchronize(device);
        return {
          async run(sync) {
            if (fused) rope(q, k, pos, { base: 500000 });
            else {
              rope(q, null, pos, { base: 500000 });
              rope(k, null, pos, { base: 500000 });
            }
            await sync();
          },
          dispose() {
            q.dispose();
            k.dispose();
            pos.dispose();
          },
        };
      },
    });
    cases.push(make(false), make(true));
    const pageSize = 64;
    const pages = Math.ceil(T / pageSize);
    cases.push({
      name: `writeKvCache f16 T=${T} Hkv=${Hkv} D=${D} (${pageSize}-token pages; 8 caches in turn)`,
      op: 'rope',
      device,
      work: { bytes: 2 * 2 * 2 * T * Hkv * D }, // f16 k and v rows, read + write
      bound: 'memory',
      async setup() {
        const k: Tensor = tensor(rand(T * Hkv * D), [T, Hkv, D], { dtype: 'f16', device });
        const v: Tensor = tensor(rand(T * Hkv * D).reverse(), [T, Hkv, D], { dtype: 'f16', device });
        const layers = Array.from({ length: 8 }, () => ({
          kCache: full([pages, pageSize, Hkv, D], 0, { dtype: 'f16', device }),
          vCache: full([pages, pageSize, Hkv, D], 0, { dtype: 'f16', device }),
        }));
        let layer = 0;
        const slots = tensor(
          Int32Array.from({ length: T }, (_, t) => (pages - 1 - Math.floor(t / pageSize)) * pageSize + (t % pageSize)),
          [T],
          { device },
        );
        await synchronize(device);
        return {
          async run(sync) {
            writeKvCache(k, v, { ...layers[layer++ % layers.length], slots });
            await sync();
          },
          dispose() {
            for (const t of [k, v, slots, ...layers.flatMap((c) => [c.kCache, c.vCache])]) t.dispose();
          },
        };
      },
    });
  }
  return cases;
};
export default module;
