// The `llm-kernels` command: device info and the benchmark suite.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import cliProgress from 'cli-progress';
import { createDemoModel, cudaStatus, devices, LlamaModel, type DemoPreset, type WeightFormat } from '../index.js';

const HELP = `Usage: llm-kernels <command> [options]

Commands:
  info                          devices, cpu ISA and threads, CUDA status (and why not)
  bench [--quick] [--op NAME] [--case REGEX] [--device NAME] [--out DIR]
                                time every op (or the cases whose name matches REGEX)
                                on cpu and cuda:N (simt only when named
                                with --device); prints a table with
                                % of this machine's measured peak and writes
                                <DIR>/<device>.json + chart.svg (default DIR: ./bench/results)
  demo-model DIR [--preset tiny|small|1b] [--dtype f16|bf16|f32]
                                write a random-weight model (config.json, model.safetensors,
                                tokenizer.json, tokenizer_config.json) to DIR
  generate --model DIR --prompt TEXT [--device NAME] [--weights dense|int8|sparse24]
           [--max-tokens N] [--temperature T] [--seed S] [--chat]
                                stream a completion, then prefill and decode tokens/s
  demo [--preset small]         create (once, under ./.cache) and run a demo model
  help                          this text

Environment: LLMK_NUM_THREADS, LLMK_CPU_ISA=avx512|avx2|scalar, LLMK_CUDA, LLMK_SIMT`;

function info(): void {
  console.log('llm-kernels devices:');
  for (const d of devices())
    console.log(`  ${d.name.padEnd(8)} ${d.kind.padEnd(5)} ${d.detail}${d.threads ? `, ${d.threads} threads` : ''}`);
  const c = cudaStatus();
  const built = c.compiled ? 'compiled in' : 'not compiled in';
  console.log(`CUDA: ${c.available ? `${c.deviceCount} device(s)` : `unavailable (${built}) — ${c.reason}`}`);
}

// The runner is bundled next to this file as dist/bench/ops.js (package.json
// build:ts); the URL is built at run time so the CLI bundle does not inline it.
async function bench(args: string[]): Promise<number> {
  const runner = new URL('../bench/ops.js', import.meta.url);
  if (!existsSync(runner)) {
    console.error(`llm-kernels bench: the benchmark runner is missing (${runner.pathname}); run \`npm run build:ts\``);
    return 1;
  }
  const m = (await import(pathToFileURL(runner.pathname).href)) as { main(argv: string[]): Promise<number> };
  return m.main(args);
}

// --flag value pairs (and bare --flags) into a map; unknown flags are an error.
function parseFlags(args: string[], known: Record<string, 'value' | 'bool'>): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const kind = known[a];
    if (!kind) throw new UsageError(`unknown option '${a}'`);
    if (kind === 'bool') out.set(a, 'true');
    else {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`option ${a} needs a value`);
      out.set(a, v);
    }
  }
  return out;
}

class UsageError extends Error {}

function num(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`${name} expects a number but received '${v}'`);
  return n;
}

async function demoModel(args: string[]): Promise<number> {
  const [dir, ...rest] = args;
  if (!dir || dir.startsWith('--')) throw new UsageError('demo-model needs a directory');
  const f = parseFlags(rest, { '--preset': 'value', '--dtype': 'value' });
  const preset = (f.get('--preset') ?? 'tiny') as DemoPreset;
  const t0 = performance.now();
  await createDemoModel(dir, preset, { dtype: (f.get('--dtype') ?? 'f16') as 'f16' });
  console.log(`wrote the '${preset}' demo model to ${dir} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return 0;
}

async function generate(args: string[]): Promise<number> {
  const f = parseFlags(args, {
    '--model': 'value', '--prompt': 'value', '--device': 'value', '--weights': 'value', '--max-tokens': 'value',
    '--temperature': 'value', '--seed': 'value', '--chat': 'bool', '--dtype': 'value',
  });
  const dir = f.get('--model');
  if (!dir) throw new UsageError('generate needs --model DIR');
  const prompt = f.get('--prompt') ?? 'Hello';
  const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'loading {bar} {percentage}% {tensor}', clearOnComplete: true }, cliProgress.Presets.shades_classic) : undefined;
  bar?.start(100, 0, { tensor: '' });
  const t0 = performance.now();
  const model = await LlamaModel.load(dir, {
    device: f.get('--device') ?? 'auto',
    dtype: (f.get('--dtype') ?? 'f16') as 'f16',
    weights: (f.get('--weights') ?? 'dense') as WeightFormat,
    onProgress: (p) => bar?.update(Math.round((100 * p.loadedBytes) / p.totalBytes), { tensor: p.tensor }),
  });
  bar?.stop();
  console.error(`loaded ${dir} on ${model.device} (${model.weightFormat}, ${model.dtype}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  try {
    const it = model.generate(f.has('--chat') ? [{ role: 'user', content: prompt }] : prompt, {
      maxTokens: num(f.get('--max-tokens'), '--max-tokens', 64),
      temperature: num(f.get('--temperature'), '--temperature', 0.8),
      seed: f.has('--seed') ? num(f.get('--seed'), '--seed', 0) : undefined,
    });
    process.stdout.write(prompt);
    let r = await it.next();
    while (!r.done) {
      process.stdout.write(r.value.text);
      r = await it.next();
    }
    const u = r.value.usage;
    console.log(
      `\n[${r.value.finishReason}] prefill ${u.promptTokens} tokens in ${u.prefillMs.toFixed(0)} ms (${((1000 * u.promptTokens) / u.prefillMs).toFixed(1)} tok/s), ` +
        `decode ${u.completionTokens} tokens in ${u.decodeMs.toFixed(0)} ms (${u.completionTokens > 1 ? ((1000 * (u.completionTokens - 1)) / u.decodeMs).toFixed(1) : '-'} tok/s)`,
    );
  } finally {
    await model.dispose();
  }
  return 0;
}

async function demo(args: string[]): Promise<number> {
  const f = parseFlags(args, { '--preset': 'value', '--device': 'value' });
  const preset = (f.get('--preset') ?? 'small') as DemoPreset;
  const dir = join(process.cwd(), '.cache', `demo-${preset}`);
  if (!existsSync(join(dir, 'model.safetensors'))) await demoModel([dir, '--preset', preset]);
  console.log(`\ndemo generation (random weights: the text is noise, the speed is real):`);
  return generate(['--model', dir, '--prompt', 'The quick brown fox', '--max-tokens', '48', '--temperature', '0.8', '--seed', '1', ...(f.has('--device') ? ['--device', f.get('--device')!] : [])]);
}

async function main(argv: string[]): Promise<number> {
  const [cmd = 'help', ...rest] = argv;
  switch (cmd) {
    case 'info':
      if (rest.length) break;
      info();
      return 0;
    case 'bench':
      return bench(rest);
    case 'demo-model':
      return demoModel(rest);
    case 'generate':
      return generate(rest);
    case 'demo':
      return demo(rest);
    case 'help':
    case '--help':
    case '-h':
      console.log(HELP);
      return 0;
    default:
      console.error(`llm-kernels: unknown command '${cmd}'\n\n${HELP}`);
      return 2;
  }
  console.error(`llm-kernels: '${cmd}' takes no options but received '${rest.join(' ')}'\n\n${HELP}`);
  return 2;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  if (e instanceof UsageError) {
    console.error(`llm-kernels: ${e.message}\n\n${HELP}`);
    process.exitCode = 2;
  } else {
    console.error(`llm-kernels: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
