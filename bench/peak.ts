// The machine's own peaks, measured by native probes (native/cpu/isa/peak.cpp) on
// every cpu pool thread: fp32 FMA GFLOP/s, int8 dot-product GOP/s, DRAM read GB/s.
import { native } from '../lib/native.js';
import type { NativePeaks } from '../lib/native-types.js';

export type Peaks = NativePeaks;

let cached: Promise<Peaks> | undefined;

/** Measured once per process (about 2 s); later calls reuse the result. */
export function measurePeaks(): Promise<Peaks> {
  cached ??= native().measurePeaks();
  return cached;
}

/**
 * The streaming-read probe alone (about 0.5 s), for memory-bound results: the read
 * bandwidth of a shared VM drifts by up to 1.7× within minutes, so a memory-bound case
 * is also compared with a probe taken right after it.
 */
export async function measureReadGBs(): Promise<number> {
  return (await native().measurePeaks(true)).readGBs;
}
