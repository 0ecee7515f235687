// GGUF v3 writer for our demo models, so llama.cpp runs the very weights llm-kernels
// runs. Layout (ggml's gguf.c): "GGUF", u32 version, u64 tensor count, u64 metadata
// count, the metadata (u64-length strings, u32 value type, value), the tensor infos
// (name, u32 n_dims, u64 ne[] innermost first, u32 ggml type, u64 offset into the
// data section), zero padding to `general.alignment`, then each tensor's data at its
// aligned offset.
//
// Tensor names and conventions follow llama.cpp's Llama loader: token_embd, blk.N.*,
// output_norm, output; 1-D norm weights in F32. Hugging Face q/k projections are laid
// out for the rotate-half RoPE; GGUF Llama files hold them in the original interleaved
// order (llama.cpp's "norm" RoPE rotates pairs 2i, 2i+1), so rows of q_proj/k_proj are
// permuted per head: GGUF row 2i+j = HF row j·D/2 + i.
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listModelTensors, readTensorBytes, type TensorInfo } from '../../lib/loaders/safetensors.js';
import { loadConfig } from '../../lib/model/config.js';
import { tensor } from '../../lib/index.js';

export type GgufType = 'F32' | 'F16' | 'Q8_0';
const GGML_TYPE: Record<GgufType, number> = { F32: 0, F16: 1, Q8_0: 8 };
/** general.file_type (llama_ftype): ALL_F32 = 0, MOSTLY_F16 = 1, MOSTLY_Q8_0 = 7 */
const FILE_TYPE: Record<GgufType, number> = { F32: 0, F16: 1, Q8_0: 7 };
const ALIGN = 32;
const QK8_0 = 32;

// gguf_type of metadata values
const T = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 } as const;

type Meta =
  | { t: 'u32' | 'i32' | 'f32'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'str'; v: string }
  | { t: 'strs'; v: string[] }
  | { t: 'i32s'; v: number[] };

class Buf {
  private chunks: Buffer[] = [];
  u32(v: number) {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.chunks.push(b);
  }
  i32(v: number) {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.chunks.push(b);
  }
  f32(v: number) {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    this.chunks.push(b);
  }
  u64(v: number) {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.chunks.push(b);
  }
  str(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.chunks.push(b);
  }
  raw(b: Buffer) {
    this.chunks.push(b);
  }
  done(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

function writeMeta(out: Buf, key: string, m: Meta): void {
  out.str(key);
  switch (m.t) {
    case 'u32':
      out.u32(T.U32);
      out.u32(m.v);
      break;
    case 'i32':
      out.u32(T.I32);
      out.i32(m.v);
      break;
    case 'f32':
      out.u32(T.F32);
      out.f32(m.v);
      break;
    case 'bool':
      out.u32(T.BOOL);
      out.raw(Buffer.of(m.v ? 1 : 0));
      break;
    case 'str':
      out.u32(T.STRING);
      out.str(m.v);
      break;
    case 'strs':
      out.u32(T.ARRAY);
      out.u32(T.STRING);
      out.u64(m.v.length);
      for (const s of m.v) out.str(s);
      break;
    case 'i32s':
      out.u32(T.ARRAY);
      out.u32(T.I32);
      out.u64(m.v.length);
      for (const x of m.v) out.i32(x);
      break;
  }
}

/** IEEE half bits of an f32 value, round to nearest even (for Q8_0 block scales). */
function f16Bits(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const abs = x & 0x7fffffff;
  if (abs >= 0x477ff000) return sign | 0x7c00;
  if (abs < 0x38800000) return sign | Math.round(Math.abs(f[0]) / 2 ** -24);
  const r = abs + 0xfff + ((abs >>> 13) & 1);
  return sign | (((r >>> 13) - (112 << 10)) & 0x7fff);
}

/** ggml's Q8_0: per block of 32 along a row, d = max|x| / 127 stored as f16, q = round(x / d). */
export function quantizeQ8_0(x: Float32Array): Buffer {
  if (x.length % QK8_0) throw new RangeError(`Expected a multiple of ${QK8_0} values for Q8_0 but received ${x.length}`);
  const blocks = x.length / QK8_0;
  const out = Buffer.alloc(blocks * 34);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let i = 0; i < QK8_0; i++) amax = Math.max(amax, Math.abs(x[b * QK8_0 + i]));
    const d = amax / 127;
    const id = d ? 1 / d : 0;
    out.writeUInt16LE(f16Bits(d), b * 34);
    for (let i = 0; i < QK8_0; i++) out.writeInt8(Math.round(x[b * QK8_0 + i] * id), b * 34 + 2 + i);
  }
  return out;
}

function typeBytes(type: GgufType, n: number): number {
  return type === 'F32' ? 4 * n : type === 'F16' ? 2 * n : (n / QK8_0) * 34;
}

/** HF → GGUF name; null for tensors llama.cpp does not take. */
function ggufName(hf: string): string | null {
  if (hf === 'model.embed_tokens.weight') return 'token_embd.weight';
  if (hf === 'model.norm.weight') return 'output_norm.weight';
  if (hf === 'lm_head.weight') return 'output.weight';
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (!m) return null;
  const map: Record<string, string> = {
    'input_layernorm.weight': 'attn_norm.weight',
    'post_attention_layernorm.weight': 'ffn_norm.weight',
    'self_attn.q_proj.weight': 'attn_q.weight',
    'self_attn.k_proj.weight': 'attn_k.weight',
    'self_attn.v_proj.weight': 'attn_v.weight',
    'self_attn.o_proj.weight': 'attn_output.weight',
    'mlp.gate_proj.weight': 'ffn_gate.weight',
    'mlp.up_proj.weight': 'ffn_up.weight',
    'mlp.down_proj.weight': 'ffn_down.weight',
  };
  return map[m[2]] ? `blk.${m[1]}.${map[m[2]]}` : null;
}

/** Rows of a q/k projection reordered from rotate-half to interleaved pairs, per head. */
function permuteRoPERows(x: Float32Array, rows: number, cols: number, headDim: number): Float32Array {
  const out = new Float32Array(x.length);
  const half = headDim / 2;
  for (let r = 0; r < rows; r++) {
    const h = Math.floor(r / headDim);
    const within = r % headDim;
    const i = within >> 1;
    const j = within & 1;
    const src = h * headDim + j * half + i;
    out.set(x.subarray(src * cols, (src + 1) * cols), r * cols);
  }
  return out;
}

async function asF32(t: TensorInfo): Promise<Float32Array> {
  const bytes = await readTensorBytes(t);
  if (t.dtype === 'F32') return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  if (t.dtype !== 'F16' && t.dtype !== 'BF16') throw new TypeError(`Expected F32, F16 or BF16 weights but '${t.name}' is ${t.dtype}`);
  // widen through llm-kernels' own cast (exact for f16/bf16 → f32)
  const h = tensor(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2), [bytes.byteLength / 2], { dtype: t.dtype === 'F16' ? 'f16' : 'bf16' });
  const f = h.cast('f32');
  const out = (await f.toArray()) as Float32Array;
  h.dispose();
  f.dispose();
  return out;
}

/** Writes `file` as a GGUF v3 Llama model holding the demo model in `dir` at `type`. */
export async function writeGguf(dir: string, file: string, type: GgufType): Promise<void> {
  const cfg = await loadConfig(dir);
  if (cfg.attentionBias) throw new Error('GGUF export covers Llama (no q/k/v bias) demo models only');
  const tok = JSON.parse(await readFile(join(dir, 'tokenizer.json'), 'utf8')) as {
    model: { vocab: Record<string, number>; merges: (string | [string, string])[] };
    added_tokens: { id: number; content: string; special: boolean }[];
  };
  const tokens: string[] = new Array(cfg.vocabSize).fill('');
  for (const [s, id] of Object.entries(tok.model.vocab)) if (id < cfg.vocabSize) tokens[id] = s;
  const tokenType = tokens.map(() => 1); // LLAMA_TOKEN_TYPE_NORMAL
  for (const a of tok.added_tokens) {
    tokens[a.id] = a.content;
    if (a.special) tokenType[a.id] = 3; // CONTROL
  }
  tokens.forEach((s, i) => {
    if (s === '') tokens[i] = `<unused${i}>`;
  });
  const merges = tok.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));

  const meta: [string, Meta][] = [
    ['general.architecture', { t: 'str', v: 'llama' }],
    ['general.name', { t: 'str', v: 'llm-kernels demo' }],
    ['general.alignment', { t: 'u32', v: ALIGN }],
    ['general.file_type', { t: 'u32', v: FILE_TYPE[type] }],
    ['llama.context_length', { t: 'u32', v: cfg.maxPositionEmbeddings }],
    ['llama.embedding_length', { t: 'u32', v: cfg.hiddenSize }],
    ['llama.block_count', { t: 'u32', v: cfg.numLayers }],
    ['llama.feed_forward_length', { t: 'u32', v: cfg.intermediateSize }],
    ['llama.rope.dimension_count', { t: 'u32', v: cfg.headDim }],
    ['llama.attention.head_count', { t: 'u32', v: cfg.numHeads }],
    ['llama.attention.head_count_kv', { t: 'u32', v: cfg.numKvHeads }],
    ['llama.attention.key_length', { t: 'u32', v: cfg.headDim }],
    ['llama.attention.value_length', { t: 'u32', v: cfg.headDim }],
    ['llama.attention.layer_norm_rms_epsilon', { t: 'f32', v: cfg.rmsNormEps }],
    ['llama.rope.freq_base', { t: 'f32', v: cfg.ropeTheta }],
    ['llama.vocab_size', { t: 'u32', v: cfg.vocabSize }],
    ['tokenizer.ggml.model', { t: 'str', v: 'gpt2' }],
    ['tokenizer.ggml.pre', { t: 'str', v: 'default' }],
    ['tokenizer.ggml.tokens', { t: 'strs', v: tokens }],
    ['tokenizer.ggml.token_type', { t: 'i32s', v: tokenType }],
    ['tokenizer.ggml.merges', { t: 'strs', v: merges }],
    ['tokenizer.ggml.bos_token_id', { t: 'u32', v: cfg.bosTokenId ?? 1 }],
    ['tokenizer.ggml.eos_token_id', { t: 'u32', v: 2 }],
    ['tokenizer.ggml.add_bos_token', { t: 'bool', v: false }],
  ];

  const src = await listModelTensors(dir);
  const plan: { name: string; info: TensorInfo; type: GgufType; ne: number[]; bytes: number; offset: number }[] = [];
  let offset = 0;
  for (const info of src.values()) {
    const name = ggufName(info.name);
    if (!name) continue;
    const t: GgufType = info.shape.length === 1 ? 'F32' : type;
    const n = info.shape.reduce((a, b) => a * b, 1);
    const bytes = typeBytes(t, n);
    plan.push({ name, info, type: t, ne: [...info.shape].reverse(), bytes, offset });
    offset += Math.ceil(bytes / ALIGN) * ALIGN;
  }

  const head = new Buf();
  head.raw(Buffer.from('GGUF', 'ascii'));
  head.u32(3);
  head.u64(plan.length);
  head.u64(meta.length);
  for (const [k, m] of meta) writeMeta(head, k, m);
  for (const p of plan) {
    head.str(p.name);
    head.u32(p.ne.length);
    for (const d of p.ne) head.u64(d);
    head.u32(GGML_TYPE[p.type]);
    head.u64(p.offset);
  }
  const header = head.done();
  const dataStart = Math.ceil(header.length / ALIGN) * ALIGN;

  const fh = await open(file, 'w');
  try {
    await fh.write(header, 0, header.length, 0);
    for (const p of plan) {
      let x: Float32Array | null = null;
      let data: Buffer;
      const [rows, cols] = p.info.shape.length === 2 ? p.info.shape : [1, p.info.shape[0]];
      const isQK = /attn_[qk]\.weight$/.test(p.name);
      if (p.type === 'F16' && p.info.dtype === 'F16' && !isQK) {
        data = Buffer.from(await readTensorBytes(p.info));
      } else {
        x = await asF32(p.info);
        if (isQK) x = permuteRoPERows(x, rows, cols, cfg.headDim);
        if (p.type === 'F32') data = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
        else if (p.type === 'Q8_0') data = quantizeQ8_0(x);
        else {
          data = Buffer.alloc(2 * x.length);
          for (let i = 0; i < x.length; i++) data.writeUInt16LE(f16Bits(x[i]), 2 * i);
        }
      }
      if (data.length !== p.bytes) throw new Error(`GGUF export: '${p.name}' has ${data.length} bytes, expected ${p.bytes}`);
      await fh.write(data, 0, data.length, dataStart + p.offset);
    }
  } finally {
    await fh.close();
  }
}
