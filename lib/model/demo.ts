// Random-weight demo models in the real formats (config.json, model.safetensors,
// tokenizer.json with a valid byte-level BPE, tokenizer_config.json with a chat
// template): no weights can be downloaded here, so tests, demos and benchmarks make
// their own.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type TensorToWrite } from '../loaders/safetensors.js';

export type DemoPreset = 'tiny' | 'small' | '1b';

interface Shape {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  vocab: number;
  context: number;
}

const PRESETS: Record<DemoPreset, Shape> = {
  tiny: { layers: 2, hidden: 64, heads: 4, kvHeads: 2, ffn: 160, vocab: 384, context: 512 },
  // ~12M parameters
  small: { layers: 4, hidden: 512, heads: 8, kvHeads: 2, ffn: 1408, vocab: 2048, context: 2048 },
  // TinyLlama-1.1B's shape
  '1b': { layers: 22, hidden: 2048, heads: 32, kvHeads: 4, ffn: 5632, vocab: 32000, context: 2048 },
};

export interface DemoModelOptions {
  /** storage dtype of the weights (default f16 — what HF checkpoints ship) */
  dtype?: 'f32' | 'f16' | 'bf16';
  seed?: number;
  /** Qwen2-style q/k/v biases */
  attentionBias?: boolean;
  tieWordEmbeddings?: boolean;
}

// GPT-2's byte ↔ printable-unicode map used by byte-level BPE vocabularies.
function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCodePoint(keep.includes(b) ? b : 256 + extra++);
  return out;
}

const CORPUS = `The quick brown fox jumps over the lazy dog. Large language models run fast when their
kernels stream weights once per token. Attention reads the cache of keys and values; the rotary
embedding turns each pair of dimensions by an angle that grows with the position. Quantized weights
in eight bits halve the bytes that move, and two of every four weights may be zero in a sparse
matrix. A server in Node.js keeps its event loop free while the native worker computes. Hello world!
Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000. Émigré café naïve — 日本語 テキスト 😀 multi-byte text.`;

/** Trains merges on the corpus, then adds synthetic merges of early tokens up to `vocab` entries. */
function buildBpe(vocabSize: number, specials: string[]): { vocab: Record<string, number>; merges: [string, string][] } {
  const b2u = byteToUnicode();
  const vocab = new Map<string, number>();
  for (const s of specials) vocab.set(s, vocab.size);
  for (const u of b2u) vocab.set(u, vocab.size);
  const words = CORPUS.split(/(?=\s)/).map((w) => Array.from(new TextEncoder().encode(w), (b) => b2u[b]));
  const merges: [string, string][] = [];
  const add = (a: string, b: string): boolean => {
    if (vocab.has(a + b) || vocab.size >= vocabSize) return false;
    vocab.set(a + b, vocab.size);
    merges.push([a, b]);
    return true;
  };
  for (;;) {
    const counts = new Map<string, number>();
    for (const w of words)
      for (let i = 0; i + 1 < w.length; i++) {
        const k = `${w[i]}\u0000${w[i + 1]}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
      }
    let best = '';
    let bestN = 1;
    for (const [k, n] of counts) if (n > bestN || (n === bestN && best !== '' && k < best)) [best, bestN] = [k, n];
    if (!best || vocab.size >= vocabSize) break;
    const [a, b] = best.split('\u0000');
    if (!add(a, b)) break;
    for (const w of words)
      for (let i = 0; i + 1 < w.length; i++)
        if (w[i] === a && w[i + 1] === b) w.splice(i, 2, a + b);
  }
  // Synthetic merges so large presets reach their vocabulary size (e.g. 32000).
  const base = [...vocab.keys()].filter((t) => !specials.includes(t)).slice(0, 400);
  for (let i = 0; vocab.size < vocabSize && i < base.length; i++)
    for (let j = 0; vocab.size < vocabSize && j < base.length; j++) add(base[i], base[j]);
  return { vocab: Object.fromEntries(vocab), merges };
}

function tokenizerJson(vocabSize: number) {
  const specials = ['<unk>', '<s>', '</s>'];
  const { vocab, merges } = buildBpe(vocabSize, specials);
  const byteLevel = { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: byteLevel,
    model: {
      type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
      fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges,
    },
  };
}

const CHAT_TEMPLATE =
  "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + eos_token + '\\n' }}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

/** Deterministic normal samples (xorshift + Box–Muller). */
function normalStream(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  const u = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
}

function encode(values: Float32Array, dtype: 'f32' | 'f16' | 'bf16'): Uint8Array {
  if (dtype === 'f32') return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  const u32 = new Uint32Array(values.buffer, values.byteOffset, values.length);
  if (dtype === 'bf16') {
    for (let i = 0; i < values.length; i++) out[i] = (u32[i] + 0x7fff + ((u32[i] >>> 16) & 1)) >>> 16;
  } else {
    for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i]);
  }
  return new Uint8Array(out.buffer);
}

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);
function f32ToF16Bits(v: number): number {
  f32buf[0] = v;
  const x = u32buf[0];
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x477ff000) return sign | 0x7c00; // overflow (our weights never get here)
  if (abs < 0x38800000) {
    // subnormal: round |v| / 2^-24 to an integer
    return sign | Math.round(Math.abs(v) / 5.9604644775390625e-8);
  }
  const r = abs + 0xfff + ((abs >>> 13) & 1);
  return sign | (((r >>> 13) - (112 << 10)) & 0x7fff);
}

/** Writes a random-weight Llama-family model directory. */
export async function createDemoModel(dir: string, preset: DemoPreset = 'tiny', opts: DemoModelOptions = {}): Promise<void> {
  const p = PRESETS[preset];
  if (!p) throw new TypeError(`Expected preset tiny, small or 1b but received '${String(preset)}'`);
  const dtype = opts.dtype ?? 'f16';
  const headDim = p.hidden / p.heads;
  await mkdir(dir, { recursive: true });
  const tie = opts.tieWordEmbeddings ?? preset === 'tiny';
  const config = {
    architectures: [opts.attentionBias ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    model_type: opts.attentionBias ? 'qwen2' : 'llama',
    vocab_size: p.vocab,
    hidden_size: p.hidden,
    intermediate_size: p.ffn,
    num_hidden_layers: p.layers,
    num_attention_heads: p.heads,
    num_key_value_heads: p.kvHeads,
    head_dim: headDim,
    hidden_act: 'silu',
    max_position_embeddings: p.context,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    rope_scaling: null,
    tie_word_embeddings: tie,
    bos_token_id: 1,
    eos_token_id: 2,
    torch_dtype: { f32: 'float32', f16: 'float16', bf16: 'bfloat16' }[dtype],
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(p.vocab)));
  await writeFile(
    join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true, model_max_length: p.context, chat_template: CHAT_TEMPLATE }, null, 2),
  );
  // Init scaled per fan-in so activations keep unit scale through the layers, and the
  // embedding/lm_head scaled so logits spread over a few units (not flat).
  const rnd = normalStream(opts.seed ?? 1234);
  const mk = (name: string, shape: number[], std: number, mean = 0): TensorToWrite => ({
    name,
    dtype: dtype === 'f32' ? 'F32' : dtype === 'f16' ? 'F16' : 'BF16',
    shape,
    data: () => {
      const n = shape.reduce((a, b) => a * b, 1);
      const v = new Float32Array(n);
      for (let i = 0; i < n; i++) v[i] = mean + std * rnd();
      return encode(v, dtype);
    },
  });
  const H = p.hidden;
  const kvDim = p.kvHeads * headDim;
  const tensors: TensorToWrite[] = [mk('model.embed_tokens.weight', [p.vocab, H], 3 / Math.sqrt(H))];
  for (let l = 0; l < p.layers; l++) {
    const pre = `model.layers.${l}`;
    tensors.push(
      mk(`${pre}.input_layernorm.weight`, [H], 0.1, 1),
      mk(`${pre}.self_attn.q_proj.weight`, [p.heads * headDim, H], 1 / Math.sqrt(H)),
      mk(`${pre}.self_attn.k_proj.weight`, [kvDim, H], 1 / Math.sqrt(H)),
      mk(`${pre}.self_attn.v_proj.weight`, [kvDim, H], 1 / Math.sqrt(H)),
    );
    if (opts.attentionBias)
      tensors.push(
        mk(`${pre}.self_attn.q_proj.bias`, [p.heads * headDim], 0.1),
        mk(`${pre}.self_attn.k_proj.bias`, [kvDim], 0.1),
        mk(`${pre}.self_attn.v_proj.bias`, [kvDim], 0.1),
      );
    tensors.push(
      mk(`${pre}.self_attn.o_proj.weight`, [H, p.heads * headDim], 1 / Math.sqrt(p.heads * headDim)),
      mk(`${pre}.post_attention_layernorm.weight`, [H], 0.1, 1),
      mk(`${pre}.mlp.gate_proj.weight`, [p.ffn, H], 1 / Math.sqrt(H)),
      mk(`${pre}.mlp.up_proj.weight`, [p.ffn, H], 1 / Math.sqrt(H)),
      mk(`${pre}.mlp.down_proj.weight`, [H, p.ffn], 1 / Math.sqrt(p.ffn)),
    );
  }
  tensors.push(mk('model.norm.weight', [H], 0.1, 1));
  if (!tie) tensors.push(mk('lm_head.weight', [p.vocab, H], 3 / Math.sqrt(H)));
  await writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
}
