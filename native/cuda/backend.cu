// The CUDA backend: one class, compiled twice — by nvcc for the cuda:N devices and by
// the host compiler under LLMK_SIMT for the simt device (where the cuda* runtime calls
// land in the emulator's fake runtime). Memory comes from the stream-ordered pool
// (cudaMallocAsync / cudaFreeAsync on the device's stream); every call and launch is
// checked and failures become llmk::Error, reported at the device's next sync point.
// Kernels that validate device-resident input (ids, positions, slots, 2:4 groups,
// finite weights) flag the first bad index in an error slot of their own; the slots
// are read at the next sync the host makes anyway (synchronize, a download), so a
// decode step pays no extra round trip for them.
// check:cuda expects: none (no kernels here)
#include <algorithm>
#include <climits>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/device.h"
#include "kernels.h"

namespace llmk::LLMK_DEVICE_NS {
namespace {

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(int ordinal) : ordinal_(ordinal) {
    LLMK_CUDA_CHECK(cudaSetDevice(ordinal_));
    cudaDeviceProp prop{};
    LLMK_CUDA_CHECK(cudaGetDeviceProperties(&prop, ordinal_));
    name_ = prop.name;
    sms_ = prop.multiProcessorCount;
    total_ = prop.totalGlobalMem;
    cc_ = prop.major * 10 + prop.minor;
    LLMK_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    // Keep freed blocks in the pool instead of returning them to the driver at every
    // sync: decode allocates the same activation sizes every step.
    cudaMemPool_t pool;
    if (cudaDeviceGetDefaultMemPool(&pool, ordinal_) == cudaSuccess) {
      uint64_t threshold = UINT64_MAX;
      cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold);
    }
    LLMK_CUDA_CHECK(cudaMalloc(reinterpret_cast<void**>(&error_), kErrorSlots * sizeof(int)));
    LLMK_CUDA_CHECK(cudaMemsetAsync(error_, 0x7f, kErrorSlots * sizeof(int), stream_));
    LLMK_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }
  // The process-wide device registry never destroys backends (see core/device.cpp).
  ~CudaBackend() override = default;

  DeviceInfo info() const override {
    DeviceInfo d;
#if defined(LLMK_SIMT)
    d.name = "simt";
    d.kind = "simt";
    d.detail = name_ + " (CUDA kernels under emulation)";
#else
    d.name = "cuda:" + std::to_string(ordinal_);
    d.kind = "cuda";
    d.detail = name_ + ", sm_" + std::to_string(cc_) + ", " + std::to_string(sms_) + " SMs";
#endif
    d.threads = sms_;
    d.total_memory = total_;
    return d;
  }

  // Events on the device's stream: the GPU's own time between two marks (under simt,
  // the emulator's clock when the worker reaches the mark).
  class EventMark final : public TimeMark {
   public:
    EventMark(int ordinal, cudaStream_t st) : st_(st) {
      LLMK_CUDA_CHECK(cudaSetDevice(ordinal));
      LLMK_CUDA_CHECK(cudaEventCreate(&ev_));
    }
    ~EventMark() override { cudaEventDestroy(ev_); }

   protected:
    void stamp() override { LLMK_CUDA_CHECK(cudaEventRecord(ev_, st_)); }
    double elapsed_ms(const TimeMark& earlier) const override {
      float ms = 0.f;
      const cudaError_t e = cudaEventElapsedTime(&ms, static_cast<const EventMark&>(earlier).ev_, ev_);
      if (e == cudaErrorNotReady) {  // recorded, but the GPU has not reached it yet
        cudaGetLastError();
        not_reached();
      }
      LLMK_CUDA_CHECK(e);
      return ms;
    }

   private:
    cudaStream_t st_;
    cudaEvent_t ev_ = nullptr;
  };
  std::unique_ptr<TimeMark> time_mark() override { return std::make_unique<EventMark>(ordinal_, stream_); }

  void* alloc(size_t bytes) override {
    LLMK_CUDA_CHECK(cudaSetDevice(ordinal_));
    void* p = nullptr;
    const cudaError_t e = cudaMallocAsync(&p, bytes ? bytes : 1, stream_);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky-free error state
      fail(ErrorKind::RangeError, device_name(), ": out of device memory allocating ", bytes, " bytes (",
           cudaGetErrorString(e), ")");
    }
    return p;
  }
  void free(void* p, size_t) noexcept override {
    cudaSetDevice(ordinal_);
    cudaFreeAsync(p, stream_);
  }
  bool host_accessible() const override { return false; }

  // The host buffer of an upload belongs to the caller's closure and may be freed as
  // soon as this returns. Small uploads (a decode step's ids, positions, tables) are
  // copied into a host buffer the backend keeps until the next sync, so the host does
  // not wait for them; large ones (weights) wait rather than hold a second copy.
  void copy_from_host(void* dst, const void* src, size_t n) override {
    if (!n) return;
    if (n <= kStagedUploadMax && staged_bytes_ + n <= kStagedTotalMax) {
      staged_.emplace_back(new char[n]);
      std::memcpy(staged_.back().get(), src, n);
      staged_bytes_ += n;
      LLMK_CUDA_CHECK(cudaMemcpyAsync(dst, staged_.back().get(), n, cudaMemcpyHostToDevice, stream_));
      return;
    }
    LLMK_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyHostToDevice, stream_));
    sync_and_check();
  }
  void copy_to_host(void* dst, const void* src, size_t n) override {
    if (!n) return;
    LLMK_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToHost, stream_));
    sync_and_check();
  }
  void copy_device(void* dst, const void* src, size_t n) override {
    if (n) LLMK_CUDA_CHECK(cudaMemcpyAsync(dst, src, n, cudaMemcpyDeviceToDevice, stream_));
  }
  void synchronize() override { sync_and_check(); }

  void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) override {
    launch_matmul(x, w, bias, y, stream_);
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y) override {
    launch_binary(op, a, b, y, stream_);
  }
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) override {
    launch_rms_norm(x, w, eps, y, stream_);
  }
  void silu_mul(const Tensor& g, const Tensor& u, const Tensor& y) override { launch_silu_mul(g, u, y, stream_); }
  void embedding(const Tensor& table, const Tensor& ids, const Tensor& y) override {
    launch_embedding(table, ids, y, error_slot([this, ids, vocab = table.dim(0)](int t) {
                       const int32_t id = read_i32(ids, t);
                       fail(ErrorKind::RangeError, "embedding: expected ids in [0, ", vocab, ") but ids[", t, "] = ", id);
                     }),
                     stream_);
  }
  void softmax(const Tensor& x, const Tensor& y) override { launch_softmax(x, y, stream_); }
  void argmax(const Tensor& x, const Tensor& y) override { launch_argmax(x, y, stream_); }
  void cast(const Tensor& x, const Tensor& y) override { launch_cast(x, y, stream_); }
  void fill(const Tensor& y, double v) override { launch_fill(y, v, stream_); }

  void rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg, const RopeTable& table,
            const KvCacheWrite* cache) override {
    // The slot tensor and the cache size are kept for the message (cache is null for plain rope).
    Tensor slots = cache ? cache->slots : Tensor{};
    const int64_t n_slots = cache ? cache->k_cache.dim(0) * cache->k_cache.dim(1) : 0;
    launch_rope(q, k, positions, cfg, table, cache, error_slot([this, positions, slots, n_slots](int t) {
                  const int32_t pos = read_i32(positions, t);
                  if (pos < 0 || !n_slots)
                    fail(ErrorKind::RangeError, "rope: expected non-negative positions but positions[", t, "] = ", pos);
                  fail(ErrorKind::RangeError, "rope: expected cache slots in [0, ", n_slots, ") but slots[", t, "] = ",
                       read_i32(slots, t));
                }),
                stream_);
  }

  void kv_cache_write(const Tensor& k, const KvCacheWrite& cache) override {
    launch_kv_cache_write(k, cache, error_slot([this, slots = cache.slots, n = cache.k_cache.dim(0) * cache.k_cache.dim(1)](int t) {
                            fail(ErrorKind::RangeError, "writeKvCache: expected cache slots in [0, ", n, ") but slots[", t,
                                 "] = ", read_i32(slots, t));
                          }),
                          stream_);
  }

  void int8_quantize_weight(const Tensor& w, const Int8Weight& out) override {
    launch_int8_quantize_weight(w, out, error_slot([](int n) {
                                  fail(ErrorKind::RangeError, "int8.quantizeWeight: expected finite values in w but row ", n,
                                       " holds NaN or infinite values");
                                }),
                                stream_);
  }
  void int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                          const Tensor& outlier_mask) override {
    launch_int8_quantize_rows(x, threshold, q, scale, outlier_mask, stream_);
  }
  void int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias,
                   const Tensor& y) override {
    launch_int8_matmul(x, w, threshold, bias, y, stream_);
  }

  void sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out) override {
    launch_sparse24_prune(w, norms, out, stream_);
  }
  void sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta) override {
    launch_sparse24_compress(w, values, meta, error_slot([G = w.dim(1) / 4](int e) {
                               const int64_t flat = e / 2, n = flat / G, g = flat % G;
                               fail(ErrorKind::RangeError, "sparse24.compress: expected at most 2 non-zeros in every group of 4 but row ",
                                    n, " group ", g, " (columns ", 4 * g, "..", 4 * g + 3, ") has ", 3 + e % 2);
                             }),
                             stream_);
  }
  void sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out) override {
    launch_sparse24_decompress(values, meta, out, error_slot([G = out.dim(1) / 4](int e) {
                                 fail(ErrorKind::RangeError, "sparse24.decompress: illegal metadata nibble at row ", e / G,
                                      " group ", e % G);
                               }),
                               stream_);
  }
  void sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias,
                       const Tensor& y) override {
    launch_sparse24_matmul(x, values, meta, bias, y, stream_);
  }

  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* cu_q, const Tensor* cu_k,
                 const AttentionParams& p, const Tensor& out, const Tensor* lse) override {
    int batch, max_sq;
    if (cu_q) {
      // The offsets live on the device: copy them once to check them and size the grid.
      batch = int(cu_q->dim(0)) - 1;
      const std::vector<int32_t> oq = download<int32_t>(*cu_q), ok = download<int32_t>(*cu_k);
      check_offsets(oq, q.dim(0), "cuSeqlensQ");
      check_offsets(ok, k.dim(0), "cuSeqlensK");
      max_sq = 0;
      for (int b = 0; b < batch; ++b) max_sq = std::max(max_sq, oq[size_t(b) + 1] - oq[size_t(b)]);
    } else {
      batch = int(q.dim(0));
      max_sq = int(q.dim(1));
    }
    launch_attention(q, k, v, cu_q ? cu_q->data<int32_t>() : nullptr, cu_k ? cu_k->data<int32_t>() : nullptr, batch,
                     max_sq, p, out, lse, stream_);
  }

  void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                       const Tensor& seq_lens, const AttentionParams& p, const Tensor& out, const Tensor* lse) override {
    // Page indices and lengths are checked by the kernel (error slot), so a decode step
    // never copies the tables back. Splits are sized by the table's capacity.
    const int64_t T = q.dim(0), num_pages = k_cache.dim(0), page_size = k_cache.dim(1), max_pages = block_table.dim(1);
    const int64_t Hkv = k_cache.dim(2), blocks = std::max<int64_t>(1, T * Hkv), cap = max_pages * page_size;
    // Splits: enough blocks for four per SM (a block keeps 4 warps × 2 steps of 4 rows in
    // flight; an H200 needs ~4 MB in flight across its 132 SMs to reach its bandwidth),
    // never below 64 keys a split (one step of each warp, then the prefetched one). With
    // 2 per SM and ≥ 256 keys, a one-token step over Sk = 1024 ran 32 blocks of 16 serial
    // steps each: ~45 µs on an H200 for 4 MB.
    const int64_t span = p.window > 0 ? std::min<int64_t>(cap, p.window) : cap;  // keys a row can see
    const int splits = p.num_splits > 0 ? p.num_splits
                                        : int(std::clamp<int64_t>((4 * sms_ + blocks - 1) / blocks, 1, std::max<int64_t>(1, span / 64)));
    const size_t n_o = size_t(T) * splits * size_t(q.dim(1)) * size_t(q.dim(2)), n_l = size_t(T) * splits * size_t(q.dim(1));
    // Prefill chunks among the rows go through the FA tile kernel (f16/bf16, no window):
    // one flag per 64 rows says which tiles it took.
    const bool tiles = q.dtype != DType::F32 && p.window <= 0 && T >= kPagedPrefillRun;
    const size_t n_t = tiles ? size_t((T + 63) / 64) : 0;
    float* ws = static_cast<float*>(alloc((n_o + n_l + n_t) * sizeof(float)));
    int* error = error_slot([this, block_table, seq_lens, num_pages, max_pages, cap](int e) {
      const int64_t t = e / (max_pages + 1), i = e % (max_pages + 1);
      if (i == max_pages)
        fail(ErrorKind::RangeError, "pagedAttention: expected seqLens[", t, "] in [0, ", cap,
             "] (blockTable columns × pageSize) but received ", read_i32(seq_lens, t));
      fail(ErrorKind::RangeError, "pagedAttention: expected page indices in [0, ", num_pages, ") but blockTable[", t, "][", i,
           "] = ", read_i32(block_table, t * max_pages + i));
    });
    try {
      launch_paged_attention(q, k_cache, v_cache, block_table, seq_lens, splits, p.scale, ws, ws + n_o, out, lse, p.window,
                             error, tiles ? reinterpret_cast<int*>(ws + n_o + n_l) : nullptr, stream_);
    } catch (...) {
      free(ws, 0);
      throw;
    }
    free(ws, 0);  // stream-ordered: released after the kernels that use it
  }

  void attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,
                       const Tensor& out) override {
    LLMK_CHECK(q.dtype != DType::F32, TypeError, "the naive attention baseline on ", device_name(),
               " takes f16 or bf16 (tensor cores) but received f32");
    const size_t bytes = attention_naive_workspace(q, k);
    void* ws = alloc(bytes);
    try {
      launch_attention_naive(q, k, v, p, out, ws, stream_);
    } catch (...) {
      free(ws, bytes);
      throw;
    }
    free(ws, bytes);  // stream-ordered: released after the kernels that use it
  }

 private:
  std::string device_name() const { return info().name; }
  template <class T>
  std::vector<T> download(const Tensor& t) {
    std::vector<T> v(size_t(t.numel()));
    copy_to_host(v.data(), t.raw(), t.nbytes());
    return v;
  }
  static void check_offsets(const std::vector<int32_t>& o, int64_t total, const char* name) {
    LLMK_CHECK(o[0] == 0, RangeError, "attention: expected ", name, "[0] = 0 but received ", o[0]);
    for (size_t b = 1; b < o.size(); ++b)
      LLMK_CHECK(o[b] >= o[b - 1], RangeError, "attention: expected non-decreasing ", name, " but ", name, "[", b,
                 "] = ", o[b], " < ", name, "[", b - 1, "] = ", o[b - 1]);
    LLMK_CHECK(o.back() == total, RangeError, "attention: expected ", name, "[", o.size() - 1, "] = ", total,
               " (the packed token count) but received ", o.back());
  }
  // An error slot for the next launch (kNoError = no error; kernels atomicMin the
  // first bad index into it) and what to report if it is set. When every slot is in
  // use, the pending ones are checked first (a sync; a decode step needs ~L + 1).
  int* error_slot(std::function<void(int)> report) {
    if (pending_.size() == size_t(kErrorSlots)) synchronize();
    pending_.push_back(std::move(report));
    return error_ + (pending_.size() - 1);
  }
  // One wait for the stream: the used error slots are read (and re-armed) in the same
  // round trip, staged uploads are released, then the first error in launch order is
  // thrown.
  void sync_and_check() {
    std::vector<int> v(pending_.size());
    std::vector<std::function<void(int)>> checks;
    checks.swap(pending_);
    if (!v.empty()) {
      LLMK_CUDA_CHECK(cudaMemcpyAsync(v.data(), error_, v.size() * sizeof(int), cudaMemcpyDeviceToHost, stream_));
      LLMK_CUDA_CHECK(cudaMemsetAsync(error_, 0x7f, v.size() * sizeof(int), stream_));
    }
    LLMK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    staged_.clear();
    staged_bytes_ = 0;
    for (size_t i = 0; i < v.size(); ++i)
      if (v[i] != kNoError) checks[i](v[i]);
  }
  // One element of an i32 tensor (error messages only).
  int32_t read_i32(const Tensor& t, int64_t i) {
    int32_t x = 0;
    LLMK_CUDA_CHECK(cudaMemcpyAsync(&x, t.data<int32_t>() + i, sizeof(x), cudaMemcpyDeviceToHost, stream_));
    LLMK_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return x;
  }

  int ordinal_;
  std::string name_;
  int sms_ = 0, cc_ = 0;
  size_t total_ = 0;
  cudaStream_t stream_{};
  static constexpr int kErrorSlots = 256;
  int* error_ = nullptr;
  std::vector<std::function<void(int)>> pending_;
  static constexpr size_t kStagedUploadMax = size_t(1) << 20, kStagedTotalMax = size_t(64) << 20;
  std::vector<std::unique_ptr<char[]>> staged_;  // small uploads in flight (until the next sync)
  size_t staged_bytes_ = 0;
};

}  // namespace
}  // namespace llmk::LLMK_DEVICE_NS

namespace llmk {

#if defined(LLMK_SIMT)
std::unique_ptr<Backend> create_simt_backend() { return std::make_unique<simt::CudaBackend>(0); }
#else
int cuda_device_count(std::string* reason) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    *reason = std::string("cudaGetDeviceCount failed: ") + cudaGetErrorString(e);
    return 0;
  }
  if (n == 0) *reason = "no CUDA device found";
  return n;
}
std::unique_ptr<Backend> create_cuda_backend(int ordinal) { return std::make_unique<cuda::CudaBackend>(ordinal); }
#endif

}  // namespace llmk
