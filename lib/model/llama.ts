// Llama-family decoder (LlamaForCausalLM / MistralForCausalLM / Qwen2ForCausalLM):
// loading a Hugging Face directory onto a device, and the forward pass over a batch of
// token chunks from many sequences at once, reading and writing the paged KV cache.
import { devices } from '../device.js';
import type { DType } from '../dtype.js';
import { listModelTensors, readTensorBytes, type TensorInfo } from '../loaders/safetensors.js';
import { ModelTokenizer } from '../loaders/tokenizer.js';
import { pagedAttention } from '../ops/attention.js';
import { add, embedding, rmsNorm, siluMul } from '../ops/elementwise.js';
import * as int8 from '../ops/int8.js';
import { matmul } from '../ops/matmul.js';
import { ropeAndCache, type RopeOptions } from '../ops/rope.js';
import * as sparse24 from '../ops/sparse24.js';
import { tensor, type Tensor } from '../tensor.js';
import { describe as describeValue } from '../validate.js';
import { loadConfig, type ModelConfig } from './config.js';
import { Engine, type Completion, type GenerateOptions, type GeneratedToken, type Prompt } from './engine.js';
import { PagedKvCache } from './kv-cache.js';

export type WeightFormat = 'dense' | 'int8' | 'sparse24';
type Linear = Tensor | int8.Int8Weight | sparse24.Sparse24Weight;

export interface LoadOptions {
  /** 'auto' (a GPU when there is one, else cpu), 'cpu', 'simt', 'cuda:0' */
  device?: string;
  /** activation / dense-weight / KV-cache dtype (default f16) */
  dtype?: 'f32' | 'f16' | 'bf16';
  weights?: WeightFormat;
  /** tokens per sequence the KV cache must hold (default min(config max, 2048)) */
  contextSize?: number;
  /** concurrent sequences the KV cache is sized for (default 4) */
  maxSequences?: number;
  /** tokens per KV page (default 64) */
  kvPageSize?: number;
  onProgress?: (p: { loadedBytes: number; totalBytes: number; tensor: string }) => void;
  signal?: AbortSignal;
  /** called with warnings (e.g. magnitude pruning of non-2:4 weights); default console.warn */
  onWarning?: (msg: string) => void;
}

interface Layer {
  inNorm: Tensor;
  q: Linear;
  k: Linear;
  v: Linear;
  qBias?: Tensor;
  kBias?: Tensor;
  vBias?: Tensor;
  o: Linear;
  postNorm: Tensor;
  gate: Linear;
  up: Linear;
  down: Linear;
}

/** One chunk of one sequence in a forward pass: tokens at positions start.. */
export interface BatchItem {
  seq: number;
  tokens: number[];
  /** return logits for every token of the chunk (else only the last) */
  allLogits?: boolean;
}

function linear(x: Tensor, w: Linear, bias?: Tensor): Tensor {
  if (w instanceof int8.Int8Weight) return int8.matmul(x, w, { bias });
  if (w instanceof sparse24.Sparse24Weight) return sparse24.matmul(x, w, { bias });
  return matmul(x, w, { bias });
}

function disposeLinear(w: Linear | undefined): void {
  w?.dispose();
}

export class LlamaModel {
  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: ModelTokenizer,
    readonly device: string,
    readonly dtype: DType,
    readonly weightFormat: WeightFormat,
    private readonly embed: Tensor,
    private readonly layers: Layer[],
    private readonly finalNorm: Tensor,
    private readonly lmHead: Linear,
    readonly cache: PagedKvCache,
    readonly contextSize: number,
  ) {}

  private disposed = false;

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Loads a Hugging Face model directory (config.json, model.safetensors[.index.json], tokenizer.json). */
  static async load(dir: string, opts: LoadOptions = {}): Promise<LlamaModel> {
    if (typeof dir !== 'string') throw new TypeError(`Expected a model directory path for dir but received ${describeValue(dir)}`);
    const dtype = opts.dtype ?? 'f16';
    if (!['f32', 'f16', 'bf16'].includes(dtype)) throw new TypeError(`Expected f32, f16 or bf16 for opts.dtype but received ${describeValue(dtype)}`);
    const format = opts.weights ?? 'dense';
    if (!['dense', 'int8', 'sparse24'].includes(format))
      throw new TypeError(`Expected 'dense', 'int8' or 'sparse24' for opts.weights but received ${describeValue(format)}`);
    if (format === 'int8' && dtype === 'bf16') throw new TypeError("opts.weights 'int8' needs opts.dtype f16 or f32 (LLM.int8 activations)");
    const device = opts.device === undefined || opts.device === 'auto' ? (devices().find((d) => d.kind === 'cuda')?.name ?? 'cpu') : opts.device;
    if (!devices().some((d) => d.name === device))
      throw new Error(`Unknown or unavailable device '${device}' for opts.device; available: ${devices().map((d) => d.name).join(', ')}`);
    const config = await loadConfig(dir);
    const tokenizer = await ModelTokenizer.load(dir);
    const contextSize = opts.contextSize ?? Math.min(config.maxPositionEmbeddings, 2048);
    const maxSequences = opts.maxSequences ?? 4;
    const pageSize = opts.kvPageSize ?? 64;
    for (const [v, name] of [[contextSize, 'opts.contextSize'], [maxSequences, 'opts.maxSequences'], [pageSize, 'opts.kvPageSize']] as const)
      if (!Number.isInteger(v) || v < 1) throw new RangeError(`Expected a positive integer for ${name} but received ${describeValue(v)}`);
    const infos = await listModelTensors(dir);
    const totalBytes = [...infos.values()].reduce((a, t) => a + t.byteLength, 0);
    let loadedBytes = 0;
    const warn = opts.onWarning ?? ((m: string) => console.warn(`llm-kernels: ${m}`));
    const loaded: { dispose(): void }[] = [];
    const need = (name: string, shape: number[]): TensorInfo => {
      const t = infos.get(name);
      if (!t) throw new Error(`Model ${dir} is missing tensor '${name}'`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
        throw new Error(`Tensor '${name}' has shape [${t.shape.join(', ')}] but the config implies [${shape.join(', ')}]`);
      return t;
    };
    // One tensor at a time: read, upload, drop the host copy.
    const dense = async (name: string, shape: number[]): Promise<Tensor> => {
      opts.signal?.throwIfAborted();
      const info = need(name, shape);
      const bytes = await readTensorBytes(info);
      let t: Tensor;
      if (info.dtype === 'F32') t = tensor(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), shape, { dtype, device });
      else if (info.dtype === 'F16' || info.dtype === 'BF16') {
        const src = info.dtype === 'F16' ? 'f16' : 'bf16';
        const raw = tensor(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2), shape, { dtype: src, device });
        t = src === dtype ? raw : raw.cast(dtype);
        if (t !== raw) raw.dispose();
      } else throw new Error(`Tensor '${name}' has unsupported dtype ${info.dtype} (expected F32, F16 or BF16)`);
      loadedBytes += info.byteLength;
      opts.onProgress?.({ loadedBytes, totalBytes, tensor: name });
      loaded.push(t);
      return t;
    };
    let pruned = 0;
    const lin = async (name: string, shape: number[]): Promise<Linear> => {
      const w = await dense(name, shape);
      if (format === 'dense') return w;
      loaded.pop();
      let out: Linear;
      if (format === 'int8') {
        out = int8.quantizeWeight(w);
      } else {
        try {
          out = await sparse24.compress(w);
        } catch {
          pruned++;
          const p = sparse24.prune(w);
          out = await sparse24.compress(p);
          p.dispose();
        }
      }
      w.dispose();
      loaded.push(out);
      return out;
    };
    try {
      const c = config;
      const qDim = c.numHeads * c.headDim;
      const kvDim = c.numKvHeads * c.headDim;
      const embed = await dense('model.embed_tokens.weight', [c.vocabSize, c.hiddenSize]);
      const layers: Layer[] = [];
      for (let l = 0; l < c.numLayers; l++) {
        const p = `model.layers.${l}`;
        layers.push({
          inNorm: await dense(`${p}.input_layernorm.weight`, [c.hiddenSize]),
          q: await lin(`${p}.self_attn.q_proj.weight`, [qDim, c.hiddenSize]),
          k: await lin(`${p}.self_attn.k_proj.weight`, [kvDim, c.hiddenSize]),
          v: await lin(`${p}.self_attn.v_proj.weight`, [kvDim, c.hiddenSize]),
          qBias: c.attentionBias ? await dense(`${p}.self_attn.q_proj.bias`, [qDim]) : undefined,
          kBias: c.attentionBias ? await dense(`${p}.self_attn.k_proj.bias`, [kvDim]) : undefined,
          vBias: c.attentionBias ? await dense(`${p}.self_attn.v_proj.bias`, [kvDim]) : undefined,
          o: await lin(`${p}.self_attn.o_proj.weight`, [c.hiddenSize, qDim]),
          postNorm: await dense(`${p}.post_attention_layernorm.weight`, [c.hiddenSize]),
          gate: await lin(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, c.hiddenSize]),
          up: await lin(`${p}.mlp.up_proj.weight`, [c.intermediateSize, c.hiddenSize]),
          down: await lin(`${p}.mlp.down_proj.weight`, [c.hiddenSize, c.intermediateSize]),
        });
      }
      const finalNorm = await dense('model.norm.weight', [c.hiddenSize]);
      let lmHead: Linear;
      if (c.tieWordEmbeddings || !infos.has('lm_head.weight')) {
        if (!c.tieWordEmbeddings) throw new Error(`Model ${dir} is missing tensor 'lm_head.weight' (tie_word_embeddings is false)`);
        lmHead = embed; // the output projection stays dense when tied to the embedding table
      } else {
        lmHead = await lin('lm_head.weight', [c.vocabSize, c.hiddenSize]);
      }
      if (pruned)
        warn(`${pruned} weight matrices were not 2:4 sparse and were pruned by magnitude: expect a large accuracy loss (use a 2:4 checkpoint or Wanda pruning)`);
      const pagesPerSeq = Math.ceil(contextSize / pageSize);
      const cache = new PagedKvCache(c.numLayers, pagesPerSeq * maxSequences, pageSize, c.numKvHeads, c.headDim, dtype, device);
      return new LlamaModel(config, tokenizer, device, dtype, format, embed, layers, finalNorm, lmHead, cache, contextSize);
    } catch (e) {
      for (const t of loaded) t.dispose();
      throw e;
    }
  }

  private get ropeOptions(): RopeOptions {
    return { base: this.config.ropeTheta, style: 'neox', scaling: this.config.ropeScaling };
  }

  /**
   * One forward pass over chunks of several sequences (continuous batching): appends
   * their tokens to the KV cache and returns f32 logits, [rows, vocab] flat, where rows
   * are each item's last token (or all its tokens with allLogits).
   */
  async forward(items: BatchItem[]): Promise<Float32Array> {
    if (this.disposed) throw new Error('LlamaModel has been disposed');
    const c = this.config;
    const device = this.device;
    const ids: number[] = [];
    const positions: number[] = [];
    const slots: number[] = [];
    const rowSeq: number[] = [];
    const pick: number[] = [];
    for (const it of items) {
      for (const id of it.tokens)
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new RangeError(`Expected token ids in [0, ${c.vocabSize}) but received ${describeValue(id)}`);
      const start = this.cache.length(it.seq);
      if (start + it.tokens.length > this.contextSize)
        throw new RangeError(`Sequence ${it.seq} would hold ${start + it.tokens.length} tokens but the context size is ${this.contextSize}`);
      const s = this.cache.append(it.seq, it.tokens.length);
      it.tokens.forEach((id, i) => {
        if (it.allLogits || i === it.tokens.length - 1) pick.push(ids.length);
        ids.push(id);
        positions.push(start + i);
        slots.push(s[i]);
        rowSeq.push(it.seq);
      });
    }
    const T = ids.length;
    // Per-token block-table rows: a prefill token attends to its own sequence's keys
    // up to its position, exactly like a decode token does (pagedAttention on cpu runs
    // a chunk's rows as one causal prefill block).
    const maxPages = Math.max(1, ...items.map((it) => this.cache.pages(it.seq).length));
    const bt = new Int32Array(T * maxPages);
    const lens = new Int32Array(T);
    for (let t = 0; t < T; t++) {
      bt.set(this.cache.pages(rowSeq[t]), t * maxPages);
      lens[t] = positions[t] + 1;
    }
    const tmp: { dispose(): void }[] = [];
    const keep = <X extends { dispose(): void }>(x: X): X => {
      tmp.push(x);
      return x;
    };
    try {
      const tIds = keep(tensor(Int32Array.from(ids), [T], { device }));
      const tPos = keep(tensor(Int32Array.from(positions), [T], { device }));
      const tSlots = keep(tensor(Int32Array.from(slots), [T], { device }));
      const tBt = keep(tensor(bt, [T, maxPages], { device }));
      const tLens = keep(tensor(lens, [T], { device }));
      let h = keep(embedding(this.embed, tIds));
      const eps = c.rmsNormEps;
      for (let l = 0; l < c.numLayers; l++) {
        const L = this.layers[l];
        const x = keep(rmsNorm(h, L.inNorm, eps));
        const q = keep(linear(x, L.q, L.qBias)).reshape([T, c.numHeads, c.headDim]);
        keep(q);
        const k = keep(keep(linear(x, L.k, L.kBias)).reshape([T, c.numKvHeads, c.headDim]));
        const v = keep(keep(linear(x, L.v, L.vBias)).reshape([T, c.numKvHeads, c.headDim]));
        ropeAndCache(q, k, v, tPos, { kCache: this.cache.k[l], vCache: this.cache.v[l], slots: tSlots }, this.ropeOptions);
        const att = keep(pagedAttention(q, this.cache.k[l], this.cache.v[l], tBt, tLens, { window: c.layerWindows[l] }).out);
        const o = keep(linear(keep(att.reshape([T, c.numHeads * c.headDim])), L.o));
        h = keep(add(h, o));
        const x2 = keep(rmsNorm(h, L.postNorm, eps));
        const act = keep(siluMul(keep(linear(x2, L.gate)), keep(linear(x2, L.up))));
        h = keep(add(h, keep(linear(act, L.down))));
        // Free this layer's activations as soon as the queue is past them.
        for (const t of tmp.splice(5)) if (t !== h) t.dispose();
        tmp.push(h);
      }
      const hn = keep(rmsNorm(h, this.finalNorm, eps));
      const rows = keep(embedding(hn, keep(tensor(Int32Array.from(pick), [pick.length], { device }))));
      const logits = keep(linear(rows, this.lmHead));
      const out = await logits.toArray();
      return out instanceof Float32Array ? out : Float32Array.from(out);
    } finally {
      for (const t of tmp) t.dispose();
    }
  }

  private engine?: Engine;

  /**
   * Streams generated tokens. Concurrent calls share one batched forward pass per step.
   * @example for await (const { text } of model.generate('Hello', { maxTokens: 32 })) process.stdout.write(text)
   */
  generate(prompt: Prompt, opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken, Completion> {
    if (this.disposed) throw new Error('generate() on a disposed model');
    this.engine ??= new Engine(this);
    return this.engine.generate(prompt, opts);
  }

  /** Generates to completion: { text, tokens, finishReason, usage }. */
  async complete(prompt: Prompt, opts: GenerateOptions = {}): Promise<Completion> {
    const it = this.generate(prompt, opts);
    for (;;) {
      const r = await it.next();
      if (r.done) return r.value;
    }
  }

  /** Logits [T, vocab] (flat) of a fresh sequence of `tokens`, for verification. */
  async logits(tokens: number[]): Promise<Float32Array> {
    const seq = -1 - Math.floor(Math.random() * 1e9);
    try {
      return await this.forward([{ seq, tokens, allLogits: true }]);
    } finally {
      this.cache.release(seq);
    }
  }

  /** Frees weights and the KV cache (device memory) now. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const seen = new Set<unknown>();
    const free = (w: Linear | undefined) => {
      if (!w || seen.has(w)) return;
      seen.add(w);
      disposeLinear(w);
    };
    free(this.embed);
    free(this.lmHead);
    free(this.finalNorm);
    for (const L of this.layers) for (const w of Object.values(L)) free(w as Linear | undefined);
    this.cache.dispose();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.dispose();
  }
}
