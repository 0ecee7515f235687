// Benchmark runner: loads every bench/ops/*.ts BenchModule, times each case on each
// device (warm-up, then repeats for a time budget; median), prints a table against
// the machine's measured peaks, writes bench/results/<device>.json and a chart.
//   tsx bench/ops.ts [--quick] [--op NAME[,NAME]] [--case REGEX] [--device NAME[,NAME]] [--out DIR]
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { devices, synchronize } from '../lib/index.js';
import { native } from '../lib/native.js';
import type { NativeTimeMark } from '../lib/native-types.js';
import { renderChart } from './chart.js';
import { machineInfo } from './machine.js';
import { measurePeaks, measureReadGBs, type Peaks } from './peak.js';
import type { BenchCase, BenchModule, BenchRun } from './types.js';
import { median } from './stats.js';

export interface BenchOptions {
  quick: boolean;
  ops?: string[];
  /** only cases whose name matches */
  cases?: RegExp;
  devices?: string[];
  outDir?: string;
}

export interface CaseResult {
  name: string;
  op: string;
  device: string;
  bound: 'compute' | 'memory';
  runs: number;
  medianMs: number;
  /** GFLOP/s, GOP/s or GB/s, per `unit` */
  rate: number;
  unit: 'GFLOP/s' | 'GOP/s' | 'GB/s' | '';
  pctOfPeak: number | null;
  /** memory-bound cpu cases: the read probe taken right after the case, GB/s; pctOfPeak
   * is against the higher of it and the run's start-up probe */
  readGBsNear?: number;
  baseline?: string;
  speedup?: number;
  /** overhead cases: median time per enqueued op, in µs */
  usPerCall?: number;
  /** GPU (and simt) cases: the median device time between two stream marks, ms, and the rate it gives */
  deviceMs?: number;
  deviceRate?: number;
}

const here = dirname(fileURLToPath(import.meta.url));

export function parseArgs(argv: string[]): BenchOptions {
  const o: BenchOptions = { quick: false };
  const list = (i: number, flag: string): string[] => {
    const v = argv[i];
    if (v === undefined || v.startsWith('--')) throw new Error(`Expected a value after ${flag}`);
    return v.split(',').filter(Boolean);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--quick') o.quick = true;
    else if (a === '--op') o.ops = [...(o.ops ?? []), ...list(++i, a)];
    else if (a === '--case') o.cases = caseRegex(argv[++i]);
    else if (a === '--device') o.devices = [...(o.devices ?? []), ...list(++i, a)];
    else if (a === '--out') o.outDir = list(++i, a)[0];
    else throw new Error(`Unknown bench option '${a}'; expected --quick, --op NAME, --case REGEX, --device NAME, --out DIR`);
  }
  return o;
}

function caseRegex(v: string | undefined): RegExp {
  if (!v) throw new Error('Expected a regular expression after --case');
  try {
    return new RegExp(v);
  } catch (e) {
    throw new Error(`Expected a regular expression after --case but received '${v}': ${(e as Error).message}`);
  }
}

async function loadModules(): Promise<BenchModule[]> {
  // .ts when run from the repo (tsx), .js when run from the bundled dist/bench.
  const dir = join(here, 'ops');
  const files = readdirSync(dir)
    .filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts'))
    .sort();
  const mods: BenchModule[] = [];
  for (const f of files) {
    const m = (await import(pathToFileURL(join(dir, f)).href)) as { default?: BenchModule };
    if (typeof m.default !== 'function') throw new Error(`bench/ops/${f}: expected a default export of type BenchModule`);
    mods.push(m.default);
  }
  return mods;
}

/** Host-timed runs (op + sync, as a caller sees it); on a GPU also device-timed ones. */
async function timeCase(c: BenchCase, quick: boolean): Promise<{ runs: number; medianMs: number; deviceMs?: number }> {
  const r = await c.setup();
  const sync = () => synchronize(c.device);
  try {
    const budgetMs = quick ? 150 : 1000;
    const maxRuns = quick ? 15 : 200;
    await r.run(sync); // warm-up: first-touch, caches, lazy init
    const loop = async (time: () => Promise<number>, budget: number) => {
      const times: number[] = [];
      const start = performance.now();
      while (times.length < 3 || (times.length < maxRuns && performance.now() - start < budget)) times.push(await time());
      return times;
    };
    const host = await loop(async () => {
      const t0 = performance.now();
      await r.run(sync);
      return performance.now() - t0;
    }, budgetMs);
    // On a GPU, host time is mostly enqueue and sync for short cases: also time the
    // device itself, between two stream marks with the work issued back to back (the
    // first mark holds the worker until run() has enqueued everything). On cpu the
    // worker runs the ops, so its clock would only drop the enqueue and sync.
    if (devices().find((d) => d.name === c.device)?.kind === 'cpu') return { runs: host.length, medianMs: median(host) };
    const dev = await loop(() => deviceTime(c, r), budgetMs / 2);
    return { runs: host.length, medianMs: median(host), deviceMs: median(dev) };
  } finally {
    r.dispose();
  }
}

async function deviceTime(c: BenchCase, r: BenchRun): Promise<number> {
  const n = native();
  const start = n.markTime(c.device, true);
  let end: NativeTimeMark | undefined;
  try {
    await r.run(async () => {
      end = n.markTime(c.device);
      n.releaseMark(start);
      await synchronize(c.device);
    });
  } finally {
    n.releaseMark(start);
  }
  if (!end) throw new Error(`bench case '${c.name}': run() returned without awaiting sync()`);
  return n.elapsedMs(start, end);
}

function rateOf(c: BenchCase, ms: number, peaks: Peaks, readNear?: number): Pick<CaseResult, 'rate' | 'unit' | 'pctOfPeak'> {
  const s = ms / 1e3;
  const onCpu = c.device === 'cpu';
  if (c.bound === 'compute' && c.work.intOps) {
    const rate = c.work.intOps / s / 1e9;
    return { rate, unit: 'GOP/s', pctOfPeak: onCpu ? (100 * rate) / peaks.int8Gops : null };
  }
  if (c.bound === 'compute' && c.work.flops) {
    const rate = c.work.flops / s / 1e9;
    const peak = c.work.flopsPeak === 'bf16' ? peaks.bf16Gflops : peaks.fp32Gflops;
    return { rate, unit: 'GFLOP/s', pctOfPeak: onCpu ? (100 * rate) / peak : null };
  }
  if (c.work.bytes) {
    const rate = c.work.bytes / s / 1e9;
    return { rate, unit: 'GB/s', pctOfPeak: onCpu ? (100 * rate) / Math.max(peaks.readGBs, readNear ?? 0) : null };
  }
  return { rate: 0, unit: '', pctOfPeak: null };
}

function fmtMs(ms: number): string {
  if (ms < 0.01) return `${(ms * 1e3).toFixed(2)} µs`;
  if (ms < 1) return `${(ms * 1e3).toFixed(0)} µs`;
  return `${ms.toFixed(ms < 100 ? 2 : 0)} ms`;
}

function printTable(rows: CaseResult[]): void {
  const withDevice = rows.some((r) => r.deviceMs !== undefined);
  const head = ['op', 'device', 'case', 'median', 'rate', '% peak', ...(withDevice ? ['device time', 'device rate'] : []), 'vs baseline'];
  const body = rows.map((r) => [
    r.op,
    r.device,
    r.name,
    fmtMs(r.medianMs) + (r.unit && r.usPerCall !== undefined ? ` (${fmtMs(r.usPerCall * 1e-3)} per call)` : ''),
    r.unit ? `${r.rate.toFixed(1)} ${r.unit}` : r.usPerCall !== undefined ? `${r.usPerCall.toFixed(2)} µs/op` : '',
    r.pctOfPeak === null ? '' : `${r.pctOfPeak.toFixed(0)}%`,
    ...(withDevice
      ? [r.deviceMs !== undefined ? fmtMs(r.deviceMs) : '', r.deviceRate && r.unit ? `${r.deviceRate.toFixed(1)} ${r.unit}` : '']
      : []),
    r.speedup ? `${r.speedup.toFixed(2)}× ${r.baseline}` : '',
  ]);
  const right = new Set([3, 4, 5, ...(withDevice ? [6, 7] : [])]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (right.has(i) ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const b of body) console.log(line(b));
}

/** Runs the benchmarks; returns every case result (also printed and written to outDir). */
export async function runBench(opts: BenchOptions): Promise<CaseResult[]> {
  const available = devices().map((d) => d.name);
  for (const d of opts.devices ?? [])
    if (!available.includes(d)) throw new Error(`Unknown or unavailable device '${d}' for --device; available: ${available.join(', ')}`);
  // simt is an emulator for checking GPU code, not a performance target: benched
  // only when named with --device.
  const devs = opts.devices ?? devices().filter((d) => d.kind !== 'simt').map((d) => d.name);
  const peaks = await measurePeaks();
  console.log(
    `peaks (cpu, ${peaks.isa}, ${peaks.threads} threads): fp32 ${peaks.fp32Gflops.toFixed(0)} GFLOP/s, bf16 ${peaks.bf16Gflops.toFixed(0)} GFLOP/s, ` +
      `int8 ${peaks.int8Gops.toFixed(0)} GOP/s, read ${peaks.readGBs.toFixed(1)} GB/s`,
  );
  let cases = (await loadModules()).flatMap((m) => m(devs, { quick: opts.quick }));
  if (opts.ops) {
    const known = [...new Set(cases.map((c) => c.op))];
    for (const o of opts.ops)
      if (!known.includes(o)) throw new Error(`Unknown op '${o}' for --op; available: ${known.join(', ')}`);
    cases = cases.filter((c) => opts.ops!.includes(c.op));
  }
  if (opts.cases) {
    cases = cases.filter((c) => opts.cases!.test(c.name));
    if (!cases.length) throw new Error(`No case name matches --case ${opts.cases.source}`);
  }
  const results: CaseResult[] = [];
  for (const [i, c] of cases.entries()) {
    const t = await timeCase(c, opts.quick);
    // Progress on stderr as each case ends: a full run takes minutes, and a run cut
    // short (a lease on a GPU machine, a CI limit) still leaves the figures it reached.
    console.error(
      `bench [${i + 1}/${cases.length}] ${c.device}  ${c.name}: ${fmtMs(t.medianMs)} (${t.runs} runs)` +
        (t.deviceMs !== undefined ? `, device ${fmtMs(t.deviceMs)}` : ''),
    );
    const usPerCall = c.work.calls ? (t.medianMs * 1e3) / c.work.calls : undefined;
    const readGBsNear = c.bound === 'memory' && c.device === 'cpu' && c.work.bytes && !opts.quick ? await measureReadGBs() : undefined;
    results.push({
      name: c.name, op: c.op, device: c.device, bound: c.bound, ...t, ...rateOf(c, t.medianMs, peaks, readGBsNear),
      readGBsNear, baseline: c.baseline, usPerCall,
      deviceRate: t.deviceMs !== undefined ? rateOf(c, t.deviceMs, peaks).rate : undefined,
    });
  }
  for (const r of results) {
    if (!r.baseline) continue;
    const b = results.find((x) => x.name === r.baseline && x.device === r.device);
    if (b) r.speedup = b.medianMs / r.medianMs;
  }
  printTable(results);

  const outDir = resolve(opts.outDir ?? join(process.cwd(), 'bench', 'results'));
  mkdirSync(outDir, { recursive: true });
  const machine = { ...machineInfo(peaks), quick: opts.quick };
  // Quick runs (npm start) get their own files so they never replace a full run.
  const suffix = opts.quick ? '.quick' : '';
  for (const d of new Set(results.map((r) => r.device))) {
    const file = join(outDir, `${d.replace(/[^a-z0-9]+/gi, '-')}${suffix}.json`);
    const rows = results.filter((r) => r.device === d);
    writeFileSync(file, JSON.stringify({ machine, peaks, results: rows }, null, 2) + '\n');
    console.log(`wrote ${file}`);
  }
  const chart = join(outDir, `chart${suffix}.svg`);
  writeFileSync(chart, renderChart(results, machine, peaks));
  console.log(`wrote ${chart}`);
  return results;
}

/** CLI entry: exit code 2 on bad options, 1 on a failing case. */
export async function main(argv: string[]): Promise<number> {
  let opts: BenchOptions;
  try {
    opts = parseArgs(argv);
  } catch (e) {
    console.error(`llm-kernels bench: ${(e as Error).message}`);
    return 2;
  }
  try {
    await runBench(opts);
    return 0;
  } catch (e) {
    console.error(`llm-kernels bench: ${(e as Error).message}`);
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
