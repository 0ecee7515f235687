// Regenerates the measured part of the README's "Performance" section (between the
// `<!-- performance:begin -->` and `<!-- performance:end -->` markers) from the saved
// results: bench/results/cpu.json (npm run bench; cpu-<name>.json: the same from another
// CPU, a run's cpu.json saved under that name), cuda-0.json (npm run test:gpu, on a
// GPU machine), decode.json (bench/decode.ts) and peers.json (npm run bench:peers). Nothing in that part is typed by hand.
//   npx tsx bench/readme.ts
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CheckRow, PeerRow } from './types.js';

const BEGIN = '<!-- performance:begin -->';
const END = '<!-- performance:end -->';

interface Machine {
  cpu: string;
  isa: string;
  threads: number;
  node: string;
  date: string;
}
interface Peaks {
  fp32Gflops: number;
  bf16Gflops?: number;
  int8Gops: number;
  readGBs: number;
}
/** GPU ceilings measured on the same machine (the bench measures none of its own on a GPU). */
interface GpuCeilings {
  readGBs: number;
  copyGBs: number;
  bf16Tflops: number;
  f16Tflops: number;
  source: string;
}
interface OpRow {
  name: string;
  medianMs: number;
  rate: number;
  unit: string;
  pctOfPeak: number | null;
  readGBsNear?: number;
  baseline?: string;
  speedup?: number;
  usPerCall?: number;
  deviceMs?: number;
  deviceRate?: number;
}
interface DecodeRow {
  preset: string;
  weights: string;
  loadS: number;
  prefillTokS: number;
  decodeTokS: number;
  batch: number;
  batchDecodeTokS: number;
}
const read = <T>(file: string): T | undefined => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined);
const ms = (v: number) => (v < 0.01 ? `${(v * 1e3).toFixed(2)} µs` : v < 1 ? `${(v * 1e3).toFixed(0)} µs` : `${v.toFixed(v < 100 ? 2 : 0)} ms`);
const machineLine = (m: Machine, p: Peaks) =>
  `${m.cpu} (${m.isa}, ${m.threads} threads), Node ${m.node}, ${m.date.slice(0, 10)}; measured peaks: fp32 FMA ${p.fp32Gflops.toFixed(0)} GFLOP/s, ` +
  (p.bf16Gflops ? `bf16 dot product ${p.bf16Gflops.toFixed(0)} GFLOP/s, ` : '') +
  `int8 dot product ${p.int8Gops.toFixed(0)} GOP/s, streaming read ${p.readGBs.toFixed(1)} GB/s`;

export function performanceSection(results: string): string {
  const out: string[] = [];
  // cpu.json: this repository's reference machine (with the chart); cpu-<name>.json: the
  // same bench from another CPU (a run's cpu.json saved under that name), one table each.
  const cpuFiles = ['cpu.json', ...readdirSync(results).filter((f) => /^cpu-[\w.-]+\.json$/.test(f)).sort()];
  for (const file of cpuFiles) {
    const cpu = read<{ machine: Machine; peaks: Peaks; results: OpRow[] }>(join(results, file));
    if (!cpu) continue;
    const main = file === 'cpu.json';
    out.push(`### Kernels (\`npm run bench\`)${main ? '' : `, ${cpu.machine.isa}`}`, '', `${machineLine(cpu.machine, cpu.peaks)}.`, '');
    out.push(
      'Memory-bound rows are taken against the higher of the start-up read probe and one run right after the case ' +
        '(the read bandwidth of this shared VM drifts by up to 1.7× within minutes).',
      '',
    );
    out.push('| case | median | rate | % of peak | vs baseline |', '|---|---|---|---|---|');
    for (const r of cpu.results)
      out.push(
        `| ${r.name} | ${ms(r.medianMs)}${r.unit && r.usPerCall !== undefined ? ` (${ms(r.usPerCall * 1e-3)} per call)` : ''} | ${r.unit ? `${r.rate.toFixed(1)} ${r.unit}` : r.usPerCall !== undefined ? `${r.usPerCall.toFixed(2)} µs per op` : ''} | ` +
          `${r.pctOfPeak === null ? '' : `${r.pctOfPeak.toFixed(0)}%`}${r.readGBsNear && r.pctOfPeak !== null ? ` (read probe after it: ${r.readGBsNear.toFixed(1)} GB/s)` : ''} | ${r.speedup ? `${r.speedup.toFixed(2)}× ${r.baseline}` : ''} |`,
      );
    out.push('', ...(main ? ['![% of measured peak](bench/results/chart.svg)', ''] : []));
  }
  const gpu = read<{ machine: Machine & { gpu: string }; gpuCeilings: GpuCeilings; provenance: string[]; results: OpRow[] }>(
    join(results, 'cuda-0.json'),
  );
  if (gpu) {
    const c = gpu.gpuCeilings;
    out.push(`### CUDA kernels (\`npm run test:gpu\`, cuda:0)`, '', `${gpu.machine.gpu}, ${gpu.machine.date.slice(0, 10)}.`, '');
    out.push(
      `% of ceiling: GB/s against a ${c.readGBs} GB/s read, GFLOP/s against the tensor cores' ${c.f16Tflops} (f16) / ${c.bf16Tflops} (bf16) TFLOP/s ` +
        `(${c.source}); f32 rows run on the CUDA cores and have no tensor-core ceiling. ` +
        gpu.provenance.map((x) => x[0].toUpperCase() + x.slice(1)).join('. ') + '.',
      '',
    );
    // Device time (between stream marks, work issued back to back) where the run has it.
    const dev = gpu.results.some((r) => r.deviceMs !== undefined);
    out.push(
      `| case | median (host: op + sync) | rate | % of ceiling |${dev ? ' device time | device rate | % of ceiling |' : ''} vs baseline |`,
      `|---|---|---|---|${dev ? '---|---|---|' : ''}---|`,
    );
    for (const r of gpu.results) {
      const ceiling = r.unit === 'GB/s' ? c.readGBs : r.unit === 'GFLOP/s' && !/ f32 /.test(r.name) ? 1e3 * (/bf16/.test(r.name) ? c.bf16Tflops : c.f16Tflops) : 0;
      const pct = (rate?: number) => (ceiling && rate ? `${((100 * rate) / ceiling).toFixed(1)}%` : '');
      const devCells = dev
        ? ` ${r.deviceMs !== undefined ? ms(r.deviceMs) : ''} | ${r.deviceRate && r.unit ? `${r.deviceRate.toFixed(1)} ${r.unit}` : ''} | ${pct(r.deviceRate)} |`
        : '';
      out.push(
        `| ${r.name} | ${ms(r.medianMs)}${r.unit && r.usPerCall !== undefined ? ` (${ms(r.usPerCall * 1e-3)} per call)` : ''} | ${r.unit ? `${r.rate.toFixed(1)} ${r.unit}` : r.usPerCall !== undefined ? `${r.usPerCall.toFixed(2)} µs per op` : ''} | ` +
          `${pct(r.rate)} |${devCells} ${r.speedup ? `${r.speedup.toFixed(2)}× ${r.baseline}` : ''} |`,
      );
    }
    out.push('');
  }
  const dec = read<{ machine: Machine; peaks: Peaks; rows: DecodeRow[] }>(join(results, 'decode.json'));
  if (dec) {
    out.push(`### Decoder (\`npx tsx bench/decode.ts --preset 1b\`)`, '', `${machineLine(dec.machine, dec.peaks)}.`, '');
    out.push('| model | weights | load | prefill 128 tokens | decode, batch 1 | decode, concurrent sequences |', '|---|---|---|---|---|---|');
    for (const r of dec.rows)
      out.push(
        `| ${r.preset} | ${r.weights} | ${r.loadS.toFixed(1)} s | ${r.prefillTokS.toFixed(1)} tok/s | ${r.decodeTokS.toFixed(1)} tok/s | ${r.batchDecodeTokS.toFixed(1)} tok/s aggregate (${r.batch} sequences) |`,
      );
    out.push('');
  }
  const peers = read<{ machine: Machine; peaks: Peaks; versions: Record<string, string>; rounds: number; rows: PeerRow[]; check: CheckRow[] }>(join(results, 'peers.json'));
  if (peers) {
    out.push(`### Side by side with onnxruntime and llama.cpp (\`npm run bench:peers\`)`, '');
    out.push(
      `${machineLine(peers.machine, peers.peaks)}; ${Object.entries(peers.versions).map(([k, v]) => `${k} ${v}`).join(', ')}. ` +
        `Each figure is the median over ${peers.rounds} alternating rounds (ours, peer, ours, …) in one process; speed-up > 1 means llm-kernels is faster.`,
      '',
    );
    out.push('| workload | threads | llm-kernels | peer | peer figure | speed-up | notes |', '|---|---|---|---|---|---|---|');
    const f = (r: PeerRow, v: number) => (r.metric === 'ms' ? ms(v) : `${v.toFixed(1)} tok/s`);
    for (const r of peers.rows)
      out.push(`| ${r.workload} | ${r.threads} | ${f(r, r.ours)} | ${r.peerName} | ${f(r, r.peer)} | **${r.speedup.toFixed(2)}×** | ${r.detail ?? ''} |`);
    if (peers.check.length)
      out.push(
        '',
        `Same weights, same answer: next-token probabilities of our f32 forward pass vs llama.cpp on the GGUF export of the ` +
          `\`small\` demo model (${peers.check[0].tokens}-token prompt): ` +
          peers.check.map((c) => `${c.gguf} max |Δp| ${c.maxAbsProbDiff.toExponential(1)}${c.topTokenAgrees ? '' : ' (top token differs)'}`).join(', ') +
          '.',
      );
    out.push('', '![llm-kernels vs peers](bench/results/peers.svg)', '');
  }
  return out.join('\n');
}

/** Rewrites the marked part of root/README.md; returns false when the markers are missing. */
export function updateReadme(root: string): boolean {
  const file = join(root, 'README.md');
  const text = readFileSync(file, 'utf8');
  const a = text.indexOf(BEGIN);
  const b = text.indexOf(END);
  if (a < 0 || b < a) return false;
  const next = `${text.slice(0, a + BEGIN.length)}\n${performanceSection(join(root, 'bench', 'results'))}\n${text.slice(b)}`;
  writeFileSync(file, next);
  return true;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  if (!updateReadme(root)) {
    console.error(`README.md has no ${BEGIN} … ${END} markers`);
    process.exitCode = 1;
  } else console.log('README.md Performance section regenerated from bench/results');
}
