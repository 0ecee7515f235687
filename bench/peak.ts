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
