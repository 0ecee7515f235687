# node-gyp build of the cpu backend, for people who have node-gyp but not cmake.
# (The full build — CUDA backend and simt device — is CMakeLists.txt via cmake-js.)
# Each per-ISA kernel file is compiled three times, as CMake does, into its own
# static library with its own -m flags and namespace.
{
  "variables": {
    "isa_sources": [
      "native/cpu/isa/attention.cpp",
      "native/cpu/isa/gemm.cpp",
      "native/cpu/isa/int8_gemm.cpp",
      "native/cpu/isa/peak.cpp",
      "native/cpu/isa/rope.cpp",
      "native/cpu/isa/sparse24_gemm.cpp"
    ],
    "common_cflags": ["-O3", "-std=c++20", "-fexceptions", "-fvisibility=hidden", "-Wno-unused-parameter"]
  },
  "target_defaults": {
    "include_dirs": ["native", "native/include", "<!(node -p \"require('node-addon-api').include_dir\")"],
    "cflags!": ["-fno-exceptions", "-std=gnu++17"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-fno-rtti"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"]
  },
  "targets": [
    {
      "target_name": "llmk_isa_scalar",
      "type": "static_library",
      "sources": ["<@(isa_sources)"],
      "defines": ["LLMK_ISA_NS=isa_scalar"],
      "cflags_cc": ["<@(common_cflags)", "-mno-avx"]
    },
    {
      "target_name": "llmk_isa_avx2",
      "type": "static_library",
      "sources": ["<@(isa_sources)"],
      "defines": ["LLMK_ISA_NS=isa_avx2"],
      "cflags_cc": ["<@(common_cflags)", "-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "llmk_isa_avx512",
      "type": "static_library",
      "sources": ["<@(isa_sources)"],
      "defines": ["LLMK_ISA_NS=isa_avx512"],
      "cflags_cc": ["<@(common_cflags)", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vnni",
                    "-mavx512bf16", "-mavx2", "-mfma", "-mf16c", "-mprefer-vector-width=512"]
    },
    {
      "target_name": "llm_kernels",
      "dependencies": ["llmk_isa_scalar", "llmk_isa_avx2", "llmk_isa_avx512"],
      "sources": [
        "native/core/device.cpp", "native/core/stream.cpp",
        "native/cpu/attention.cpp", "native/cpu/backend.cpp", "native/cpu/elementwise.cpp", "native/cpu/int8_matmul.cpp",
        "native/cpu/isa.cpp", "native/cpu/matmul.cpp", "native/cpu/rope.cpp", "native/cpu/sparse24.cpp",
        "native/cpu/threadpool.cpp",
        "native/napi/addon.cc", "native/napi/bench.cc", "native/napi/ops_attention.cc", "native/napi/ops_basic.cc",
        "native/napi/ops_int8.cc", "native/napi/ops_rope.cc", "native/napi/ops_sparse24.cc", "native/napi/simt_control.cc",
        "native/napi/tensor_functions.cc", "native/napi/tensor_handle.cc"
      ],
      "cflags_cc": ["<@(common_cflags)"]
    }
  ]
}
