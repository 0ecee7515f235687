// An independent fp64 reference forward pass of a Hugging Face Llama-family model
// (LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM semantics), written from the
// HF modeling code's definitions in plain TS. It shares no code with lib/: it parses
// config.json and model.safetensors itself.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

type Mat = { data: Float64Array; rows: number; cols: number };

function halfToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** All tensors of dir/model.safetensors as fp64 arrays. */
export function readWeights(dir: string): Map<string, { shape: number[]; data: Float64Array }> {
  const buf = readFileSync(join(dir, 'model.safetensors'));
  const hlen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + hlen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  const out = new Map<string, { shape: number[]; data: Float64Array }>();
  for (const [name, e] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const raw = buf.subarray(8 + hlen + e.data_offsets[0], 8 + hlen + e.data_offsets[1]);
    const n = e.shape.reduce((a, b) => a * b, 1);
    const data = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      if (e.dtype === 'F32') data[i] = raw.readFloatLE(4 * i);
      else if (e.dtype === 'F16') data[i] = halfToNumber(raw.readUInt16LE(2 * i));
      else if (e.dtype === 'BF16') {
        const b = Buffer.alloc(4);
        b.writeUInt32LE(raw.readUInt16LE(2 * i) << 16);
        data[i] = b.readFloatLE(0);
      } else throw new Error(`reference: unsupported dtype ${e.dtype}`);
    }
    out.set(name, { shape: e.shape, data });
  }
  return out;
}

function linear(x: Mat, w: { shape: number[]; data: Float64Array }, b?: { data: Float64Array }): Mat {
  const [N, K] = w.shape;
  const y = new Float64Array(x.rows * N);
  for (let r = 0; r < x.rows; r++)
    for (let n = 0; n < N; n++) {
      let s = b ? b.data[n] : 0;
      for (let k = 0; k < K; k++) s += x.data[r * K + k] * w.data[n * K + k];
      y[r * N + n] = s;
    }
  return { data: y, rows: x.rows, cols: N };
}

function rmsnorm(x: Mat, w: Float64Array, eps: number): Mat {
  const y = new Float64Array(x.data.length);
  for (let r = 0; r < x.rows; r++) {
    let ss = 0;
    for (let i = 0; i < x.cols; i++) ss += x.data[r * x.cols + i] ** 2;
    const inv = 1 / Math.sqrt(ss / x.cols + eps);
    for (let i = 0; i < x.cols; i++) y[r * x.cols + i] = x.data[r * x.cols + i] * inv * w[i];
  }
  return { data: y, rows: x.rows, cols: x.cols };
}

/** HF rotate_half RoPE (default scaling) on x [T, H·D] at positions 0..T-1. */
function ropeHalf(x: Mat, heads: number, D: number, theta: number): void {
  for (let t = 0; t < x.rows; t++)
    for (let i = 0; i < D / 2; i++) {
      const ang = t * theta ** ((-2 * i) / D);
      const c = Math.cos(ang);
      const s = Math.sin(ang);
      for (let h = 0; h < heads; h++) {
        const o = t * x.cols + h * D;
        const a = x.data[o + i];
        const b = x.data[o + i + D / 2];
        x.data[o + i] = a * c - b * s;
        x.data[o + i + D / 2] = b * c + a * s;
      }
    }
}

/**
 * Logits [T, vocab] for `tokens` (a fresh sequence, positions 0..T-1), optionally
 * with weights replaced (e.g. by their int8-dequantized or 2:4-pruned versions).
 */
export function referenceLogits(dir: string, tokens: number[], override?: Map<string, Float64Array>): Float64Array {
  const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const W = readWeights(dir);
  const get = (name: string) => {
    const w = W.get(name);
    if (!w) throw new Error(`reference: missing ${name}`);
    const o = override?.get(name);
    return o ? { shape: w.shape, data: o } : w;
  };
  const H = cfg.hidden_size;
  const heads = cfg.num_attention_heads;
  const kvHeads = cfg.num_key_value_heads ?? heads;
  const D = cfg.head_dim ?? H / heads;
  const eps = cfg.rms_norm_eps;
  const theta = cfg.rope_theta ?? 10000;
  const T = tokens.length;
  const emb = get('model.embed_tokens.weight');
  let h: Mat = { data: new Float64Array(T * H), rows: T, cols: H };
  tokens.forEach((id, t) => h.data.set(emb.data.subarray(id * H, (id + 1) * H), t * H));
  const hasBias = W.has('model.layers.0.self_attn.q_proj.bias');
  // Sliding window per layer, as transformers' Mistral and Qwen2 attention masks do:
  // query i sees key j iff j <= i and i − j < window.
  const arch = cfg.architectures[0];
  const windowOf = (l: number): number => {
    if (cfg.sliding_window == null || arch === 'LlamaForCausalLM') return Infinity;
    if (arch === 'MistralForCausalLM') return cfg.use_sliding_window === false ? Infinity : cfg.sliding_window;
    if (cfg.use_sliding_window !== true) return Infinity;
    if (cfg.layer_types) return cfg.layer_types[l] === 'sliding_attention' ? cfg.sliding_window : Infinity;
    return l >= (cfg.max_window_layers ?? 28) ? cfg.sliding_window : Infinity;
  };
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    const win = windowOf(l);
    const p = `model.layers.${l}`;
    const x = rmsnorm(h, get(`${p}.input_layernorm.weight`).data, eps);
    const q = linear(x, get(`${p}.self_attn.q_proj.weight`), hasBias ? get(`${p}.self_attn.q_proj.bias`) : undefined);
    const k = linear(x, get(`${p}.self_attn.k_proj.weight`), hasBias ? get(`${p}.self_attn.k_proj.bias`) : undefined);
    const v = linear(x, get(`${p}.self_attn.v_proj.weight`), hasBias ? get(`${p}.self_attn.v_proj.bias`) : undefined);
    ropeHalf(q, heads, D, theta);
    ropeHalf(k, kvHeads, D, theta);
    const att: Mat = { data: new Float64Array(T * heads * D), rows: T, cols: heads * D };
    const group = heads / kvHeads;
    for (let hh = 0; hh < heads; hh++) {
      const kv = Math.floor(hh / group);
      for (let i = 0; i < T; i++) {
        const scores: number[] = [];
        const j0 = Math.max(0, i - win + 1);
        for (let j = j0; j <= i; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += q.data[i * q.cols + hh * D + d] * k.data[j * k.cols + kv * D + d];
          scores.push(s / Math.sqrt(D));
        }
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) {
          let o = 0;
          for (let j = j0; j <= i; j++) o += (e[j - j0] / z) * v.data[j * v.cols + kv * D + d];
          att.data[i * att.cols + hh * D + d] = o;
        }
      }
    }
    const o = linear(att, get(`${p}.self_attn.o_proj.weight`));
    for (let i = 0; i < h.data.length; i++) h.data[i] += o.data[i];
    const x2 = rmsnorm(h, get(`${p}.post_attention_layernorm.weight`).data, eps);
    const g = linear(x2, get(`${p}.mlp.gate_proj.weight`));
    const u = linear(x2, get(`${p}.mlp.up_proj.weight`));
    for (let i = 0; i < g.data.length; i++) g.data[i] = (g.data[i] / (1 + Math.exp(-g.data[i]))) * u.data[i];
    const dn = linear(g, get(`${p}.mlp.down_proj.weight`));
    for (let i = 0; i < h.data.length; i++) h.data[i] += dn.data[i];
  }
  h = rmsnorm(h, get('model.norm.weight').data, eps);
  const head = W.has('lm_head.weight') ? get('lm_head.weight') : get('model.embed_tokens.weight');
  return linear(h, head).data;
}
