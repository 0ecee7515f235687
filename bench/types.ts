// The shape of a benchmark entry. Each op family exports one BenchModule from
// bench/ops/<op>.ts; bench/ops.ts (the runner) times every case, reports medians,
// GFLOP/s or GB/s and % of the peak it measures on the machine itself.

export interface BenchWork {
  /** floating-point operations per run (GEMM: 2·M·N·K) */
  flops?: number;
  /** integer operations per run (int8 GEMM: 2·M·N·K) — reported as GOP/s against the VNNI peak */
  intOps?: number;
  /** bytes that must move per run (memory-bound shapes) — reported as GB/s against read bandwidth */
  bytes?: number;
  /** ops enqueued per run (overhead cases) — the runner also reports time per op */
  calls?: number;
}

export interface BenchRun {
  /** Enqueue the work once and wait for it (await synchronize(device)). */
  run(): Promise<void>;
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
