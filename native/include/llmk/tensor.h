// Tensor = a contiguous row-major view into a reference-counted device allocation.
// Queued work captures Tensors by value, so storage outlives JS disposal until the
// work that reads or writes it has run (DESIGN §3).
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "llmk/status.h"

namespace llmk {

enum class DType : uint8_t { F32 = 0, F16 = 1, BF16 = 2, I8 = 3, I32 = 4 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I8: return 1;
    case DType::I32: return 4;
  }
  return 0;
}
inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F16: return "f16";
    case DType::BF16: return "bf16";
    case DType::I8: return "i8";
    case DType::I32: return "i32";
  }
  return "?";
}
inline bool dtype_is_float(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

class Backend;

// One device allocation. Freed by its backend when the last reference goes away
// (which may be on the device's worker thread, after queued work finished).
struct Storage {
  Backend* backend = nullptr;
  void* data = nullptr;
  size_t bytes = 0;
  Storage(Backend* b, size_t n);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
};

// A tensor's sizes, held inline: every queued op copies its Tensors into its closure
// and the worker destroys them there, and a std::vector's block would be a malloc on
// the JS thread freed on the worker (why that is slow: Task in core/stream.h).
class Shape {
 public:
  static constexpr int kMaxRank = 8;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims) {
    for (int64_t d : dims) push_back(d);
  }
  size_t size() const { return n_; }
  bool empty() const { return n_ == 0; }
  int64_t& operator[](size_t i) { return d_[i]; }
  int64_t operator[](size_t i) const { return d_[i]; }
  int64_t* begin() { return d_; }
  int64_t* end() { return d_ + n_; }
  const int64_t* begin() const { return d_; }
  const int64_t* end() const { return d_ + n_; }
  int64_t back() const { return d_[n_ - 1]; }
  void push_back(int64_t d) {
    LLMK_CHECK(n_ < kMaxRank, RangeError, "Expected a shape of at most ", kMaxRank, " dims");
    d_[n_++] = d;
  }
  void pop_back() { --n_; }
  bool operator==(const Shape& o) const {
    if (n_ != o.n_) return false;
    for (int i = 0; i < n_; ++i)
      if (d_[i] != o.d_[i]) return false;
    return true;
  }
  bool operator!=(const Shape& o) const { return !(*this == o); }

 private:
  int64_t d_[kMaxRank] = {};
  int n_ = 0;
};

struct Tensor {
  std::shared_ptr<Storage> storage;
  size_t offset = 0;  // bytes into storage
  Shape shape;
  DType dtype = DType::F32;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape[i < 0 ? shape.size() + i : i]; }
  int rank() const { return int(shape.size()); }
  Backend* backend() const { return storage->backend; }
  void* raw() const { return static_cast<char*>(storage->data) + offset; }
  template <class T>
  T* data() const { return reinterpret_cast<T*>(raw()); }
};

std::string shape_str(const Shape& s);

}  // namespace llmk
