// Decoder throughput on a random-weight demo model (default: the TinyLlama-shaped '1b'
// preset): prefill tokens/s and decode tokens/s for dense f16, int8 and 2:4 weights,
// at batch 1 and with N concurrent sequences (continuous batching).
//   npx tsx bench/decode.ts [--preset 1b|small|tiny] [--device cpu] [--weights dense,int8,sparse24] [--batch 8]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createDemoModel, LlamaModel, type DemoPreset, type WeightFormat } from '../lib/index.js';
import { machineInfo } from './machine.js';
import { measurePeaks } from './peak.js';
import { updateReadme } from './readme.js';
import { median } from './stats.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : dflt;
}

const preset = arg('--preset', '1b') as DemoPreset;
const device = arg('--device', 'cpu');
const formats = arg('--weights', 'dense,int8,sparse24').split(',') as WeightFormat[];
const batch = Number(arg('--batch', '8'));
const promptTokens = Number(arg('--prompt-tokens', '128'));
const decodeTokens = Number(arg('--decode-tokens', '32'));
const dir = join(process.cwd(), '.cache', `demo-${preset}`);
if (!existsSync(join(dir, 'model.safetensors'))) {
  const t0 = performance.now();
  await createDemoModel(dir, preset);
  console.log(`created ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}

const rows = [];
for (const weights of formats) {
  const t0 = performance.now();
  const model = await LlamaModel.load(dir, { device, dtype: 'f16', weights, maxSequences: batch, contextSize: promptTokens + decodeTokens + 8, onWarning: () => {} });
  const loadS = (performance.now() - t0) / 1000;
  const prompt = Array.from({ length: promptTokens }, (_, i) => 3 + ((i * 7919) % (model.config.vocabSize - 3)));
  // warm-up (first-touch of activation buffers, lazy init), then batch 1: prefill once, greedy decode
  await model.complete(prompt, { maxTokens: 2, temperature: 0 });
  // Batch 1: prefill = prompt tokens / time to the first token; decode = 1 / the median
  // gap between tokens (robust to the odd slow step on a shared VM).
  const t1 = performance.now();
  const stamps: number[] = [];
  for await (const _ of model.generate(prompt, { maxTokens: decodeTokens, temperature: 0 })) stamps.push(performance.now());
  const prefill = (1000 * promptTokens) / (stamps[0] - t1);
  const decode = 1000 / median(stamps.slice(1).map((t, i) => t - stamps[i]));
  // N concurrent sequences: aggregate decode tokens/s once all have been prefilled
  const tb = performance.now();
  const rs = await Promise.all(
    Array.from({ length: batch }, (_, s) => model.complete(prompt.map((t) => (t + s) % model.config.vocabSize), { maxTokens: decodeTokens, temperature: 0 })),
  );
  const wall = (performance.now() - tb) / 1000;
  const decodeAll = rs.reduce((a, x) => a + x.usage.completionTokens, 0);
  const maxPrefill = Math.max(...rs.map((x) => x.usage.prefillMs)) / 1000;
  console.log(
    `${preset} ${weights.padEnd(8)} on ${device}: load ${loadS.toFixed(1)} s | batch 1: prefill ${prefill.toFixed(1)} tok/s, decode ${decode.toFixed(1)} tok/s | ` +
      `batch ${batch}: ${(decodeAll / (wall - maxPrefill)).toFixed(1)} decode tok/s aggregate (${(decodeAll / wall).toFixed(1)} incl. prefill)`,
  );
  rows.push({ preset, weights, device, loadS, prefillTokS: prefill, decodeTokS: decode, batch, batchDecodeTokS: decodeAll / (wall - maxPrefill) });
  await model.dispose();
}
// The 1b preset on cpu is the README's decoder table (bench/readme.ts renders it).
if (preset === '1b' && device === 'cpu') {
  const peaks = await measurePeaks();
  mkdirSync(join(process.cwd(), 'bench', 'results'), { recursive: true });
  writeFileSync(join(process.cwd(), 'bench', 'results', 'decode.json'), `${JSON.stringify({ machine: machineInfo(peaks), peaks, rows }, null, 2)}\n`);
  updateReadme(process.cwd());
}
