// CPU op entry points (one .cpp per op family). Called by the cpu backend on the
// device worker; they spread work over cpu_pool().
#pragma once
#include "llmk/backend.h"

namespace llmk::cpu {

void matmul(const Tensor& x, const Tensor& w, const Tensor* bias, const Tensor& y);
void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& y);
void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& y);
void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& y);
void embedding(const Tensor& table, const Tensor& ids, const Tensor& y);
void softmax(const Tensor& x, const Tensor& y);
void argmax(const Tensor& x, const Tensor& y);
void cast(const Tensor& x, const Tensor& y);
void fill(const Tensor& y, double value);
void rope(const Tensor& q, const Tensor* k, const Tensor& positions, const RopeConfig& cfg, const RopeTable& table,
          const KvCacheWrite* cache);
void kv_cache_write(const Tensor& k, const KvCacheWrite& cache);
void int8_quantize_weight(const Tensor& w, const Int8Weight& out);
void int8_quantize_rows(const Tensor& x, float threshold, const Tensor& q, const Tensor& scale,
                        const Tensor& outlier_mask);
void int8_matmul(const Tensor& x, const Int8Weight& w, float threshold, const Tensor* bias, const Tensor& y);
void sparse24_prune(const Tensor& w, const Tensor* norms, const Tensor& out);
void sparse24_compress(const Tensor& w, const Tensor& values, const Tensor& meta);
void sparse24_decompress(const Tensor& values, const Tensor& meta, const Tensor& out);
void sparse24_matmul(const Tensor& x, const Tensor& values, const Tensor& meta, const Tensor* bias, const Tensor& y);
void attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor* cu_q, const Tensor* cu_k,
               const AttentionParams& p, const Tensor& out, const Tensor* lse);
void paged_attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& block_table,
                     const Tensor& seq_lens, const AttentionParams& p, const Tensor& out, const Tensor* lse);
// Bench baseline: dense attention with the whole score matrix of each task materialized.
void attention_naive(const Tensor& q, const Tensor& k, const Tensor& v, const AttentionParams& p, const Tensor& out);

}  // namespace llmk::cpu
