// The `llm-kernels` command: device info and the benchmark suite.
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { cudaStatus, devices } from '../index.js';

const HELP = `Usage: llm-kernels <command> [options]

Commands:
  info                          devices, cpu ISA and threads, CUDA status (and why not)
  bench [--quick] [--op NAME] [--device NAME] [--out DIR]
                                time every op on cpu and cuda:N (simt only when named
                                with --device); prints a table with
                                % of this machine's measured peak and writes
                                <DIR>/<device>.json + chart.svg (default DIR: ./bench/results)
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

async function main(argv: string[]): Promise<number> {
  const [cmd = 'help', ...rest] = argv;
  switch (cmd) {
    case 'info':
      if (rest.length) break;
      info();
      return 0;
    case 'bench':
      return bench(rest);
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

process.exitCode = await main(process.argv.slice(2));
