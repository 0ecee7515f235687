// Shared test utilities: the device list every op test runs over, seeded random
// data, and error metrics against fp64 references.
import { devices } from '../lib/index.js';
import { native } from '../lib/native.js';

/**
 * Every device this build offers: cpu, simt (emulated CUDA), cuda:N. A new device joins
 * every op test by appearing here. LLMK_TEST_DEVICES=cuda:0[,cpu…] narrows the list (a
 * GPU machine's short lease runs the device's own cases only); naming a device the build
 * does not offer is an error, so a typo cannot pass by testing nothing.
 */
export const DEVICES: string[] = selectDevices(devices().map((d) => d.name), process.env.LLMK_TEST_DEVICES);

function selectDevices(all: string[], wanted: string | undefined): string[] {
  if (!wanted) return all;
  const names = wanted.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names)
    if (!all.includes(n)) throw new Error(`LLMK_TEST_DEVICES names '${n}', which this build does not offer; available: ${all.join(', ')}`);
  return names;
}

/** Deterministic PRNG (mulberry32) — tests never use Math.random. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal samples (Box–Muller), never exactly zero. */
export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    if (out[i] === 0) out[i] = scale * 1e-3;
  }
  return out;
}

/** Round every element to the given storage precision (so references see what the device sees). */
export function quantizeTo(a: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Float32Array {
  if (dtype === 'f32') return a;
  const out = new Float32Array(a.length);
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let i = 0; i < a.length; i++) {
    if (dtype === 'bf16') {
      f[0] = a[i];
      const x = u[0];
      u[0] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) << 16;
      out[i] = f[0];
    } else {
      out[i] = f16Round(a[i]);
    }
  }
  return out;
}

/** Nearest f16 value (round to nearest even), computed in f64. */
export function f16Round(x: number): number {
  if (!Number.isFinite(x) || x === 0) return x;
  const ax = Math.abs(x);
  if (ax >= 65520) return Math.sign(x) * Infinity;
  const e = Math.max(Math.floor(Math.log2(ax)), -14);
  const ulp = 2 ** (e - 10);
  let q = ax / ulp;
  const fl = Math.floor(q);
  const rem = q - fl;
  q = rem > 0.5 || (rem === 0.5 && fl % 2 === 1) ? fl + 1 : fl;
  return Math.sign(x) * q * ulp;
}

export interface ErrorStats {
  maxAbs: number;
  relNorm: number;
  nonFinite: number;
}

/** max |a - ref| and ||a - ref|| / ||ref||; counts non-finite outputs (poisoned = unwritten). */
export function compare(a: ArrayLike<number>, ref: ArrayLike<number>): ErrorStats {
  if (a.length !== ref.length) throw new Error(`length mismatch: ${a.length} vs ${ref.length}`);
  let maxAbs = 0;
  let num = 0;
  let den = 0;
  let nonFinite = 0;
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i])) {
      nonFinite++;
      continue;
    }
    const d = a[i] - ref[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
    num += d * d;
    den += ref[i] * ref[i];
  }
  return { maxAbs, relNorm: Math.sqrt(num / Math.max(den, 1e-300)), nonFinite };
}

export { native as nativeForTests } from '../lib/native.js';

/** The cpu kernel copies the binary carries (setCpuIsa clamps to what the CPU supports). */
export const CPU_ISAS = ['avx512', 'avx2', 'scalar'] as const;
export type CpuIsa = (typeof CPU_ISAS)[number];

/** Forces the cpu ISA; the returned function restores the one in effect before. */
export function forceCpuIsa(isa: CpuIsa): () => void {
  const n = native();
  const prev = n.devices().find((d) => d.name === 'cpu')!.detail;
  n.setCpuIsa(isa);
  return () => {
    n.setCpuIsa(prev.startsWith('avx512') ? 'avx512' : (prev as 'avx2' | 'scalar'));
  };
}

/** Runs pending GC finalizers of dropped tensor handles, so memory() counts are stable. */
export async function settleGc(): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('tests need node --expose-gc (see vitest.config.ts)');
  for (let i = 0; i < 2; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}
