// Hugging Face config.json for the Llama family: LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM (q/k/v biases). Everything the loader relies on is validated here,
// so a malformed file fails with a message naming the field.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ropeScalingFromHF, type RopeScaling } from '../ops/rope.js';

export const SUPPORTED_ARCHITECTURES = ['LlamaForCausalLM', 'MistralForCausalLM', 'Qwen2ForCausalLM'] as const;
export type Architecture = (typeof SUPPORTED_ARCHITECTURES)[number];

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling?: RopeScaling;
  maxPositionEmbeddings: number;
  tieWordEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2) */
  attentionBias: boolean;
  /**
   * Per layer: the sliding attention window (a token sees the `window` positions ending
   * at its own), 0 = full attention. Mistral: every layer when sliding_window is set;
   * Qwen2: layer_types, else layers from max_window_layers on when use_sliding_window.
   */
  layerWindows: number[];
  bosTokenId?: number;
  eosTokenIds: number[];
  /** the raw JSON, for fields a caller may want */
  raw: Record<string, unknown>;
}

function field<T>(raw: Record<string, unknown>, key: string, check: (v: unknown) => boolean, what: string, dflt?: T): T {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (dflt !== undefined) return dflt;
    throw new Error(`config.json: missing ${key} (expected ${what})`);
  }
  if (!check(v)) throw new Error(`config.json: expected ${what} for ${key} but found ${JSON.stringify(v)}`);
  return v as T;
}

const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
const posNum = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v > 0;

// Which layers use sliding-window attention, and the window (Hugging Face semantics:
// MistralForCausalLM applies sliding_window to every layer; Qwen2 only with
// use_sliding_window, per layer_types or from max_window_layers on; Llama ignores it).
function slidingWindows(raw: Record<string, unknown>, arch: Architecture, numLayers: number): number[] {
  const full = new Array<number>(numLayers).fill(0);
  if (raw.sliding_window === undefined || raw.sliding_window === null || arch === 'LlamaForCausalLM') return full;
  const w = field<number>(raw, 'sliding_window', posInt, 'a positive integer or null');
  if (arch === 'MistralForCausalLM') return raw.use_sliding_window === false ? full : full.map(() => w);
  if (raw.use_sliding_window !== true) return full;
  const types = raw.layer_types;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== numLayers || types.some((t) => t !== 'sliding_attention' && t !== 'full_attention'))
      throw new Error(`config.json: expected layer_types to list 'sliding_attention' or 'full_attention' for each of the ${numLayers} layers`);
    return types.map((t) => (t === 'sliding_attention' ? w : 0));
  }
  const from = field<number>(raw, 'max_window_layers', (v) => Number.isInteger(v) && (v as number) >= 0, 'a non-negative integer', 28);
  return full.map((_, l) => (l >= from ? w : 0));
}

/** Parses and validates a config.json object. */
export function parseConfig(raw: Record<string, unknown>): ModelConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('config.json: expected a JSON object');
  const archs = raw.architectures;
  const arch = Array.isArray(archs) ? archs.find((a) => (SUPPORTED_ARCHITECTURES as readonly string[]).includes(a)) : undefined;
  if (!arch)
    throw new Error(
      `config.json: unsupported architectures ${JSON.stringify(archs)} (supported: ${SUPPORTED_ARCHITECTURES.join(', ')})`,
    );
  const hiddenSize = field<number>(raw, 'hidden_size', posInt, 'a positive integer');
  const numHeads = field<number>(raw, 'num_attention_heads', posInt, 'a positive integer');
  const numKvHeads = field<number>(raw, 'num_key_value_heads', posInt, 'a positive integer', numHeads);
  if (numHeads % numKvHeads !== 0)
    throw new Error(`config.json: num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
  const headDim = field<number>(raw, 'head_dim', posInt, 'a positive integer', hiddenSize / numHeads);
  if (!Number.isInteger(headDim) || headDim % 8 !== 0 || headDim > 256)
    throw new Error(`config.json: head dim ${headDim} must be an integer multiple of 8 up to 256`);
  const maxPos = field<number>(raw, 'max_position_embeddings', posInt, 'a positive integer', 2048);
  const numLayers = field<number>(raw, 'num_hidden_layers', posInt, 'a positive integer');
  const hiddenAct = raw.hidden_act ?? 'silu';
  if (hiddenAct !== 'silu') throw new Error(`config.json: hidden_act '${String(hiddenAct)}' is not supported (expected silu)`);
  const eos = raw.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? (eos as number[]) : typeof eos === 'number' ? [eos] : [];
  return {
    architecture: arch as Architecture,
    vocabSize: field(raw, 'vocab_size', posInt, 'a positive integer'),
    hiddenSize,
    intermediateSize: field(raw, 'intermediate_size', posInt, 'a positive integer'),
    numLayers,
    numHeads,
    numKvHeads,
    headDim,
    rmsNormEps: field(raw, 'rms_norm_eps', posNum, 'a positive number', 1e-6),
    ropeTheta: field(raw, 'rope_theta', posNum, 'a positive number', 10000),
    ropeScaling: ropeScalingFromHF(raw.rope_scaling as Record<string, unknown> | null | undefined, maxPos),
    maxPositionEmbeddings: maxPos,
    tieWordEmbeddings: field(raw, 'tie_word_embeddings', (v) => typeof v === 'boolean', 'a boolean', false),
    attentionBias: arch === 'Qwen2ForCausalLM' || raw.attention_bias === true,
    layerWindows: slidingWindows(raw, arch as Architecture, numLayers),
    bosTokenId: typeof raw.bos_token_id === 'number' ? raw.bos_token_id : undefined,
    eosTokenIds,
    raw,
  };
}

/** Reads dir/config.json. */
export async function loadConfig(dir: string): Promise<ModelConfig> {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    throw new Error(`Cannot read ${file}: ${(e as Error).message}`);
  }
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`Malformed ${file}: ${(e as Error).message}`);
  }
  return parseConfig(raw);
}
