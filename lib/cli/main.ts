// The `llm-kernels` command.
import { cudaStatus, devices } from '../index.js';

function info(): void {
  console.log('llm-kernels devices:');
  for (const d of devices()) console.log(`  ${d.name.padEnd(8)} ${d.kind.padEnd(5)} ${d.detail}${d.threads ? `, ${d.threads} threads` : ''}`);
  const c = cudaStatus();
  console.log(`CUDA: ${c.available ? `${c.deviceCount} device(s)` : `unavailable — ${c.reason}`}`);
}

const [cmd = 'info'] = process.argv.slice(2);
if (cmd === 'info') info();
else {
  console.error(`unknown command '${cmd}'; try: info`);
  process.exitCode = 2;
}
