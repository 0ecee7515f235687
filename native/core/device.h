// The process-wide list of devices: cpu always, simt when built in, cuda:N when a
// driver and device answer. Each device = one backend + one stream (worker thread).
#pragma once
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "core/stream.h"
#include "llmk/backend.h"

namespace llmk {

struct Device {
  std::string name;
  std::unique_ptr<Backend> backend;
  std::unique_ptr<Stream> stream;
  std::atomic<int64_t> live_bytes{0};
  std::atomic<int64_t> live_tensors{0};
};

struct CudaStatus {
  bool compiled = false;  // the binary contains the CUDA backend
  bool available = false;
  std::string reason;     // why not, when unavailable
  int device_count = 0;
};

// Devices are created lazily on first lookup and live until process exit.
std::vector<Device*> all_devices();
// nullptr when the name is unknown or that device is unavailable.
Device* find_device(const std::string& name);
Device* device_of(const Backend* b);
CudaStatus cuda_status();

// Bytes allocated or freed since the last call (for V8's external memory gauge).
int64_t take_external_memory_delta();

// Backend factories (each backend's own file defines its factory).
std::unique_ptr<Backend> create_cpu_backend();
#ifdef LLMK_WITH_SIMT
std::unique_ptr<Backend> create_simt_backend();
#endif
#ifdef LLMK_WITH_CUDA
// Returns the number of usable CUDA devices; on 0 sets *reason.
int cuda_device_count(std::string* reason);
std::unique_ptr<Backend> create_cuda_backend(int ordinal);
#endif

}  // namespace llmk
