// The one interface every backend (cpu, simt, cuda) implements. Ops receive tensors
// that the binding layer has already validated (shapes, dtypes, same device) and an
// output it has allocated; a backend checks only what it alone knows (e.g. a kernel's
// alignment needs). All op methods run on the device's worker thread in stream order.
#pragma once
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "common/rope.h"
#include "llmk/status.h"
#include "llmk/tensor.h"

namespace llmk {

enum class BinaryOp { Add, Mul };

// Destination of the fused rope + KV-cache append: caches are [numPages, pageSize,
// Hkv, D] (the paged layout of the attention kernels); token t goes to flat slot
// slots[t] = page · pageSize + offset, an i32 in [0, numPages · pageSize).
struct KvCacheWrite {
  Tensor v;        // [T, Hkv, D], dtype of k
  Tensor slots;    // i32 [T]
  Tensor k_cache;  // [numPages, pageSize, Hkv, D], dtype of k
  Tensor v_cache;
};

// LLM.int8() weight, made once by int8_quantize_weight from w[N,K]: q = round(w·127/sw)
// (i8 [N,K]), sw = max |w[n,:]| (f32 [N]), rowsum = Σ_k q[n,k] (i32 [N]; kernels that
// offset activations to u8 subtract 128·rowsum instead of re-reading the weights).
struct Int8Weight {
  Tensor q;
  Tensor scale;
  Tensor rowsum;
};

// Attention options shared by the dense, packed and paged forms.
struct AttentionParams {
  float scale = 0;       // softmax scale (finite), usually 1/sqrt(D)
  bool causal = false;   // bottom-right aligned: query i of Sq sees keys j <= i + Sk − Sq
  int num_splits = 0;    // paged decode: KV splits per (sequence, kv head); 0 = the backend chooses
  int window = 0;        // paged: a row of length len sees keys j >= len − window only (0 = all keys)
};

struct DeviceInfo {
  std::string name;     // "cpu", "simt", "cuda:0"
  std::string kind;     // "cpu" | "simt" | "cuda"
  std::string detail;   // ISA, GPU name, ...
  int threads = 0;      // worker threads used for compute (cpu/simt)
  size_t total_memory = 0;
};

// A point in a device's stream for benchmarks: record() runs on the worker thread in
// stream order (after the work enqueued before it, before the work after it), so the
// time between two marks is the device's own time for what lies between them, without
// the JS thread's enqueue and sync. ms_since() is read once a sync has covered both
// marks; before that it throws. A backend supplies stamp() and elapsed_ms().
class TimeMark {
 public:
  virtual ~TimeMark() = default;
  void record() {
    stamp();
    recorded_.store(true, std::memory_order_release);
  }
  double ms_since(const TimeMark& earlier) const {
    LLMK_CHECK(typeid(earlier) == typeid(*this), TypeError, "Expected two time marks of the same device");
    if (!earlier.recorded_.load(std::memory_order_acquire) || !recorded_.load(std::memory_order_acquire)) not_reached();
    return elapsed_ms(earlier);
  }

 protected:
  [[noreturn]] static void not_reached() {
    fail(ErrorKind::Error, "Expected time marks the device has reached; await synchronize(device) before reading them");
  }
  virtual void stamp() = 0;
  // From `earlier` (same dynamic type, both recorded) to this mark.
  virtual double elapsed_ms(const TimeMark& earlier) const = 0;

 private:
  std::atomic<bool> recorded_{false};
};

// The worker's clock: right for a backend whose worker runs the ops itself (cpu).
class HostTimeMark final : public TimeMark {
 protected:
  void stamp() override { t_ = std::chrono::steady_clock::now(); }
  double elapsed_ms(const TimeMark& earlier) const override {
    return std::chrono::duration<double, std::milli>(t_ - static_cast<const HostTimeMark&>(earlier).t_).count();
  }

 private:
  std::chrono::steady_clock::time_point t_;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual DeviceInfo info() const = 0;
  // A fresh mark for this device's stream (not yet recorded).
  virtual std::unique_ptr<TimeMark> time_mark() { return std::make_unique<HostTimeMark>(); }

  // Memory. alloc throws llmk::Error on failure; free never throws.
  virtual void* alloc(size_t bytes) = 0;
  virtual void free(void* p, size_t bytes) noexcept = 0;
  // True when device memory is plain host memory (cpu, simt): the binding layer
  // may then fill a fresh tensor directly from the JS thread.
  virtual bool host_accessible() const = 0;
  // Stream-ordered copies (called on the worker thread).
  virtual void copy_from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void copy_device(void* dst, const void* src, size_t bytes) = 0;
  // Waits until all work issued by this backend is complete (no-op for cpu).
  virtual void synchronize() = 0;

  // ---- ops (shapes as in DESIGN §4; all tensors contiguous) ----
  // y[M,N] = x[M,K] · w[N,K]^T (+ bias[N]); x, w, bias, y share one float dtype.
  virtual void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) = 0;
  // y = a op b; b has a.numel() elements or broadcasts over the leading dims of a
  // (b.numel() divides a.numel() and equals the product of a's trailing dims).
  virtual void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y) = 0;
  // y[r,:] = x[r,:] / sqrt(mean(x[r,:]^2) + eps) * w   (rows = numel / w.numel)
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) = 0;
  // y = silu(gate) * up
  virtual void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& y) = 0;
  // y[t,:] = table[ids[t],:]. ids (i32) live on the device, so only the backend can
  // see them: an id outside [0, rows) throws llmk::Error (reported at the next sync).
  virtual void embedding(const Tensor& table, const Tensor& ids, const Tensor& y) = 0;
  // softmax over the last dim, f32 math
  virtual void softmax(const Tensor& x, const Tensor& y) = 0;
  // y[r] = index of the first maximum of x[r,:] (i32); NaN counts as the maximum
  virtual void argmax(const Tensor& x, const Tensor& y) = 0;
  // y = x converted to y.dtype (same numel); round-to-nearest-even, float->int saturates
  virtual void cast(const Tensor& x, const Tensor& y) = 0;
  // y[:] = value converted to y.dtype
  virtual void fill(const Tensor& y, double value) = 0;

  // Rotary embedding, one pass over q[T,Hq,D] and (optionally; k may be null)
  // k[T,Hkv,D]; positions i32[T] (a negative one throws llmk::Error); dims >= rotary_dim
  // pass through untouched. See common/rope.h. Without `cache`, q and k rotate in
  // place. With it (the decoder's fused path), q rotates in place while rotated k rows
  // and v rows are written to cache slots instead (k is left as it was).
  virtual void rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg,
                    const RopeTable& table, const KvCacheWrite* cache) = 0;
  // The paged-cache append without a rotation (vLLM's reshape_and_cache): k rows
  // [T,Hkv,D] and cache.v rows to cache slots. A slot outside [0, numPages·pageSize)
  // throws llmk::Error and nothing is written (validated before the first write).
  virtual void kv_cache_write(const Tensor& k, const KvCacheWrite& cache) = 0;

  // LLM.int8() (Dettmers et al. 2022). Non-finite weights throw llmk::Error.
  virtual void int8_quantize_weight(const Tensor& w, const Int8Weight& out) = 0;
  // Activations x[M,K] (f16/f32): outlier columns O = {k : some finite |x[m,k]| >= threshold}
  // (none when threshold == 0), sx[m] = max |x[m, k ∉ O]|, q = round(x·127/sx) with q[:,O] = 0.
  // Writes q (i8 [M,K]), scale = sx (f32 [M]) and outlier_mask (i32 [K], 1 for k in O). A row
  // holding NaN/±Inf gets sx = NaN and q = 0 and plays no part in choosing O.
  virtual void int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                                  const Tensor& outlier_mask) = 0;
  // y[M,N] (x's dtype) = (xq·qᵀ) ⊙ (sx ⊗ sw)/127² + x[:,O]·deq(w[:,O])ᵀ + bias, int32 accumulation,
  // quantization as in int8_quantize_rows (rows with non-finite x come out NaN). bias: x's dtype.
  virtual void int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias,
                           const Tensor& y) = 0;
  // 2:4 sparsity (format in common/sparse24.h; K % 4 == 0 checked by the caller).
  // prune: keep the 2 largest |w| (× norms[k] when norms is given: Wanda) per group
  // of 4, ties to the lower index; out has w's shape and dtype.
  virtual void sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out) = 0;
  // compress: throws llmk::Error naming the first row and group with > 2 non-zeros.
  virtual void sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta) = 0;
  virtual void sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out) = 0;
  // y[M,N] = x[M,K] · W[N,K]ᵀ (+ bias) with W given compressed; x, values, bias, y share a dtype.
  virtual void sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias,
                               const Tensor& y) = 0;
  // Exact attention, never materializing Sq×Sk scores; GQA: q head h reads kv head
  // h / (Hq/Hkv). Dense: q[B,Sq,Hq,D], k/v[B,Sk,Hkv,D], cu_q = cu_k = null, lse f32
  // [B,Hq,Sq]. Packed varlen: q[Tq,Hq,D], k/v[Tk,Hkv,D], cu_q/cu_k i32[nseq+1] offsets
  // (checked here: they live on the device), lse f32 [Hq,Tq]. out is like q; lse may be
  // null; a row that sees no key gives 0 (lse −inf).
  virtual void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* cu_q, const Tensor* cu_k,
                         const AttentionParams& p, const Tensor& out, const Tensor* lse) = 0;
  // Decode over a paged cache: q[T,Hq,D] (one query per sequence, seeing all its keys),
  // caches [numPages, pageSize, Hkv, D], block_table i32[T, maxPages], seq_lens i32[T]
  // (both checked here); split-KV partials are merged by their lse. lse f32 [T,Hq].
  virtual void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                               const Tensor& block_table, const Tensor& seq_lens, const AttentionParams& p,
                               const Tensor& out, const Tensor* lse) = 0;
  // The benchmark's baseline: dense attention (q[B,Sq,Hq,D], k/v[B,Sk,Hkv,D]) with the
  // Sq×Sk scores materialized, built from the device's own fast GEMM pieces.
  virtual void attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,
                               const Tensor& out) = 0;
};

}  // namespace llmk
