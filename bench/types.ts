// The shape of a benchmark entry. Each op family exports one BenchModule from
// bench/ops/<op>.ts; bench/ops.ts (the runner) times every case, reports medians,
// GFLOP/s or GB/s and % of the peak it measures on the machine itself.

export interface BenchWork {
  /** floating-point operations per run (GEMM: 2·M·N·K) */
  flops?: number;
  /** the compute peak flops are reported against: fp32 FMA (default), or the bf16 dot product (for kernels that use VDPBF16PS) */
  flopsPeak?: 'fp32' | 'bf16';
  /** integer operations per run (int8 GEMM: 2·M·N·K) — reported as GOP/s against the VNNI peak */
  intOps?: number;
  /** bytes that must move per run (memory-bound shapes) — reported as GB/s against read bandwidth */
  bytes?: number;
  /** ops enqueued per run (overhead cases) — the runner also reports time per op */
  calls?: number;
}

export interface BenchRun {
  /**
   * Enqueue the work once, then `await sync()`: the runner's synchronize, which also
   * closes the device-time mark opened before run (CaseResult.deviceMs).
   */
  run(sync: () => Promise<void>): Promise<void>;
  dispose(): void;
}

export interface BenchCase {
  /** e.g. 'matmul f32 M=256 K=4096 N=4096' */
  name: string;
  op: string;
  device: string;
  work: BenchWork;
  /** which peak to report against: compute (flops/intOps) or memory bandwidth (bytes) */
  bound: 'compute' | 'memory';
  setup(): Promise<BenchRun>;
  /** optional baseline within our own library to report a speed-up against (a name of another case) */
  baseline?: string;
}

export type BenchModule = (devices: string[], opts: { quick: boolean }) => BenchCase[];

/** One side-by-side result of `npm run bench:peers` (bench/results/peers.json). */
export interface PeerRow {
  group: 'op' | 'decoder' | 'small';
  workload: string;
  /** 'ms' (lower is better) or 'tok/s' (higher is better) */
  metric: 'ms' | 'tok/s';
  ours: number;
  peer: number;
  peerName: string;
  /** ours ÷ peer in speed: > 1 means llm-kernels is faster */
  speedup: number;
  /** ours as a rate, e.g. '804 GOP/s (42% of peak)', and the peer's */
  detail?: string;
  threads: number;
}

/** Next-token probabilities of our forward pass vs llama.cpp on the GGUF export of the same weights. */
export interface CheckRow {
  gguf: 'F32' | 'F16' | 'Q8_0';
  tokens: number;
  maxAbsProbDiff: number;
  topTokenAgrees: boolean;
}
