// Rotary position embedding: the frequency table (every scaling scheme reduces to a
// per-pair inverse frequency plus one attention factor) and the pair rotation shared
// by every backend.
//
// Precision: the angle pos·inv_freq reaches ~1.3e5 rad at position 131071; in f32
// its absolute error would be ~1e-2 rad. We form it in f64 and reduce it modulo 2π
// in f64 before the f32 sin/cos, so the error stays ~1e-7 at any position.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/half.h"

namespace llmk {

enum class RopeStyle : int { Neox = 0, Gptj = 1 };
enum class RopeScaling : int { None = 0, Linear, Dynamic, Llama3, Yarn };

struct RopeConfig {
  RopeStyle style = RopeStyle::Neox;
  int rotary_dim = 0;  // even, <= D
  double base = 10000.0;
  bool inverse = false;
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;
  double original_max_positions = 0;  // dynamic, llama3, yarn
  double seq_len = 0;                 // dynamic: the current sequence length
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  double beta_fast = 32.0, beta_slow = 1.0;              // yarn
  double attn_factor = -1.0;                             // yarn; < 0: 0.1·ln(factor) + 1
};

// What a kernel needs: inv_freq[rotary_dim / 2] (f64) and a factor multiplying cos
// and sin (YaRN's attention temperature; 1 otherwise).
struct RopeTable {
  std::vector<double> inv_freq;
  double attn_scale = 1.0;
};

inline RopeTable rope_table(const RopeConfig& c) {
  const int half = c.rotary_dim / 2;
  const double rd = c.rotary_dim;
  double base = c.base;
  if (c.scaling == RopeScaling::Dynamic && c.seq_len > c.original_max_positions) {
    // NTK-aware: grow the base so the longest wavelength covers seq_len.
    base *= std::pow(c.factor * c.seq_len / c.original_max_positions - (c.factor - 1.0), rd / (rd - 2.0));
  }
  RopeTable t;
  t.inv_freq.resize(half);
  for (int i = 0; i < half; ++i) t.inv_freq[i] = std::pow(base, -2.0 * i / rd);
  constexpr double kPi = 3.14159265358979323846;
  switch (c.scaling) {
    case RopeScaling::None:
    case RopeScaling::Dynamic: break;
    case RopeScaling::Linear:
      for (double& f : t.inv_freq) f /= c.factor;
      break;
    case RopeScaling::Llama3: {
      // Keep high frequencies, divide low ones by factor, blend linearly between.
      const double low_wavelen = c.original_max_positions / c.low_freq_factor;
      const double high_wavelen = c.original_max_positions / c.high_freq_factor;
      for (double& f : t.inv_freq) {
        const double wavelen = 2 * kPi / f;
        if (wavelen < high_wavelen) continue;
        if (wavelen > low_wavelen) {
          f /= c.factor;
          continue;
        }
        const double smooth = (c.original_max_positions / wavelen - c.low_freq_factor) /
                              (c.high_freq_factor - c.low_freq_factor);
        f = (1 - smooth) * f / c.factor + smooth * f;
      }
      break;
    }
    case RopeScaling::Yarn: {
      // Dimensions whose wavelength fits many times in the original context keep
      // their frequency (extrapolate); long wavelengths are interpolated (÷ factor);
      // a linear ramp between the dims of beta_fast and beta_slow rotations.
      auto corr_dim = [&](double rotations) {
        return rd * std::log(c.original_max_positions / (rotations * 2 * kPi)) / (2 * std::log(c.base));
      };
      double lo = std::floor(corr_dim(c.beta_fast)), hi = std::ceil(corr_dim(c.beta_slow));
      lo = std::max(lo, 0.0);
      hi = std::min(hi, rd - 1);
      if (lo == hi) hi += 0.001;  // avoid a zero-width ramp
      for (int i = 0; i < half; ++i) {
        const double ramp = std::min(1.0, std::max(0.0, (i - lo) / (hi - lo)));
        const double extrapolation_weight = 1.0 - ramp;
        const double f = t.inv_freq[i];
        t.inv_freq[i] = f / c.factor * (1 - extrapolation_weight) + f * extrapolation_weight;
      }
      t.attn_scale = c.attn_factor >= 0 ? c.attn_factor : (c.factor <= 1 ? 1.0 : 0.1 * std::log(c.factor) + 1.0);
      break;
    }
  }
  return t;
}

// sin and cos of pos·inv_freq. The angle is formed in f64 and reduced modulo 2π in
// f64, folded into [-π/2, π/2] (sin(π−x) = sin x, cos(π−x) = −cos x), then Taylor
// series to x¹⁷ / x¹⁶ (truncation error < 1e-11). Plain f64 arithmetic: the CPU
// vectorizes it, and the GPU spends a few f64 FMAs per pair per token instead of
// sincosf's local-memory slow path for large arguments.
LLMK_HD void rope_sincos(int32_t pos, double inv_freq, double* s, double* c) {
  constexpr double kPi = 3.14159265358979323846, kHalfPi = kPi / 2, kTwoPi = 2 * kPi;
  const double a = double(pos) * inv_freq;
  const double r = a - kTwoPi * rint(a / kTwoPi);
  const bool fold = r > kHalfPi || r < -kHalfPi;
  const double x = fold ? (r > 0 ? kPi - r : -kPi - r) : r;
  const double x2 = x * x;
  double ps = 1.0 / 355687428096000.0;  // 1/17!
  ps = ps * x2 - 1.0 / 1307674368000.0;
  ps = ps * x2 + 1.0 / 6227020800.0;
  ps = ps * x2 - 1.0 / 39916800.0;
  ps = ps * x2 + 1.0 / 362880.0;
  ps = ps * x2 - 1.0 / 5040.0;
  ps = ps * x2 + 1.0 / 120.0;
  ps = ps * x2 - 1.0 / 6.0;
  *s = x + x * x2 * ps;
  double pc = 1.0 / 20922789888000.0;  // 1/16!
  pc = pc * x2 - 1.0 / 87178291200.0;
  pc = pc * x2 + 1.0 / 479001600.0;
  pc = pc * x2 - 1.0 / 3628800.0;
  pc = pc * x2 + 1.0 / 40320.0;
  pc = pc * x2 - 1.0 / 720.0;
  pc = pc * x2 + 1.0 / 24.0;
  pc = pc * x2 - 0.5;
  const double cc = 1.0 + x2 * pc;
  *c = fold ? -cc : cc;
}

// Pair (i0, i1) of one head: i1 = i0 + rotary_dim/2 (neox) or i0 + 1 (gptj).
LLMK_HD void rope_pair_index(RopeStyle style, int pair, int rotary_dim, int* i0, int* i1) {
  if (style == RopeStyle::Neox) {
    *i0 = pair;
    *i1 = pair + rotary_dim / 2;
  } else {
    *i0 = 2 * pair;
    *i1 = 2 * pair + 1;
  }
}

}  // namespace llmk
