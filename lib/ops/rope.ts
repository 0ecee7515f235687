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

/**
 * Rotates q[T,Hq,D] and k[T,Hkv,D] in place by position·θᵢ (one pass over both).
 * positions: i32[T], one per token (a batch may mix sequences at different positions).
 * @example rope(q, k, positions, { base: 500000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } })
 */
export function rope(q: Tensor, k: Tensor | null | undefined, positions: Tensor, opts: RopeOptions = {}): void {
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
  native().rope(q.handle, k?.handle ?? null, positions.handle, { ...opts, rotaryDim });
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
