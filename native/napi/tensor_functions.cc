// Tensor creation, transfer and inspection bindings.
#include <cstring>
#include <future>

#include "common/half.h"
#include "cpu/isa.h"
#include "napi/tensor_handle.h"

namespace llmk::napi {
namespace {

DType typed_array_dtype(const Napi::TypedArray& a) {
  switch (a.TypedArrayType()) {
    case napi_float32_array: return DType::F32;
    case napi_int8_array: return DType::I8;
    case napi_int32_array: return DType::I32;
    case napi_uint16_array: return DType::F16;  // raw f16 bits (bf16 when the caller says so)
    default:
      fail(ErrorKind::TypeError,
           "Expected a Float32Array, Int8Array, Int32Array or Uint16Array (raw f16/bf16 bits) for data");
  }
}

// fromBuffer(data: TypedArray, srcDtype, shape, dtype, device): copies `data`
// (elements of srcDtype) into a new tensor of `dtype`, converting on the device.
Napi::Value FromBuffer(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    LLMK_CHECK(info[0].IsTypedArray(), TypeError, "Expected a typed array for data");
    Napi::TypedArray arr = info[0].As<Napi::TypedArray>();
    DType src = parse_dtype(info[1], "data dtype");
    LLMK_CHECK(dtype_size(src) == dtype_size(typed_array_dtype(arr)), TypeError,
               "data element size does not match its dtype ", dtype_name(src));
    auto shape = parse_shape(info[2], "shape");
    DType dst = parse_dtype(info[3], "dtype");
    Device* dev = parse_device(info[4], "device");
    Tensor staged = make_tensor(dev, shape, src, /*poison=*/false);
    LLMK_CHECK(int64_t(arr.ElementLength()) == staged.numel(), RangeError, "Expected ", staged.numel(),
               " elements for shape ", shape_str(shape), " but data has ", arr.ElementLength());
    const char* bytes = static_cast<const char*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
    Backend* be = dev->backend.get();
    if (be->host_accessible()) {
      // The storage is brand new, so no queued work can touch it yet.
      std::memcpy(staged.raw(), bytes, staged.nbytes());
    } else {
      auto host = std::make_shared<std::vector<char>>(bytes, bytes + staged.nbytes());
      enqueue(dev, [staged, host, be] { be->copy_from_host(staged.raw(), host->data(), host->size()); });
    }
    if (src == dst) return TensorHandle::New(env, staged, dev);
    Tensor out = make_tensor(dev, shape, dst);
    enqueue(dev, [staged, out, be] { be->cast(staged, out); });
    return TensorHandle::New(env, out, dev);
  });
}

// full(shape, dtype, device, value)
Napi::Value Full(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    auto shape = parse_shape(info[0], "shape");
    DType dt = parse_dtype(info[1], "dtype");
    Device* dev = parse_device(info[2], "device");
    const double v = parse_number(info[3], "value");
    Tensor t = make_tensor(dev, shape, dt);
    Backend* be = dev->backend.get();
    enqueue(dev, [t, be, v] { be->fill(t, v); });
    return TensorHandle::New(info.Env(), t, dev);
  });
}

// toArray(t): Promise<ArrayBuffer> — f32 for float dtypes, raw i8 / i32 otherwise.
Napi::Value ToArray(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    TensorHandle* h = unwrap(info[0], "tensor");
    Tensor t = h->tensor;
    Device* dev = h->device;
    const bool widen = t.dtype == DType::F16 || t.dtype == DType::BF16;
    const size_t out_bytes = widen ? size_t(t.numel()) * 4 : t.nbytes();
    // Allocated now, on the JS thread; the worker fills it before the promise settles,
    // and nothing else can see it until then.
    Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(env, out_bytes);
    auto ref = std::make_shared<Napi::Reference<Napi::ArrayBuffer>>(Napi::Persistent(ab));
    char* dst = static_cast<char*>(ab.Data());
    Backend* be = dev->backend.get();
    enqueue(dev, [t, dst, widen, be] {
      if (!widen) {
        be->copy_to_host(dst, t.raw(), t.nbytes());
        return;
      }
      std::vector<uint16_t> tmp(size_t(t.numel()));
      be->copy_to_host(tmp.data(), t.raw(), t.nbytes());
      float* f = reinterpret_cast<float*>(dst);
      if (t.dtype == DType::F16)
        for (size_t i = 0; i < tmp.size(); ++i) f[i] = f16_to_f32(tmp[i]);
      else
        for (size_t i = 0; i < tmp.size(); ++i) f[i] = bf16_to_f32(tmp[i]);
    });
    return sync_promise(env, dev, [ref](Napi::Env) -> Napi::Value {
      Napi::Value v = ref->Value();
      ref->Reset();
      return v;
    });
  });
}

Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Device* dev = parse_device(info[0], "device");
    Backend* be = dev->backend.get();
    enqueue(dev, [be] { be->synchronize(); });
    return sync_promise(info.Env(), dev, nullptr);
  });
}

// reshape(t, shape): a new handle on the same storage.
Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* h = unwrap(info[0], "tensor");
    auto shape = parse_shape(info[1], "shape");
    Tensor t = h->tensor;
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    LLMK_CHECK(n == t.numel(), RangeError, "Expected a shape with ", t.numel(), " elements to reshape ",
               shape_str(t.shape), " but received ", shape_str(shape), " (", n, " elements)");
    t.shape = shape;
    return TensorHandle::New(info.Env(), t, h->device);
  });
}

// to(t, device): a copy on another device (through host memory between devices).
Napi::Value To(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* h = unwrap(info[0], "tensor");
    Device* dst = parse_device(info[1], "device");
    Device* src = h->device;
    Tensor in = h->tensor;
    Tensor out = make_tensor(dst, in.shape, in.dtype);
    if (dst == src) {
      Backend* be = src->backend.get();
      enqueue(src, [in, out, be] { be->copy_device(out.raw(), in.raw(), in.nbytes()); });
    } else {
      // Download on the source stream, then upload on the destination stream; the
      // staging buffer is handed over through a future so order holds on both sides.
      auto staging = std::make_shared<std::vector<char>>(in.nbytes());
      auto ready = std::make_shared<std::promise<void>>();
      auto fut = std::make_shared<std::shared_future<void>>(ready->get_future().share());
      Backend* sb = src->backend.get();
      Backend* db = dst->backend.get();
      src->stream->enqueue([in, staging, ready, sb] {
        try {
          sb->copy_to_host(staging->data(), in.raw(), in.nbytes());
          ready->set_value();
        } catch (...) {
          ready->set_exception(std::current_exception());
          throw;
        }
      });
      dst->stream->enqueue([out, staging, fut, db] {
        fut->get();  // rethrows the source-side failure on this device too
        db->copy_from_host(out.raw(), staging->data(), staging->size());
      });
    }
    return TensorHandle::New(info.Env(), out, dst);
  });
}

Napi::Value Cast(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    TensorHandle* h = unwrap(info[0], "tensor");
    DType dt = parse_dtype(info[1], "dtype");
    Tensor in = h->tensor;
    Tensor out = make_tensor(h->device, in.shape, dt);
    Backend* be = h->device->backend.get();
    enqueue(h->device, [in, out, be] { be->cast(in, out); });
    return TensorHandle::New(info.Env(), out, h->device);
  });
}

Napi::Value Devices(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    auto devs = all_devices();
    Napi::Array out = Napi::Array::New(env, devs.size());
    for (size_t i = 0; i < devs.size(); ++i) {
      DeviceInfo d = devs[i]->backend->info();
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", devs[i]->name);
      o.Set("kind", d.kind);
      o.Set("detail", d.detail);
      o.Set("threads", d.threads);
      o.Set("totalMemory", double(d.total_memory));
      out.Set(uint32_t(i), o);
    }
    return out;
  });
}

Napi::Value CudaStatusFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CudaStatus s = cuda_status();
  Napi::Object o = Napi::Object::New(env);
  o.Set("compiled", s.compiled);
  o.Set("available", s.available);
  o.Set("deviceCount", s.device_count);
  if (!s.available) o.Set("reason", s.reason);
  return o;
}

Napi::Value Memory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env), bytes = Napi::Object::New(env);
  int64_t tensors = 0;
  for (Device* d : all_devices()) {
    tensors += d->live_tensors.load();
    bytes.Set(d->name, double(d->live_bytes.load()));
  }
  o.Set("tensors", double(tensors));
  o.Set("bytes", bytes);
  return o;
}

// setCpuIsa(name): test hook — forces the cpu ISA for later ops (waits for queued
// cpu work first so no op sees a change half-way); returns the ISA in effect.
Napi::Value SetCpuIsa(const Napi::CallbackInfo& info) {
  return guarded(info, [&]() -> Napi::Value {
    LLMK_CHECK(info[0].IsString(), TypeError, "Expected 'avx512', 'avx2' or 'scalar' for isa");
    const std::string s = info[0].As<Napi::String>();
    cpu::Isa want;
    if (s == "avx512" || s == "avx512vnni") want = cpu::Isa::Avx512;
    else if (s == "avx2") want = cpu::Isa::Avx2;
    else if (s == "scalar") want = cpu::Isa::Scalar;
    else fail(ErrorKind::TypeError, "Expected 'avx512', 'avx2' or 'scalar' for isa but received '", s, "'");
    Device* cpu = find_device("cpu");
    cpu->stream->drain();
    return Napi::String::New(info.Env(), cpu::isa_name(cpu::set_isa(want)));
  });
}

}  // namespace

void init_tensor_functions(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeTensor", TensorHandle::Init(env));
  exports.Set("fromBuffer", Napi::Function::New(env, FromBuffer));
  exports.Set("full", Napi::Function::New(env, Full));
  exports.Set("toArray", Napi::Function::New(env, ToArray));
  exports.Set("synchronize", Napi::Function::New(env, Synchronize));
  exports.Set("reshape", Napi::Function::New(env, Reshape));
  exports.Set("to", Napi::Function::New(env, To));
  exports.Set("cast", Napi::Function::New(env, Cast));
  exports.Set("devices", Napi::Function::New(env, Devices));
  exports.Set("cudaStatus", Napi::Function::New(env, CudaStatusFn));
  exports.Set("memory", Napi::Function::New(env, Memory));
  exports.Set("setCpuIsa", Napi::Function::New(env, SetCpuIsa));
}

}  // namespace llmk::napi
