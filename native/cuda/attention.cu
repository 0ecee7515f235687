// Attention on CUDA.
//   fa_mma_kernel    FlashAttention-2 style forward for f16/bf16 (attention_fa_kernel.cuh;
//                    one generated instance file per head-dim bucket, attention_fa_hdim*.cu,
//                    picked by launch_fa in attention_fa_dispatch.cuh; tile choices are in
//                    scripts/gen-attention-instances.mjs).
//   fa_rows_kernel   f32 (no f32 tensor cores): a warp per query row, keys streamed.
//   paged_decode_kernel + combine_kernel   flash-decoding over the paged KV cache:
//                    a block per (token, kv head, head group, split) reads each cached row
//                    once for the whole GQA group; splits merge by their log-sum-exp.
//   fa_mma_kernel, paged (f16/bf16, no window): before them, every 64-row tile of the
//                    call's rows that is a prefill chunk (kPagedPrefillRun+ rows, one sequence:
//                    lengths rising by one, block-table rows agreeing) runs as one causal
//                    FA tile over the cache, on tensor cores, instead of 64 decode rows
//                    that would each read the whole prefix; such tiles are flagged and the
//                    decode and combine kernels skip their rows. The tables stay on the
//                    device: paged_tile_kernel checks each tile there.
// Bottom-right causal alignment: query i sees keys j ≤ i + Sk − Sq; a row that sees no
// key outputs 0 (lse −inf).
// check:cuda expects: shfl.sync
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention_fa_dispatch.cuh"
#include "reduce.cuh"

namespace llmk::LLMK_DEVICE_NS {
namespace {

using namespace attn;


// tile_done[tile] = whether rows [64·tile, +64) of a pagedAttention call (fewer in the
// last tile) are one prefill chunk the FA tile can take: ≥ kPagedPrefillRun rows,
// lengths rising by one to the last row's (≤ the table's capacity), every row's
// block-table entries for its keys equal to the last row's, and those pages inside the
// cache (else the decode kernel reports the bad row). One block per tile, ahead of the
// FA blocks (Hq per tile), which read the flag.
__global__ void __launch_bounds__(128) paged_tile_kernel(FaParams p) {
  const int r0 = blockIdx.x * 64, n = imin(64, p.T - r0);
  __shared__ int ok;
  if (threadIdx.x == 0) ok = n >= kPagedPrefillRun;
  __syncthreads();
  const int last = p.seq_lens[r0 + n - 1];
  const int* bt_last = p.block_table + (size_t)(r0 + n - 1) * p.max_pages;
  if (last < n || last > p.max_pages * p.page_size) {
    if (threadIdx.x == 0) ok = 0;
  } else {
    const int pages = (last + p.page_size - 1) / p.page_size;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
      if (p.seq_lens[r0 + i] != last - (n - 1 - i)) ok = 0;
    for (int c = threadIdx.x; c < n * pages; c += blockDim.x) {
      const int i = c / pages, pg = c % pages, need = (last - (n - 1 - i) + p.page_size - 1) / p.page_size;
      const int e = bt_last[pg];
      if (e < 0 || e >= p.num_pages || (pg < need && p.block_table[(size_t)(r0 + i) * p.max_pages + pg] != e)) ok = 0;
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) p.tile_done[blockIdx.x] = ok;
}


// f32: a warp per query row (b, i, h); lanes over D (≤ 8 elements each), keys streamed.
template <class T>
__global__ void __launch_bounds__(128) fa_rows_kernel(FaParams p) {
  const int b = blockIdx.z, h = blockIdx.y, kvh = h / (p.Hq / p.Hkv);
  const int lane = threadIdx.x % 32, i = blockIdx.x * 4 + threadIdx.x / 32;
  int qbase, Sq, kbase, Sk;
  seq_bounds(p.cu_q, b, p.Sq, &qbase, &Sq);
  seq_bounds(p.cu_k, b, p.Sk, &kbase, &Sk);
  if (i >= Sq) return;  // whole warp
  const T* q = static_cast<const T*>(p.q) + ((size_t)(qbase + i) * p.Hq + h) * p.D;
  float qv[8], acc[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int d = lane + 32 * e;
    qv[e] = d < p.D ? to_f32(q[d]) * p.scale_log2 : 0.f;
    acc[e] = 0.f;
  }
  const int kend = p.causal ? imin(Sk, i + Sk - Sq + 1) : Sk;
  float m = -INFINITY, l = 0.f;
  for (int j = 0; j < kend; ++j) {
    const T* k = static_cast<const T*>(p.k) + ((size_t)(kbase + j) * p.Hkv + kvh) * p.D;
    const T* v = static_cast<const T*>(p.v) + ((size_t)(kbase + j) * p.Hkv + kvh) * p.D;
    float s = 0.f;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = lane + 32 * e;
      if (d < p.D) s += qv[e] * to_f32(k[d]);
    }
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    const float mn = fmaxf(m, s), alpha = exp2f(m - mn), pj = exp2f(s - mn);
    l = l * alpha + pj;
    m = mn;
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int d = lane + 32 * e;
      acc[e] = acc[e] * alpha + (d < p.D ? pj * to_f32(v[d]) : 0.f);
    }
  }
  T* out = static_cast<T*>(p.out) + ((size_t)(qbase + i) * p.Hq + h) * p.D;
#pragma unroll
  for (int e = 0; e < 8; ++e) {
    const int d = lane + 32 * e;
    if (d < p.D) out[d] = from_f32<T>(l > 0.f ? acc[e] / l : 0.f);
  }
  if (p.lse && lane == 0) {
    const size_t idx = p.lse_packed ? (size_t)h * p.Tq + qbase + i : ((size_t)b * p.Hq + h) * Sq + i;
    p.lse[idx] = l > 0.f ? (m + log2f(l)) * kLn2 : -INFINITY;
  }
}

// ---- paged flash-decoding ------------------------------------------------------------

constexpr int kGroup = 4;  // q heads of one kv head per block: each cached row is read once for all

struct PagedParams {
  const void* q;
  const void* kc;
  const void* vc;
  const int* block_table;
  const int* seq_lens;
  float* part_o;    // [T · splits, Hq, D]
  float* part_lse;  // [T · splits, Hq], log2 units
  int Hq, Hkv, D, page_size, max_pages, num_pages, splits;
  int window;  // > 0: a row sees its last `window` keys only
  float scale_log2;
  // Device-side validation (no host copy of the tables): atomicMin'd with
  // tok · (max_pages + 1) + i for a page index blockTable[tok][i] outside the cache, or
  // + max_pages for seqLens[tok] beyond the table; such keys are skipped.
  int* error;
  const int* tile_done;  // per 64 rows: 1 when the paged FA tile wrote them (null: none did)
};

// E = D / 32 rounded up to 4 or 8: the K, V, Q and O elements a lane holds (D ≤ 128 or
// ≤ 256); U = keys a warp has in flight (fewer at E = 8, to stay within the registers
// sm_86/89 give a 128-thread block without spilling).
template <class T, int E>
__global__ void __launch_bounds__(128) paged_decode_kernel(PagedParams p) {
  constexpr int U = E == 8 ? 2 : 4;
  __shared__ float sm_m[4][kGroup], sm_l[4][kGroup];
  __shared__ float sm_acc[4][kGroup][256];
  const int tok = blockIdx.x, split = blockIdx.z;
  if (p.tile_done && p.tile_done[tok / 64]) return;  // whole block
  const int G = p.Hq / p.Hkv, groups = (G + kGroup - 1) / kGroup;
  const int kvh = blockIdx.y / groups, h0 = kvh * G + (blockIdx.y % groups) * kGroup;
  const int nh = imin(kGroup, kvh * G + G - h0);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int cap = p.max_pages * p.page_size, len_in = p.seq_lens[tok];
  if ((len_in < 0 || len_in > cap) && threadIdx.x == 0) atomicMin(p.error, tok * (p.max_pages + 1) + p.max_pages);
  const int len = len_in < 0 ? 0 : imin(len_in, cap);
  const int first = p.window > 0 && len > p.window ? len - p.window : 0;
  const int per = (len - first + p.splits - 1) / p.splits, j0 = first + split * per, j1 = imin(len, j0 + per);
  float qv[kGroup][E], acc[kGroup][E], m[kGroup], l[kGroup];
#pragma unroll
  for (int x = 0; x < kGroup; ++x) {
    m[x] = -INFINITY;
    l[x] = 0.f;
    const T* q = static_cast<const T*>(p.q) + ((size_t)tok * p.Hq + h0 + (x < nh ? x : 0)) * p.D;
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int d = lane + 32 * e;
      qv[x][e] = (x < nh && d < p.D) ? to_f32(q[d]) * p.scale_log2 : 0.f;
      acc[x][e] = 0.f;
    }
  }
  const int* bt = p.block_table + (size_t)tok * p.max_pages;
  // A warp takes U consecutive keys at a time: their K and V rows are all loaded before
  // any is used, so U rows per warp are in flight, and the softmax rescales once per U
  // keys. The next step's rows (page lookup included) are loaded into registers, raw,
  // before this step's math: converting them here would wait on the loads, so they are
  // widened only when their step begins. Without this each step waited out two memory
  // latencies (table, then rows) with nothing else to do — on an H200 a 256-key split
  // took ~45 µs.
  T kn[U][E], vn[U][E];
  bool okn[U];
  auto load = [&](int jb) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int j = jb + u;
      int pg = 0;
      okn[u] = j < j1;  // the same in every lane
      if (okn[u]) {
        pg = bt[j / p.page_size];
        if (pg < 0 || pg >= p.num_pages) {
          if (lane == 0) atomicMin(p.error, tok * (p.max_pages + 1) + j / p.page_size);
          okn[u] = false;
          pg = 0;
        }
      }
      const size_t row = ((size_t)pg * p.page_size + (okn[u] ? j % p.page_size : 0)) * p.Hkv + kvh;
      const T* k = static_cast<const T*>(p.kc) + row * p.D;
      const T* v = static_cast<const T*>(p.vc) + row * p.D;
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const int d = lane + 32 * e;
        if (okn[u] && d < p.D) {
          kn[u][e] = k[d];
          vn[u][e] = v[d];
        }
      }
    }
  };
  if (j0 + warp * U < j1) load(j0 + warp * U);
  for (int jb = j0 + warp * U; jb < j1; jb += 4 * U) {
    float kr[U][E], vr[U][E];
    bool ok[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      ok[u] = okn[u];
#pragma unroll
      for (int e = 0; e < E; ++e) {
        const bool in = ok[u] && lane + 32 * e < p.D;
        kr[u][e] = in ? to_f32(kn[u][e]) : 0.f;
        vr[u][e] = in ? to_f32(vn[u][e]) : 0.f;
      }
    }
    if (jb + 4 * U < j1) load(jb + 4 * U);
#pragma unroll
    for (int x = 0; x < kGroup; ++x) {
      float s[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        s[u] = 0.f;
#pragma unroll
        for (int e = 0; e < E; ++e) s[u] += qv[x][e] * kr[u][e];
      }
      for (int off = 16; off > 0; off >>= 1)
#pragma unroll
        for (int u = 0; u < U; ++u) s[u] += __shfl_xor_sync(0xffffffffu, s[u], off);
      float mn = m[x];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        s[u] = ok[u] ? s[u] : -INFINITY;
        mn = fmaxf(mn, s[u]);
      }
      const float ref = mn == -INFINITY ? 0.f : mn;  // nothing visible yet: avoid inf − inf
      const float alpha = exp2f(m[x] - ref);
      m[x] = mn;
      l[x] *= alpha;
#pragma unroll
      for (int e = 0; e < E; ++e) acc[x][e] *= alpha;
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float pj = exp2f(s[u] - ref);
        l[x] += pj;
#pragma unroll
        for (int e = 0; e < E; ++e) acc[x][e] += pj * vr[u][e];
      }
    }
  }
  // Merge the 4 warps' partial softmax states through shared memory.
#pragma unroll
  for (int x = 0; x < kGroup; ++x) {
    if (lane == 0) {
      sm_m[warp][x] = m[x];
      sm_l[warp][x] = l[x];
    }
#pragma unroll
    for (int e = 0; e < E; ++e) {
      const int d = lane + 32 * e;
      if (d < p.D) sm_acc[warp][x][d] = acc[x][e];
    }
  }
  __syncthreads();
  const size_t part = (size_t)tok * p.splits + split;
  for (int idx = threadIdx.x; idx < nh * p.D; idx += blockDim.x) {
    const int x = idx / p.D, d = idx % p.D;
    float mx = -INFINITY;
    for (int w = 0; w < 4; ++w) mx = fmaxf(mx, sm_m[w][x]);
    float lt = 0.f, o = 0.f;
    for (int w = 0; w < 4; ++w) {
      const float f = sm_m[w][x] == -INFINITY ? 0.f : exp2f(sm_m[w][x] - mx);
      lt += sm_l[w][x] * f;
      o += sm_acc[w][x][d] * f;
    }
    p.part_o[(part * p.Hq + h0 + x) * p.D + d] = lt > 0.f ? o / lt : 0.f;
    if (d == 0) p.part_lse[part * p.Hq + h0 + x] = lt > 0.f ? mx + log2f(lt) : -INFINITY;
  }
}

// One block per (row, q head) merges the splits' partial outputs, weight
// exp2(lse_s − max). The split LSEs are read by all threads at once (a split per
// thread, block reductions for the max and the sum), and each thread's output sum runs
// over independent loads: a loop per split in one thread, as before, chained three
// reads of every split's LSE, a serial walk of ~3 × splits L2 latencies (66 splits at
// Sk = 8192 on an H200).
constexpr int kCombineChunk = 512;  // split weights staged in shared memory per pass

template <class T>
__global__ void __launch_bounds__(128) paged_combine_kernel(const float* part_o, const float* part_lse, T* out,
                                                            float* lse, int Hq, int D, int splits,
                                                            const int* tile_done) {
  __shared__ float scratch[4], w_sm[kCombineChunk];
  const int tok = blockIdx.x, h = blockIdx.y;
  if (tile_done && tile_done[tok / 64]) return;  // whole block
  const float* ls = part_lse + (size_t)tok * splits * Hq + h;  // split s at ls[s · Hq]
  const float* po = part_o + ((size_t)tok * splits * Hq + h) * D;  // split s at po[s · Hq · D]
  float mx = -INFINITY;
  for (int s = threadIdx.x; s < splits; s += blockDim.x) mx = fmaxf(mx, ls[(size_t)s * Hq]);
  mx = block_reduce(mx, MaxF(), scratch);
  // D ≤ 256 = 2 × blockDim: a thread owns output columns d0 and d0 + 128.
  const int d0 = threadIdx.x, d1 = threadIdx.x + 128;
  float wsum = 0.f, o0 = 0.f, o1 = 0.f;
  for (int c = 0; c < splits; c += kCombineChunk) {
    const int n = imin(kCombineChunk, splits - c);
    __syncthreads();  // w_sm of the previous chunk is read by every thread
    for (int s = threadIdx.x; s < n; s += blockDim.x) {
      const float l = ls[(size_t)(c + s) * Hq];
      const float w = l == -INFINITY ? 0.f : exp2f(l - mx);
      w_sm[s] = w;
      wsum += w;
    }
    __syncthreads();
    const float* pc = po + (size_t)c * Hq * D;
#pragma unroll 8
    for (int s = 0; s < n; ++s) {
      const float w = w_sm[s];
      if (w == 0.f) continue;  // an empty split (or one far below the max): nothing to add
      if (d0 < D) o0 += w * pc[(size_t)s * Hq * D + d0];
      if (d1 < D) o1 += w * pc[(size_t)s * Hq * D + d1];
    }
  }
  wsum = block_reduce(wsum, SumF(), scratch);
  const float inv = wsum > 0.f ? 1.f / wsum : 0.f;
  T* orow = out + ((size_t)tok * Hq + h) * D;
  if (d0 < D) orow[d0] = from_f32<T>(o0 * inv);
  if (d1 < D) orow[d1] = from_f32<T>(o1 * inv);
  if (lse && threadIdx.x == 0) lse[(size_t)tok * Hq + h] = wsum > 0.f ? (mx + log2f(wsum)) * kLn2 : -INFINITY;
}


// The fields every FA launch sets: tensors [.., H, D] (the head and dim axes last).
FaParams fa_params(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor* lse, float scale,
                   bool causal) {
  FaParams p{};
  p.q = q.raw();
  p.k = k.raw();
  p.v = v.raw();
  p.out = out.raw();
  p.lse = lse ? lse->data<float>() : nullptr;
  p.Hq = int(q.dim(-2));
  p.Hkv = int(k.dim(-2));
  p.D = int(q.dim(-1));
  p.Dp = (p.D + 15) / 16 * 16;
  p.scale_log2 = scale * kLog2e;
  p.causal = causal;
  p.chunks = 1;
  return p;
}

}  // namespace

void launch_attention(const Tensor& q, const Tensor& k, const Tensor& v, const int* cu_q_dev, const int* cu_k_dev,
                      int batch, int max_sq, const AttentionParams& ap, const Tensor& out, const Tensor* lse,
                      cudaStream_t st) {
  const bool varlen = cu_q_dev != nullptr;
  FaParams p = fa_params(q, k, v, out, lse, ap.scale, ap.causal);
  p.cu_q = cu_q_dev;
  p.cu_k = cu_k_dev;
  p.Sq = varlen ? 0 : int(q.dim(1));
  p.Sk = varlen ? 0 : int(k.dim(1));
  p.lse_packed = varlen;
  p.Tq = varlen ? int(q.dim(0)) : 0;
  if (batch == 0 || max_sq == 0) return;
  switch (q.dtype) {
    case DType::F16: launch_fa<__half>(p, batch, max_sq, st); break;
    case DType::BF16: launch_fa<__nv_bfloat16>(p, batch, max_sq, st); break;
    default: {
      const dim3 grid(unsigned((max_sq + 3) / 4), unsigned(p.Hq), unsigned(batch)), block(128);
      llmk_launch(fa_rows_kernel<float>, grid, block, 0, st, p);
    }
  }
}

void launch_paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                            const Tensor& seq_lens, int splits, float scale, float* part_o, float* part_lse,
                            const Tensor& out, const Tensor* lse, int window, int* error, int* tile_done,
                            cudaStream_t st) {
  PagedParams p{};
  p.q = q.raw();
  p.kc = k_cache.raw();
  p.vc = v_cache.raw();
  p.block_table = block_table.data<int32_t>();
  p.seq_lens = seq_lens.data<int32_t>();
  p.part_o = part_o;
  p.part_lse = part_lse;
  p.Hq = int(q.dim(1));
  p.Hkv = int(k_cache.dim(2));
  p.D = int(q.dim(2));
  p.page_size = int(k_cache.dim(1));
  p.max_pages = int(block_table.dim(1));
  p.num_pages = int(k_cache.dim(0));
  p.error = error;
  p.splits = splits;
  p.window = window;
  p.scale_log2 = scale * kLog2e;
  const int T = int(q.dim(0)), G = p.Hq / p.Hkv, groups = (G + kGroup - 1) / kGroup;
  if (!T) return;
  if (tile_done) {
    // Prefill chunks first, 64 rows a tile, on the FA kernel (f16/bf16; the caller passes
    // tile_done only then, with no window and T ≥ kPagedPrefillRun).
    FaParams f = fa_params(q, k_cache, v_cache, out, lse, scale, true);
    f.lse_packed = 2;
    f.block_table = p.block_table;
    f.seq_lens = p.seq_lens;
    f.T = T;
    f.page_size = p.page_size;
    f.max_pages = p.max_pages;
    f.num_pages = p.num_pages;
    f.tile_done = tile_done;
    llmk_launch(paged_tile_kernel, dim3(unsigned((T + 63) / 64)), dim3(128), 0, st, f);
    if (q.dtype == DType::F16) launch_fa<__half>(f, 1, T, st);
    else launch_fa<__nv_bfloat16>(f, 1, T, st);
    p.tile_done = tile_done;
  }
  const dim3 grid(unsigned(T), unsigned(p.Hkv * groups), unsigned(splits)), block(128);
  float* l = lse ? lse->data<float>() : nullptr;
  switch (q.dtype) {
    case DType::F32:
      if (p.D <= 128) llmk_launch(paged_decode_kernel<float, 4>, grid, block, 0, st, p);
      else llmk_launch(paged_decode_kernel<float, 8>, grid, block, 0, st, p);
      llmk_launch(paged_combine_kernel<float>, dim3(unsigned(T), unsigned(p.Hq)), block, 0, st, part_o, part_lse,
                  out.data<float>(), l, p.Hq, p.D, splits, p.tile_done);
      break;
    case DType::F16:
      if (p.D <= 128) llmk_launch(paged_decode_kernel<__half, 4>, grid, block, 0, st, p);
      else llmk_launch(paged_decode_kernel<__half, 8>, grid, block, 0, st, p);
      llmk_launch(paged_combine_kernel<__half>, dim3(unsigned(T), unsigned(p.Hq)), block, 0, st, part_o, part_lse,
                  out.data<__half>(), l, p.Hq, p.D, splits, p.tile_done);
      break;
    default:
      if (p.D <= 128) llmk_launch(paged_decode_kernel<__nv_bfloat16, 4>, grid, block, 0, st, p);
      else llmk_launch(paged_decode_kernel<__nv_bfloat16, 8>, grid, block, 0, st, p);
      llmk_launch(paged_combine_kernel<__nv_bfloat16>, dim3(unsigned(T), unsigned(p.Hq)), block, 0, st, part_o,
                  part_lse, out.data<__nv_bfloat16>(), l, p.Hq, p.D, splits, p.tile_done);
  }
}

}  // namespace llmk::LLMK_DEVICE_NS
