#include "core/device.h"

#include <mutex>
#include <sstream>

namespace llmk {
namespace {

std::atomic<int64_t> g_external_delta{0};

struct Registry {
  std::vector<std::unique_ptr<Device>> devices;
  CudaStatus cuda;

  Registry() {
    add("cpu", create_cpu_backend());
#ifdef LLMK_WITH_SIMT
    add("simt", create_simt_backend());
#endif
#ifdef LLMK_WITH_CUDA
    cuda.compiled = true;
    std::string reason;
    int n = cuda_device_count(&reason);
    cuda.device_count = n;
    cuda.available = n > 0;
    cuda.reason = n > 0 ? "" : reason;
    for (int i = 0; i < n; ++i) add("cuda:" + std::to_string(i), create_cuda_backend(i));
#else
    cuda.reason = "this binary was built without the CUDA backend (nvcc was not found or LLMK_CUDA=off)";
#endif
  }
  void add(const std::string& name, std::unique_ptr<Backend> b) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->backend = std::move(b);
    d->stream = std::make_unique<Stream>(name);
    devices.push_back(std::move(d));
  }
};

Registry& registry() {
  // Leaked on purpose: worker threads must not be joined from static destructors
  // after Node has torn down the environment.
  static Registry* r = new Registry();
  return *r;
}

}  // namespace

std::vector<Device*> all_devices() {
  std::vector<Device*> out;
  for (auto& d : registry().devices) out.push_back(d.get());
  return out;
}

Device* find_device(const std::string& name) {
  for (auto& d : registry().devices)
    if (d->name == name) return d.get();
  return nullptr;
}

Device* device_of(const Backend* b) {
  for (auto& d : registry().devices)
    if (d->backend.get() == b) return d.get();
  return nullptr;
}

CudaStatus cuda_status() { return registry().cuda; }

int64_t take_external_memory_delta() { return g_external_delta.exchange(0); }

Storage::Storage(Backend* b, size_t n) : backend(b), bytes(n) {
  data = b->alloc(n);
  if (Device* d = device_of(b)) d->live_bytes += int64_t(n);
  g_external_delta += int64_t(n);
}

Storage::~Storage() {
  backend->free(data, bytes);
  if (Device* d = device_of(backend)) d->live_bytes -= int64_t(bytes);
  g_external_delta -= int64_t(bytes);
}

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ']';
  return os.str();
}

}  // namespace llmk
