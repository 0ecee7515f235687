// Model-directory loading: sharded safetensors equal the single file, and malformed
// files (safetensors header, config.json, tokenizer.json) fail with clear errors.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDemoModel, LlamaModel } from '../../lib/index.js';
import { listModelTensors, readSafetensorsHeader, readTensorBytes, writeSafetensors } from '../../lib/loaders/safetensors.js';
import { parseConfig } from '../../lib/model/config.js';

const base = mkdtempSync(join(tmpdir(), 'llmk-load-'));
const model = join(base, 'model');

beforeAll(async () => {
  await createDemoModel(model, 'tiny', { dtype: 'f32', seed: 11 });
});

function copyModel(name: string): string {
  const dir = join(base, name);
  cpSync(model, dir, { recursive: true });
  return dir;
}

describe('model loading', () => {
  it('a sharded checkpoint (model.safetensors.index.json) gives the same logits as the single file', async () => {
    const dir = copyModel('sharded');
    const infos = [...(await listModelTensors(model)).values()];
    const half = Math.ceil(infos.length / 2);
    const shards = [infos.slice(0, half), infos.slice(half)];
    const weightMap: Record<string, string> = {};
    for (const [i, shard] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      const bytes = await Promise.all(shard.map((t) => readTensorBytes(t)));
      await writeSafetensors(join(dir, file), shard.map((t, j) => ({ name: t.name, dtype: t.dtype as 'F32', shape: t.shape, data: () => bytes[j] })));
      for (const t of shard) weightMap[t.name] = file;
    }
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    writeFileSync(join(dir, 'model.safetensors'), 'not used when an index exists');
    const a = await LlamaModel.load(model, { device: 'cpu', dtype: 'f32' });
    const b = await LlamaModel.load(dir, { device: 'cpu', dtype: 'f32' });
    const tokens = a.tokenizer.encode('shards must not change anything');
    expect(Array.from(await b.logits(tokens))).toEqual(Array.from(await a.logits(tokens)));
    await a.dispose();
    await b.dispose();
  });

  it('reports progress and honours an abort signal', async () => {
    const seen: number[] = [];
    const m = await LlamaModel.load(model, { device: 'cpu', onProgress: (p) => seen.push(p.loadedBytes / p.totalBytes) });
    expect(seen.length).toBeGreaterThan(5);
    expect(seen.at(-1)).toBeCloseTo(1, 10);
    expect(seen.every((v, i) => i === 0 || v >= seen[i - 1])).toBe(true);
    await m.dispose();
    const ac = new AbortController();
    ac.abort();
    await expect(LlamaModel.load(model, { device: 'cpu', signal: ac.signal })).rejects.toThrow(/abort/i);
  });

  it('rejects malformed safetensors files clearly', async () => {
    const file = join(model, 'model.safetensors');
    const good = readFileSync(file);
    const bad = (name: string, buf: Buffer) => {
      const p = join(base, name);
      writeFileSync(p, buf);
      return readSafetensorsHeader(p);
    };
    await expect(bad('short.safetensors', Buffer.from([1, 2, 3]))).rejects.toThrow(/shorter than the 8-byte header length/);
    const huge = Buffer.from(good);
    huge.writeBigUInt64LE(BigInt(good.length * 2), 0);
    await expect(bad('huge.safetensors', huge)).rejects.toThrow(/header length .* does not fit/);
    const notJson = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{{{{')]);
    await expect(bad('json.safetensors', notJson)).rejects.toThrow(/header is not valid JSON/);
    const truncated = good.subarray(0, good.length - 100);
    await expect(bad('trunc.safetensors', truncated)).rejects.toThrow(/past the end of the file/);
    const dir = copyModel('truncated');
    writeFileSync(join(dir, 'model.safetensors'), truncated);
    await expect(LlamaModel.load(dir, { device: 'cpu' })).rejects.toThrow(/Malformed safetensors file/);
  });

  it('rejects malformed or unsupported config.json and tokenizer.json clearly', async () => {
    const cfg = JSON.parse(readFileSync(join(model, 'config.json'), 'utf8'));
    expect(() => parseConfig({ ...cfg, architectures: ['GPT2LMHeadModel'] })).toThrow(/unsupported architectures \["GPT2LMHeadModel"\]/);
    expect(() => parseConfig({ ...cfg, hidden_size: undefined })).toThrow(/missing hidden_size/);
    expect(() => parseConfig({ ...cfg, num_key_value_heads: 3 })).toThrow(/multiple of num_key_value_heads \(3\)/);
    expect(() => parseConfig({ ...cfg, hidden_act: 'gelu' })).toThrow(/hidden_act 'gelu' is not supported/);
    expect(() => parseConfig({ ...cfg, rope_scaling: { type: 'longrope', factor: 2 } })).toThrow(/Unsupported rope_scaling type/);
    const mistral = { ...cfg, architectures: ['MistralForCausalLM'] };
    expect(() => parseConfig({ ...mistral, sliding_window: 0 })).toThrow(/expected a positive integer or null for sliding_window but found 0/);
    expect(parseConfig({ ...mistral, sliding_window: null }).layerWindows.every((w) => w === 0)).toBe(true);
    expect(parseConfig({ ...cfg, sliding_window: 4 }).layerWindows.every((w) => w === 0)).toBe(true); // Llama ignores it
    expect(() => parseConfig({ ...cfg, architectures: ['Qwen2ForCausalLM'], use_sliding_window: true, sliding_window: 4, layer_types: ['full_attention'] })).toThrow(
      /expected layer_types to list 'sliding_attention' or 'full_attention' for each of the 2 layers/,
    );
    const d1 = copyModel('badconfig');
    writeFileSync(join(d1, 'config.json'), '{ not json');
    await expect(LlamaModel.load(d1, { device: 'cpu' })).rejects.toThrow(/Malformed .*config.json/);
    const d2 = copyModel('badtok');
    writeFileSync(join(d2, 'tokenizer.json'), JSON.stringify({ model: {} }));
    await expect(LlamaModel.load(d2, { device: 'cpu' })).rejects.toThrow(/tokenizer.json: missing model.vocab/);
    const d3 = copyModel('wrongshape');
    writeFileSync(join(d3, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: cfg.intermediate_size + 8 }));
    await expect(LlamaModel.load(d3, { device: 'cpu' })).rejects.toThrow(/has shape \[160, 64\] but the config implies \[168, 64\]/);
  });
});
