// Rotary position embedding (RoPE), fused over q and k, in place.
//
// Which style a loader must use: Hugging Face checkpoints (safetensors, LlamaForCausalLM
// and friends) store Q/K so that pairs are the two halves of a head — 'neox'
// (rotate-half). GGUF files (llama.cpp's converter permutes Q/K rows) and Meta's
// original checkpoints pair adjacent dims — 'gptj' (interleaved).
import { FLOAT_DTYPES } from '../dtype.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import {
  assertFiniteNumber, assertOptions, assertRank, assertSameDevice, assertSameDType, assertTensor, assertTensorDType,
  describe,
} from '../validate.js';

export type RopeScaling =
  | { type: 'linear'; factor: number }
  /** NTK-aware base change once the sequence exceeds the original context; seqLen = current length. */
  | { type: 'dynamic'; factor: number; originalMaxPositions: number; seqLen: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | { type: 'yarn'; factor: number; originalMaxPositions: number; betaFast?: number; betaSlow?: number; attnFactor?: number };

export interface RopeOptions {
  /** θ base (HF rope_theta), default 10000 */
  base?: number;
  /** 'neox' (HF rotate-half, default) or 'gptj' (interleaved pairs, GGUF/Meta) */
  style?: 'neox' | 'gptj';
  /** rotate only the first rotaryDim dims (even, <= D); default D */
  rotaryDim?: number;
  scaling?: RopeScaling;
  /** rotate by -angle (undo a rope) */
  inverse?: boolean;
}

const SCALING_TYPES = ['linear', 'dynamic', 'llama3', 'yarn'];

function checkScaling(s: unknown): void {
  if (s === undefined) return;
  assertOptions(s, 'opts.scaling');
  const sc = s as Record<string, unknown>;
  if (!SCALING_TYPES.includes(sc.type as string))
    throw new TypeError(`Expected opts.scaling.type to be one of ${SCALING_TYPES.join(', ')} but received ${describe(sc.type)}`);
  assertFiniteNumber(sc.factor, 'opts.scaling.factor', { min: Number.MIN_VALUE });
  if (sc.type !== 'linear') assertFiniteNumber(sc.originalMaxPositions, 'opts.scaling.originalMaxPositions', { min: 1 });
  if (sc.type === 'dynamic') assertFiniteNumber(sc.seqLen, 'opts.scaling.seqLen', { min: 0 });
  for (const key of ['lowFreqFactor', 'highFreqFactor', 'betaFast', 'betaSlow', 'attnFactor'])
    if (sc[key] !== undefined) assertFiniteNumber(sc[key], `opts.scaling.${key}`, { min: 0 });
}

function checkRope(q: Tensor, k: Tensor | null | undefined, positions: Tensor, opts: RopeOptions): RopeOptions {
  assertTensor(q, 'q');
  assertOptions(opts, 'opts');
  assertRank(q, 'q', 3, '[T, Hq, D]');
  assertTensorDType(q, 'q', FLOAT_DTYPES);
  const [T, , D] = q.shape;
  if (k !== undefined && k !== null) {
    assertTensor(k, 'k');
    assertSameDevice(q, 'q', k, 'k');
    assertSameDType(q, 'q', k, 'k');
    if (k.shape.length !== 3 || k.shape[0] !== T || k.shape[2] !== D)
      throw new RangeError(`Expected k of shape [${T}, Hkv, ${D}] but received [${k.shape.join(', ')}]`);
  }
  assertTensor(positions, 'positions');
  assertSameDevice(q, 'q', positions, 'positions');
  assertTensorDType(positions, 'positions', ['i32']);
  if (positions.shape.length !== 1 || positions.shape[0] !== T)
    throw new RangeError(`Expected positions of shape [${T}] but received [${positions.shape.join(', ')}]`);
  const rotaryDim = opts.rotaryDim ?? D;
  if (!Number.isInteger(rotaryDim) || rotaryDim < 2 || rotaryDim > D || rotaryDim % 2 !== 0)
    throw new RangeError(`Expected an even opts.rotaryDim in [2, ${D}] but received ${describe(rotaryDim)}`);
  if (opts.base !== undefined) assertFiniteNumber(opts.base, 'opts.base', { min: 1 + Number.EPSILON });
  if (opts.style !== undefined && opts.style !== 'neox' && opts.style !== 'gptj')
    throw new TypeError(`Expected 'neox' or 'gptj' for opts.style but received ${describe(opts.style)}`);
  checkScaling(opts.scaling);
  return { ...opts, rotaryDim };
}

/**
 * Rotates q[T,Hq,D] and k[T,Hkv,D] in place by position·θᵢ (one pass over both).
 * positions: i32[T], one per token (a batch may mix sequences at different positions).
 * A negative position fails at the next sync point.
 * @example rope(q, k, positions, { base: 500000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } })
 */
export function rope(q: Tensor, k: Tensor | null | undefined, positions: Tensor, opts: RopeOptions = {}): void {
  const o = checkRope(q, k, positions, opts);
  native().rope(q.handle, k?.handle ?? null, positions.handle, o);
}

/** Paged KV cache destination: caches are [numPages, pageSize, Hkv, D]; slots i32[T] = page·pageSize + offset. */
export interface KvCacheSlots {
  kCache: Tensor;
  vCache: Tensor;
  slots: Tensor;
}

// v like k; slots i32 [T]; caches [numPages, pageSize, Hkv, D] of k's dtype, distinct
// tensors; everything on `anchor`'s device.
function checkCache(anchor: Tensor, anchorName: string, k: Tensor, v: Tensor, cache: KvCacheSlots): void {
  assertTensor(v, 'v');
  assertOptions(cache, 'cache');
  const { kCache, vCache, slots } = cache;
  assertTensor(kCache, 'cache.kCache');
  assertTensor(vCache, 'cache.vCache');
  assertTensor(slots, 'cache.slots');
  for (const [t, n] of [[v, 'v'], [kCache, 'cache.kCache'], [vCache, 'cache.vCache'], [slots, 'cache.slots']] as const)
    assertSameDevice(anchor, anchorName, t, n);
  if (v.dtype !== k.dtype || v.shape.some((d, i) => d !== k.shape[i]) || v.shape.length !== 3)
    throw new RangeError(`Expected v of shape [${k.shape.join(', ')}] and dtype ${k.dtype} but received [${v.shape.join(', ')}] ${v.dtype}`);
  assertTensorDType(slots, 'cache.slots', ['i32']);
  if (slots.shape.length !== 1 || slots.shape[0] !== k.shape[0])
    throw new RangeError(`Expected cache.slots of shape [${k.shape[0]}] but received [${slots.shape.join(', ')}]`);
  for (const [c, n] of [[kCache, 'cache.kCache'], [vCache, 'cache.vCache']] as const)
    if (c.shape.length !== 4 || c.shape[2] !== k.shape[1] || c.shape[3] !== k.shape[2] || c.dtype !== k.dtype)
      throw new RangeError(
        `Expected ${n} of shape [numPages, pageSize, ${k.shape[1]}, ${k.shape[2]}] and dtype ${k.dtype} but received [${c.shape.join(', ')}] ${c.dtype}`,
      );
  if (kCache.shape.some((d, i) => d !== vCache.shape[i]))
    throw new RangeError(`Expected cache.vCache of the shape of cache.kCache [${kCache.shape.join(', ')}] but received [${vCache.shape.join(', ')}]`);
  if (kCache.handle === vCache.handle) throw new Error('Expected cache.kCache and cache.vCache to be different tensors (both are written)');
}

/**
 * The decoder's fused step: rotates q in place and writes the rotated k rows and the v
 * rows into a paged KV cache at `cache.slots` — one pass, k itself is left unchanged.
 * @example ropeAndCache(q, k, v, positions, { kCache, vCache, slots }, { base: 10000 })
 */
export function ropeAndCache(q: Tensor, k: Tensor, v: Tensor, positions: Tensor, cache: KvCacheSlots, opts: RopeOptions = {}): void {
  const o = checkRope(q, k, positions, opts);
  checkCache(q, 'q', k, v, cache);
  const { kCache, vCache, slots } = cache;
  native().ropeCache(q.handle, k.handle, v.handle, positions.handle, slots.handle, kCache.handle, vCache.handle, o);
}

/**
 * Appends k and v rows [T, Hkv, D] to a paged KV cache as they are (no rotation; vLLM's
 * reshape_and_cache): token t's rows land at flat slot `cache.slots[t]` = page·pageSize +
 * offset (see pagedSlots). A slot outside [0, numPages·pageSize) fails at the next sync
 * point, naming it, and the call writes nothing; with repeated slots, which row lands
 * there is unspecified.
 * @example writeKvCache(k, v, { kCache, vCache, slots })
 */
export function writeKvCache(k: Tensor, v: Tensor, cache: KvCacheSlots): void {
  assertTensor(k, 'k');
  assertRank(k, 'k', 3, '[T, Hkv, D]');
  assertTensorDType(k, 'k', FLOAT_DTYPES);
  checkCache(k, 'k', k, v, cache);
  native().kvCacheWrite(k.handle, v.handle, cache.slots.handle, cache.kCache.handle, cache.vCache.handle);
}

/**
 * Converts a Hugging Face config.json `rope_scaling` object (or null) into RopeScaling.
 * `seqLen` is needed only for 'dynamic'.
 */
export function ropeScalingFromHF(
  rs: Record<string, unknown> | null | undefined,
  maxPositionEmbeddings?: number,
  seqLen = 0,
): RopeScaling | undefined {
  if (rs === null || rs === undefined) return undefined;
  const type = (rs.rope_type ?? rs.type) as string;
  const factor = rs.factor as number;
  const orig = (rs.original_max_position_embeddings as number | undefined) ?? maxPositionEmbeddings;
  switch (type) {
    case 'default':
      return undefined;
    case 'linear':
      return { type: 'linear', factor };
    case 'dynamic':
      return { type: 'dynamic', factor, originalMaxPositions: orig as number, seqLen };
    case 'llama3':
      return {
        type: 'llama3',
        factor,
        lowFreqFactor: rs.low_freq_factor as number,
        highFreqFactor: rs.high_freq_factor as number,
        originalMaxPositions: orig as number,
      };
    case 'yarn':
      return {
        type: 'yarn',
        factor,
        originalMaxPositions: orig as number,
        betaFast: (rs.beta_fast as number | undefined) ?? 32,
        betaSlow: (rs.beta_slow as number | undefined) ?? 1,
        attnFactor: rs.attention_factor as number | undefined,
      };
    default:
      throw new TypeError(`Unsupported rope_scaling type ${describe(type)} (supported: linear, dynamic, llama3, yarn)`);
  }
}
