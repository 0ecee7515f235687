// The cpu device: host memory, ops from cpu/*.cpp on the persistent thread pool.
#include <cstdlib>
#include <mutex>
#include <unordered_map>
#include <vector>
#include <cstring>
#include <new>

#include "core/device.h"
#include "cpu/isa.h"
#include "cpu/ops.h"
#include "cpu/threadpool.h"

namespace llmk {
namespace {

class CpuBackend final : public Backend {
  // Freed blocks are kept for reuse, whatever their size: glibc serves large ones with
  // fresh mmaps and trims its heap when a freed chunk sits at the top, and the page
  // faults of touching new memory (expensive in a VM) cost more than most ops on it —
  // a decode step's ~70 small outputs paid them on every token. Sizes of 256 KiB and
  // up are rounded to 64 KiB, smaller ones to 64 bytes, so an op's output finds the
  // block its last call freed.
  static constexpr size_t kRoundMin = 256 << 10, kCacheMax = size_t(1) << 30;
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void*>> cache_;
  size_t cached_ = 0;
  // 64-byte alignment (a cache line, a zmm register) and 64 bytes of slack after the
  // end so SIMD kernels may read (never write) a little past a buffer (the int8
  // outlier gathers load 4 bytes at the last column).
  static size_t rounded(size_t bytes) {
    size_t n = (bytes + 63) / 64 * 64 + 64;
    if (n >= kRoundMin) n = (n + 65535) & ~size_t(65535);
    return n;
  }

 public:
  DeviceInfo info() const override {
    DeviceInfo d;
    d.name = "cpu";
    d.kind = "cpu";
    d.detail = cpu::isa_name(cpu::isa());
    d.threads = cpu_pool().size();
    return d;
  }
  void* alloc(size_t bytes) override {
    const size_t n = rounded(bytes);
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = cache_.find(n);
      if (it != cache_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= n;
        return p;
      }
    }
    void* p = nullptr;
    if (posix_memalign(&p, 64, n) != 0 || !p) fail(ErrorKind::RangeError, "cpu: out of memory allocating ", bytes, " bytes");
    return p;
  }
  void free(void* p, size_t bytes) noexcept override {
    const size_t n = rounded(bytes);
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (cached_ + n <= kCacheMax) {
        cache_[n].push_back(p);
        cached_ += n;
        return;
      }
    }
    std::free(p);
  }
  bool host_accessible() const override { return true; }
  void copy_from_host(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy_to_host(void* dst, const void* src, size_t n) override { std::memcpy(dst, src, n); }
  void copy_device(void* dst, const void* src, size_t n) override { std::memmove(dst, src, n); }
  void synchronize() override {}

  void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y) override {
    cpu::matmul(x, w, bias, y);
  }
  void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y) override { cpu::binary(op, a, b, y); }
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y) override {
    cpu::rms_norm(x, w, eps, y);
  }
  void silu_mul(const Tensor& g, const Tensor& u, const Tensor& y) override { cpu::silu_mul(g, u, y); }
  void embedding(const Tensor& t, const Tensor& ids, const Tensor& y) override { cpu::embedding(t, ids, y); }
  void softmax(const Tensor& x, const Tensor& y) override { cpu::softmax(x, y); }
  void argmax(const Tensor& x, const Tensor& y) override { cpu::argmax(x, y); }
  void cast(const Tensor& x, const Tensor& y) override { cpu::cast(x, y); }
  void fill(const Tensor& y, double v) override { cpu::fill(y, v); }
  void rope(const Tensor& q, const Tensor* k, const Tensor& pos, const RopeConfig& c, const RopeTable& t,
            const KvCacheWrite* cache) override {
    cpu::rope(q, k, pos, c, t, cache);
  }
  void kv_cache_write(const Tensor& k, const KvCacheWrite& cache) override { cpu::kv_cache_write(k, cache); }
  void int8_quantize_weight(const Tensor& w, const Int8Weight& out) override { cpu::int8_quantize_weight(w, out); }
  void int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                          const Tensor& outlier_mask) override {
    cpu::int8_quantize_rows(x, threshold, q, scale, outlier_mask);
  }
  void int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias,
                   const Tensor& y) override {
    cpu::int8_matmul(x, w, threshold, bias, y);
  }
  void sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out) override {
    cpu::sparse24_prune(w, norms, out);
  }
  void sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta) override {
    cpu::sparse24_compress(w, values, meta);
  }
  void sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out) override {
    cpu::sparse24_decompress(values, meta, out);
  }
  void sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias,
                       const Tensor& y) override {
    cpu::sparse24_matmul(x, values, meta, bias, y);
  }
  void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* cu_q, const Tensor* cu_k,
                 const AttentionParams& p, const Tensor& out, const Tensor* lse) override {
    cpu::attention(q, k, v, cu_q, cu_k, p, out, lse);
  }
  void paged_attention(const Tensor& q, const Tensor& kc, const Tensor& vc, const Tensor& bt, const Tensor& sl,
                       const AttentionParams& p, const Tensor& out, const Tensor* lse) override {
    cpu::paged_attention(q, kc, vc, bt, sl, p, out, lse);
  }
  void attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,
                       const Tensor& out) override {
    cpu::attention_naive(q, k, v, p, out);
  }
};

}  // namespace

std::unique_ptr<Backend> create_cpu_backend() { return std::make_unique<CpuBackend>(); }

}  // namespace llmk
