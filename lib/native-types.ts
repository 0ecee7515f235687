// The one typed contract between TypeScript and the native addon (native/napi/).
// Every function here is implemented in C++; TS callers validate arguments first.

export type DType = 'f32' | 'f16' | 'bf16' | 'i8' | 'i32';

/** Opaque native tensor handle (an ObjectWrap around a ref-counted device buffer). */
export interface NativeTensor {
  dispose(): void;
  isDisposed(): boolean;
}

export interface NativeDeviceInfo {
  name: string;
  kind: 'cpu' | 'simt' | 'cuda';
  detail: string;
  threads: number;
  totalMemory: number;
}

export interface NativeCudaStatus {
  compiled: boolean;
  available: boolean;
  deviceCount: number;
  reason?: string;
}

export interface NativePeaks {
  fp32Gflops: number;
  /** bf16 dot products (VDPBF16PS) where the ISA has them; else the fp32 FMA peak, which bf16 math then runs on */
  bf16Gflops: number;
  int8Gops: number;
  readGBs: number;
  isa: string;
  threads: number;
}

export interface NativeAddon {
  NativeTensor: new () => NativeTensor;
  fromBuffer(
    data: Float32Array | Int8Array | Int32Array | Uint16Array,
    dataDtype: DType,
    shape: number[],
    dtype: DType,
    device: string,
  ): NativeTensor;
  full(shape: number[], dtype: DType, device: string, value: number): NativeTensor;
  /** f32 bytes for float dtypes, raw bytes for i8/i32. */
  toArray(t: NativeTensor): Promise<ArrayBuffer>;
  synchronize(device: string): Promise<void>;
  reshape(t: NativeTensor, shape: number[]): NativeTensor;
  to(t: NativeTensor, device: string): NativeTensor;
  cast(t: NativeTensor, dtype: DType): NativeTensor;
  devices(): NativeDeviceInfo[];
  cudaStatus(): NativeCudaStatus;
  memory(): { tensors: number; bytes: Record<string, number> };
  /** Test hook: force the cpu ISA for later ops; returns the ISA in effect (clamped to the CPU). */
  setCpuIsa(isa: 'avx512' | 'avx2' | 'scalar'): string;
  /** Test hook (simt builds only): set and/or read the simt thread schedule. */
  simtSchedule?(schedule?: 'forward' | 'reverse' | 'random'): string;
  /** test hook: times the host has waited for the simt stream since start-up */
  simtHostSyncs?(): number;
  /** Test hook (simt builds only): run an emulator self-test kernel on typed-array buffers. */
  simtSelfTest?(name: string, buffers: ArrayBufferView[], arg0?: number, arg1?: number): Promise<void>;

  /** Peak fp32 FMA, int8 dot-product and DRAM read rates of the cpu device (all pool threads, current ISA). */
  /** readOnly: only the streaming-read probe (the compute peaks are 0) */
  measurePeaks(readOnly?: boolean): Promise<NativePeaks>;
  /**
   * Benchmarks: a mark the device records when its stream reaches it (enqueued like an
   * op). gated: the device's worker waits at it (up to 2 s) until releaseMark, so the
   * ops enqueued meanwhile are issued back to back.
   */
  markTime(device: string, gated?: boolean): NativeTimeMark;
  releaseMark(mark: NativeTimeMark): void;
  /** The device's time in ms from mark a to mark b; throws until a sync has covered both. */
  elapsedMs(a: NativeTimeMark, b: NativeTimeMark): number;

  matmul(x: NativeTensor, w: NativeTensor, bias: NativeTensor | null): NativeTensor;
  binary(op: 'add' | 'mul', a: NativeTensor, b: NativeTensor): NativeTensor;
  rmsNorm(x: NativeTensor, w: NativeTensor, eps: number): NativeTensor;
  siluMul(gate: NativeTensor, up: NativeTensor): NativeTensor;
  embedding(table: NativeTensor, ids: NativeTensor): NativeTensor;
  softmax(x: NativeTensor): NativeTensor;
  argmax(x: NativeTensor): NativeTensor;
  rope(q: NativeTensor, k: NativeTensor | null, positions: NativeTensor, opts: object): void;
  ropeCache(
    q: NativeTensor, k: NativeTensor, v: NativeTensor, positions: NativeTensor, slots: NativeTensor,
    kCache: NativeTensor, vCache: NativeTensor, opts: object,
  ): void;
  kvCacheWrite(k: NativeTensor, v: NativeTensor, slots: NativeTensor, kCache: NativeTensor, vCache: NativeTensor): void;
  /** w[N,K] -> [q i8 [N,K], scale f32 [N], rowsum i32 [N]] */
  int8QuantizeWeight(w: NativeTensor): [NativeTensor, NativeTensor, NativeTensor];
  /** x[M,K] -> [q i8 [M,K], scale f32 [M], outlier mask i32 [K]] */
  int8QuantizeRows(x: NativeTensor, threshold: number): [NativeTensor, NativeTensor, NativeTensor];
  int8Matmul(
    x: NativeTensor, q: NativeTensor, scale: NativeTensor, rowsum: NativeTensor, bias: NativeTensor | null,
    threshold: number,
  ): NativeTensor;
  sparse24Prune(w: NativeTensor, norms: NativeTensor | null): NativeTensor;
  /** [values [N, K/2], meta i32 [N, ceil(K/32)]] */
  sparse24Compress(w: NativeTensor): [NativeTensor, NativeTensor];
  sparse24Decompress(values: NativeTensor, meta: NativeTensor, K: number): NativeTensor;
  sparse24Matmul(x: NativeTensor, values: NativeTensor, meta: NativeTensor, bias: NativeTensor | null): NativeTensor;
  /** [out, lse | null]; cuQ/cuK both null (dense [B,S,H,D]) or both i32 offsets (packed [T,H,D]). */
  attention(
    q: NativeTensor, k: NativeTensor, v: NativeTensor, cuQ: NativeTensor | null, cuK: NativeTensor | null,
    opts: { causal?: boolean; scale?: number; returnLse?: boolean },
  ): [NativeTensor, NativeTensor | null];
  pagedAttention(
    q: NativeTensor, kCache: NativeTensor, vCache: NativeTensor, blockTable: NativeTensor, seqLens: NativeTensor,
    opts: { scale?: number; returnLse?: boolean; numSplits?: number },
  ): [NativeTensor, NativeTensor | null];
  /** Bench baseline: materialized-scores attention (cpu device only). */
  attentionNaive(q: NativeTensor, k: NativeTensor, v: NativeTensor, opts: { causal?: boolean; scale?: number }): NativeTensor;
}

/** An opaque stream mark from markTime(). */
export type NativeTimeMark = { readonly __timeMark: unique symbol };
