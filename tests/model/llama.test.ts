// The decoder end to end on the tiny demo model: logits against the independent fp64
// reference (tests/reference/llama.ts) for every weight format, incremental decoding
// vs recomputation, continuous batching vs sequences run alone, aborts, bad input.
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDemoModel, LlamaModel } from '../../lib/index.js';
import { IncrementalText } from '../../lib/model/engine.js';
import { compare, DEVICES, nativeForTests } from '../helpers.js';
import { readWeights, referenceLogits } from '../reference/llama.js';
import { pruneRef } from '../reference/sparse24.js';

const dir32 = mkdtempSync(join(tmpdir(), 'llmk-tiny32-'));
const dir16 = mkdtempSync(join(tmpdir(), 'llmk-tiny16-'));
const dirQwen = mkdtempSync(join(tmpdir(), 'llmk-qwen-'));
const PROMPT = 'Hello world! The quick brown fox — café 😀';

beforeAll(async () => {
  await createDemoModel(dir32, 'tiny', { dtype: 'f32', seed: 7 });
  await createDemoModel(dir16, 'tiny', { dtype: 'f16', seed: 8 });
  await createDemoModel(dirQwen, 'tiny', { dtype: 'f32', seed: 9, attentionBias: true, tieWordEmbeddings: false });
});

// Linear weights the formats transform (embeddings, norms and a tied head stay dense).
const isLinear = (name: string) => /\.(q|k|v|o|gate|up|down)_proj\.weight$/.test(name);

function int8Weights(dir: string): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, w] of readWeights(dir)) {
    if (!isLinear(name)) continue;
    const [N, K] = w.shape;
    const deq = new Float64Array(N * K);
    for (let n = 0; n < N; n++) {
      let mx = 0;
      for (let k = 0; k < K; k++) mx = Math.max(mx, Math.abs(w.data[n * K + k]));
      const sw = Math.fround(mx);
      for (let k = 0; k < K; k++) deq[n * K + k] = (Math.round((w.data[n * K + k] * 127) / sw) * sw) / 127;
    }
    out.set(name, deq);
  }
  return out;
}

function prunedWeights(dir: string): Map<string, Float64Array> {
  const out = new Map<string, Float64Array>();
  for (const [name, w] of readWeights(dir)) if (isLinear(name)) out.set(name, pruneRef(w.data, w.shape[0], w.shape[1]));
  return out;
}

/** A copy of a model directory with config.json fields replaced. */
function configVariant(src: string, patch: Record<string, unknown>): string {
  const d = mkdtempSync(join(tmpdir(), 'llmk-variant-'));
  for (const f of readdirSync(src)) copyFileSync(join(src, f), join(d, f));
  const cfg = JSON.parse(readFileSync(join(d, 'config.json'), 'utf8'));
  writeFileSync(join(d, 'config.json'), JSON.stringify({ ...cfg, ...patch }));
  return d;
}

describe.each(DEVICES)('LlamaModel on %s', (device) => {
  it.each([
    ['f32 dense', 'f32', 'dense', 2e-5],
    ['f16 dense', 'f16', 'dense', 2e-2],
    ['Qwen2-style (q/k/v biases, untied head)', 'f32', 'dense', 2e-5],
    // activations are quantized per row at run time, the reference sees only the weights' rounding
    ['int8 (LLM.int8 weights)', 'f32', 'int8', 5e-2],
    ['sparse24 (magnitude-pruned)', 'f32', 'sparse24', 2e-5],
  ] as const)('%s: logits match the fp64 reference', async (label, dtype, weights, tol) => {
    const dir = label.startsWith('Qwen') ? dirQwen : dtype === 'f16' ? dir16 : dir32;
    const warnings: string[] = [];
    const model = await LlamaModel.load(dir, { device, dtype, weights, onWarning: (m) => warnings.push(m) });
    try {
      const tokens = model.tokenizer.encode(PROMPT);
      const got = await model.logits(tokens);
      const override = weights === 'int8' ? int8Weights(dir) : weights === 'sparse24' ? prunedWeights(dir) : undefined;
      const s = compare(got, referenceLogits(dir, tokens, override));
      expect(s.nonFinite).toBe(0);
      expect(s.relNorm, label).toBeLessThanOrEqual(tol);
      if (weights === 'sparse24') expect(warnings.join()).toMatch(/pruned by magnitude/);
    } finally {
      await model.dispose();
    }
  });

  it.each([
    ['Mistral, sliding_window 5 on every layer', 'mistral', { architectures: ['MistralForCausalLM'], sliding_window: 5 }],
    ['Qwen2, use_sliding_window from layer 1 (max_window_layers)', 'qwen', { use_sliding_window: true, sliding_window: 3, max_window_layers: 1 }],
    ['Qwen2, layer_types', 'qwen', { use_sliding_window: true, sliding_window: 4, layer_types: ['sliding_attention', 'full_attention'] }],
  ] as const)('%s: logits match the fp64 reference with the window', async (label, base, patch) => {
    const dir = configVariant(base === 'qwen' ? dirQwen : dir32, patch);
    const model = await LlamaModel.load(dir, { device, dtype: 'f32' });
    try {
      expect(model.config.layerWindows.some((w) => w > 0)).toBe(true);
      const tokens = model.tokenizer.encode(PROMPT);
      expect(tokens.length).toBeGreaterThan(12);
      const ref = referenceLogits(dir, tokens);
      const s = compare(await model.logits(tokens), ref);
      expect(s.nonFinite).toBe(0);
      expect(s.relNorm, label).toBeLessThanOrEqual(2e-5);
      // the window changes the result for this prompt (else the check above proves nothing)
      expect(compare(Float32Array.from(ref), referenceLogits(base === 'qwen' ? dirQwen : dir32, tokens)).relNorm).toBeGreaterThan(1e-3);
    } finally {
      await model.dispose();
    }
  });

  it('incremental decoding with the cache equals recomputing the prefix; greedy is reproducible', async () => {
    const model = await LlamaModel.load(dir32, { device, dtype: 'f32', kvPageSize: 4 });
    try {
      const tokens = model.tokenizer.encode(PROMPT);
      const full = await model.logits(tokens);
      const V = model.config.vocabSize;
      // feed the same tokens in chunks of 3, 1, 5, ... through the cache
      const rows: Float32Array[] = [];
      let i = 0;
      const sizes = [3, 1, 5, 2, 7, 1, 100];
      for (const n of sizes) {
        if (i >= tokens.length) break;
        const chunk = tokens.slice(i, i + n);
        rows.push(await model.forward([{ seq: 77, tokens: chunk, allLogits: true }]));
        i += chunk.length;
      }
      model.cache.release(77);
      const inc = new Float32Array(rows.reduce((a, r) => a + r.length, 0));
      let o = 0;
      for (const r of rows) {
        inc.set(r, o);
        o += r.length;
      }
      expect(inc.length).toBe(tokens.length * V);
      expect(compare(inc, full).relNorm).toBeLessThanOrEqual(1e-5);
      const a = await model.complete(PROMPT, { maxTokens: 12, temperature: 0 });
      const b = await model.complete(PROMPT, { maxTokens: 12, temperature: 0 });
      expect(a.tokens).toEqual(b.tokens);
      const s1 = await model.complete(PROMPT, { maxTokens: 12, temperature: 1, seed: 5 });
      const s2 = await model.complete(PROMPT, { maxTokens: 12, temperature: 1, seed: 5 });
      expect(s1.tokens).toEqual(s2.tokens);
    } finally {
      await model.dispose();
    }
  });

  it('concurrent sequences give the same tokens as each run alone; aborts return their pages', async () => {
    const model = await LlamaModel.load(dir32, { device, dtype: 'f32', maxSequences: 4, kvPageSize: 8, contextSize: 128 });
    try {
      const prompts = ['Hello', 'The quick brown fox jumps', 'café 😀 numbers 1 2 3', 'A server in Node.js'];
      const alone = [];
      for (const p of prompts) alone.push((await model.complete(p, { maxTokens: 10, temperature: 0 })).tokens);
      const free = model.cache.freePages;
      const together = await Promise.all(prompts.map((p) => model.complete(p, { maxTokens: 10, temperature: 0 })));
      expect(together.map((r) => r.tokens)).toEqual(alone);
      expect(model.cache.freePages).toBe(free);
      const ac = new AbortController();
      const it = model.generate('Hello world', { maxTokens: 1000, temperature: 0, signal: ac.signal });
      await it.next();
      await it.next();
      expect(model.cache.freePages).toBeLessThan(free);
      ac.abort();
      let r = await it.next();
      while (!r.done) r = await it.next();
      expect(r.value.finishReason).toBe('abort');
      expect(model.cache.freePages).toBe(free);
    } finally {
      await model.dispose();
    }
  });
});

describe.runIf(DEVICES.includes('simt'))('LlamaModel on the CUDA backend code (simt)', () => {
  it('a decode step waits for the device once: for its logits (uploads, checks and layers add no wait)', async () => {
    const model = await LlamaModel.load(dir32, { device: 'simt', dtype: 'f32' });
    try {
      const n = nativeForTests();
      await model.forward([{ seq: 1, tokens: [5, 6, 7] }]);
      const before = n.simtHostSyncs!();
      await model.forward([{ seq: 1, tokens: [8] }]);
      // The logits download, which also reads the kernels' error slots. Each of the 6
      // uploads used to wait, and checking embedding ids, rope slots and page tables per
      // op added 1 + 3 per layer.
      expect(n.simtHostSyncs!() - before).toBe(1);
    } finally {
      await model.dispose();
    }
  });
});

describe('LlamaModel behaviour', () => {
  it('streams whole UTF-8 characters and honours stop strings and maxTokens', async () => {
    const model = await LlamaModel.load(dir32, { device: 'cpu', dtype: 'f32' });
    try {
      // Byte-level BPE splits multi-byte characters over several tokens.
      const tokens = model.tokenizer.encode('😀 café 日本', false);
      const detok = new IncrementalText((t) => model.tokenizer.decode(t));
      const deltas = tokens.map((t) => detok.push(t));
      expect(deltas.some((d) => d === '')).toBe(true); // some tokens end mid-character
      for (const d of deltas) expect(d.includes('\uFFFD')).toBe(false);
      expect(deltas.join('')).toBe('😀 café 日本');
      // A long stream: the same text as decoding everything at once, while each
      // decode call sees a bounded window (O(1) per token, not the whole history).
      const long = Array.from({ length: 40 }, () => tokens).flat();
      let widest = 0;
      const windowed = new IncrementalText((t) => {
        widest = Math.max(widest, t.length);
        return model.tokenizer.decode(t);
      });
      expect(long.map((t) => windowed.push(t)).join('')).toBe(model.tokenizer.decode(long));
      expect(windowed.text).toBe(model.tokenizer.decode(long));
      expect(widest).toBeLessThanOrEqual(16);
      let text = '';
      const it = model.generate('Hello', { maxTokens: 24, temperature: 0.9, seed: 3 });
      let r = await it.next();
      while (!r.done) {
        text += r.value.text;
        r = await it.next();
      }
      expect(r.value.text).toBe(text);
      expect(['length', 'stop']).toContain(r.value.finishReason);
      const full = await model.complete('Hello', { maxTokens: 16, temperature: 0 });
      const cut = full.text.slice(2, 4);
      if (cut) {
        const stopped = await model.complete('Hello', { maxTokens: 16, temperature: 0, stop: [cut] });
        expect(stopped.text).toBe(full.text.slice(0, full.text.indexOf(cut)));
        expect(stopped.finishReason).toBe('stop');
      }
      const chat = await model.complete([{ role: 'user', content: 'hi' }], { maxTokens: 3, temperature: 0 });
      expect(chat.usage.promptTokens).toBe(model.tokenizer.encode(model.tokenizer.applyChatTemplate([{ role: 'user', content: 'hi' }]), false).length);
    } finally {
      await model.dispose();
    }
  });

  it('a full KV cache ends a sequence with finishReason length, never touching others', async () => {
    const model = await LlamaModel.load(dir32, { device: 'cpu', dtype: 'f32', maxSequences: 1, contextSize: 16, kvPageSize: 4 });
    try {
      const r = await model.complete('Hello world', { maxTokens: 100, temperature: 0 });
      expect(r.finishReason).toBe('length');
      expect(r.usage.promptTokens + r.usage.completionTokens).toBeLessThanOrEqual(16);
    } finally {
      await model.dispose();
    }
  });

  it('rejects bad input clearly', async () => {
    await expect(LlamaModel.load('/nonexistent-model-dir')).rejects.toThrow(/config.json/);
    await expect(LlamaModel.load(dir32, { weights: 'fp4' as never })).rejects.toThrow(/Expected 'dense', 'int8' or 'sparse24' for opts.weights/);
    await expect(LlamaModel.load(dir32, { device: 'tpu' })).rejects.toThrow(/Unknown or unavailable device 'tpu'/);
    const model = await LlamaModel.load(dir32, { device: 'cpu', dtype: 'f32', contextSize: 32 });
    await expect(model.complete('x'.repeat(200))).rejects.toThrow(/context size is 32/);
    await expect(model.complete([1, 99999])).rejects.toThrow(/token ids in \[0, 384\)/);
    await expect(model.complete('hi', { temperature: -1 })).rejects.toThrow(/temperature/);
    await expect(model.complete('hi', { topP: 2 })).rejects.toThrow(/topP/);
    await model.dispose();
    expect(() => model.generate('hi')).toThrow(/disposed/);
  });
});
