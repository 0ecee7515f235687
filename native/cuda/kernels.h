// Launchers of every CUDA op (one .cu per op family), called by backend.cu. They
// enqueue on `stream` and return; kernels that can detect bad device-resident input
// (ids, positions, slots, 2:4 groups) atomicMin an index into *error (kNoError = none).
#pragma once
#include "device.cuh"
#include "llmk/backend.h"

namespace llmk::LLMK_DEVICE_NS {

// An unset error slot (every byte 0x7f, the memset that re-arms the slots).
constexpr int kNoError = 0x7f7f7f7f;

void launch_matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y, cudaStream_t stream);
void launch_binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y, cudaStream_t stream);
void launch_rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y, cudaStream_t stream);
void launch_silu_mul(const Tensor& gate, const Tensor& up, const Tensor& y, cudaStream_t stream);
void launch_embedding(const Tensor& table, const Tensor& ids, const Tensor& y, int* error, cudaStream_t stream);
void launch_softmax(const Tensor& x, const Tensor& y, cudaStream_t stream);
void launch_argmax(const Tensor& x, const Tensor& y, cudaStream_t stream);
void launch_cast(const Tensor& x, const Tensor& y, cudaStream_t stream);
void launch_fill(const Tensor& y, double value, cudaStream_t stream);
void launch_rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg,
                 const RopeTable& table, const KvCacheWrite* cache, int* error, cudaStream_t stream);
void launch_kv_cache_write(const Tensor& k, const KvCacheWrite& cache, int* error, cudaStream_t stream);
void launch_sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out, cudaStream_t stream);
void launch_sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta, int* error,
                              cudaStream_t stream);
void launch_sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out, int* error,
                                cudaStream_t stream);
void launch_int8_quantize_weight(const Tensor& w, const Int8Weight& out, int* error, cudaStream_t stream);
void launch_int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                               const Tensor& outlier_mask, cudaStream_t stream);
void launch_int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias, const Tensor& y,
                        cudaStream_t stream);
void launch_sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias,
                            const Tensor& y, cudaStream_t stream);

// Attention (attention.cu). cu_q_dev/cu_k_dev: device offsets for the packed form or null;
// batch and max_sq come from the host copy the backend validated.
void launch_attention(const Tensor& q, const Tensor& k, const Tensor& v, const int* cu_q_dev, const int* cu_k_dev,
                      int batch, int max_sq, const AttentionParams& p, const Tensor& out, const Tensor* lse,
                      cudaStream_t stream);
// part_o: f32 [T·splits, Hq, D], part_lse: f32 [T·splits, Hq] workspace. tile_done: one
// int per 64 rows, or null: with it (f16/bf16, window 0, T ≥ kPagedPrefillRun), 64-row
// tiles that are one sequence's prefill chunk run on the FA tile kernel over the cache.
constexpr int kPagedPrefillRun = 8;
// The bench baseline (attention_naive.cu): f16/bf16, dense; workspace bytes for q, k.
size_t attention_naive_workspace(const Tensor& q, const Tensor& k);
void launch_attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p,
                            const Tensor& out, void* workspace, cudaStream_t stream);  // fewest rows of a tile taken as a prefill chunk (cpu: kPrefillRun)
void launch_paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                            const Tensor& seq_lens, int splits, float scale, float* part_o, float* part_lse,
                            const Tensor& out, const Tensor* lse, int window, int* error, int* tile_done,
                            cudaStream_t stream);

}  // namespace llmk::LLMK_DEVICE_NS
