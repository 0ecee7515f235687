// Attention: FlashAttention prefill (B=1, Hq=32, Hkv=8, D=128) against a naive
// materialized-scores attention on the same device (cpu: the same register-blocked SIMD
// kernels; cuda: three tensor-core passes, native/cuda/attention_naive.cu), and paged
// flash-decoding of one query over Sk cached tokens (memory-bound: K and V read once,
// from DRAM).
import { flashAttention, pagedAttention, synchronize, tensor, type Tensor } from '../../lib/index.js';
import { attentionNaive } from '../../lib/ops/attention.js';
import type { BenchCase, BenchModule } from '../types.js';

const rand = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 2);
const Hq = 32;
const Hkv = 8;
const D = 128;
const dtype = 'f16';

// bf16 prefill runs its two products on VDPBF16PS where the cpu has it (both the flash
// kernel and the naive baseline), so its % of peak is against the bf16 dot-product probe.
function prefill(device: string, S: number, causal: boolean, naive: boolean, dtype: 'f16' | 'bf16' = 'f16'): BenchCase {
  const name = (n: boolean) => `attention prefill ${dtype} S=${S}${causal ? ' causal' : ''}${n ? ' (naive, materialized scores)' : ''}`;
  return {
    name: name(naive),
    op: 'attention',
    device,
    work: { flops: (4 * S * S * Hq * D) / (causal ? 2 : 1), flopsPeak: dtype === 'bf16' ? 'bf16' : 'fp32' },
    bound: 'compute',
    baseline: naive ? undefined : name(true),
    async setup() {
      const q: Tensor = tensor(rand(S * Hq * D), [1, S, Hq, D], { dtype, device });
      const k: Tensor = tensor(rand(S * Hkv * D).reverse(), [1, S, Hkv, D], { dtype, device });
      const v: Tensor = tensor(rand(S * Hkv * D), [1, S, Hkv, D], { dtype, device });
      await synchronize(device);
      return {
        async run(sync) {
          const out = naive ? attentionNaive(q, k, v, { causal }) : flashAttention(q, k, v, { causal }).out;
          await sync();
          out.dispose();
        },
        dispose() {
          for (const t of [q, k, v]) t.dispose();
        },
      };
    },
  };
}

// A decode step reads each layer's cache once, so its K/V never sits in L3 the way one
// cache read over and over would (33.5 MB at Sk = 8192 is about this VM's L3): the case
// cycles through enough separate caches (layers) to pass 256 MiB, the size of the
// read-bandwidth probe, and its GB/s is DRAM's. One run is decode steps as the decoder
// issues them: 64 calls (layers in turn) enqueued back to back and one sync at the end
// (the model syncs once per token, to read the logits, after a hundred-odd ops), so the
// figure is the op's own cost per call; with one sync per 8 calls (Sk = 8192, one pass
// over its 8 layers) the sync and the wake-up of sleeping threads added ~20 µs a call.
// The latency case syncs after each call: that adds the hand-back to the JS thread
// (~10–25 µs on this VM), which a server waiting on one call would see.
function decode(device: string, Sk: number, latency = false): BenchCase {
  const pageSize = 64;
  const pages = Sk / pageSize;
  const bytes = 2 * Sk * Hkv * D * 2;
  const layers = Math.max(1, Math.ceil((256 << 20) / bytes));
  const calls = latency ? 1 : Math.max(layers, 64);
  return {
    name:
      `pagedAttention decode ${dtype} Sk=${Sk} Hq=${Hq} Hkv=${Hkv} D=${D} ` +
      (latency ? `(latency: one call + sync, KV from DRAM)` : `(${calls} calls back to back, one sync; ${layers} caches in turn: KV from DRAM)`),
    op: 'attention',
    device,
    work: latency ? { bytes } : { bytes: bytes * calls, calls },
    bound: 'memory',
    async setup() {
      const q = tensor(rand(Hq * D), [1, Hq, D], { dtype, device });
      const kData = rand(pages * pageSize * Hkv * D);
      const vData = kData.slice().reverse();
      const caches = Array.from({ length: layers }, () => ({
        k: tensor(kData, [pages, pageSize, Hkv, D], { dtype, device }),
        v: tensor(vData, [pages, pageSize, Hkv, D], { dtype, device }),
      }));
      // Pages in reverse order: the table, not the allocation order, defines the sequence.
      const table = tensor(Int32Array.from({ length: pages }, (_, i) => pages - 1 - i), [1, pages], { device });
      const lens = tensor(Int32Array.from([Sk]), [1], { device });
      await synchronize(device);
      let layer = 0;
      return {
        async run(sync) {
          const outs: Tensor[] = [];
          for (let i = 0; i < calls; i++) {
            const c = caches[layer];
            layer = (layer + 1) % layers;
            outs.push(pagedAttention(q, c.k, c.v, table, lens).out);
          }
          await sync();
          for (const o of outs) o.dispose();
        },
        dispose() {
          for (const t of [q, table, lens, ...caches.flatMap((c) => [c.k, c.v])]) t.dispose();
        },
      };
    },
  };
}

const module: BenchModule = (devices, { quick }) => {
  const cases: BenchCase[] = [];
  for (const device of devices) {
    if (device === 'simt' && !quick) continue; // the emulator is for correctness, not speed
    for (const dt of quick ? (['f16'] as const) : (['f16', 'bf16'] as const))
      for (const S of quick ? [512] : [512, 2048])
        for (const causal of [false, true]) {
          cases.push(prefill(device, S, causal, false, dt));
          cases.push(prefill(device, S, causal, true, dt));
        }
    for (const Sk of quick ? [1024] : [1024, 8192]) cases.push(decode(device, Sk));
    if (!quick) cases.push(decode(device, 1024, true));
  }
  return cases;
};
export default module;
