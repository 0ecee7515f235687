// What a benchmark result was measured on: CPU model, ISA, threads, versions, date.
// Shared by bench/ops.ts and bench/peers/run.ts so their JSON files agree.
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Peaks } from './peak.js';

const here = dirname(fileURLToPath(import.meta.url));

export interface MachineInfo {
  cpu: string;
  isa: string;
  threads: number;
  node: string;
  package: string;
  date: string;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux: fall back to what Node reports
  }
  return cpus()[0]?.model ?? 'unknown';
}

function packageVersion(): string {
  let dir = here;
  for (let i = 0; i < 5; i++) {
    try {
      const pj = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pj.name === 'llm-kernels') return pj.version ?? 'unknown';
    } catch {
      // keep walking up
    }
    dir = dirname(dir);
  }
  return 'unknown';
}

export function machineInfo(peaks: Peaks): MachineInfo {
  return { cpu: cpuModel(), isa: peaks.isa, threads: peaks.threads, node: process.version, package: packageVersion(), date: new Date().toISOString() };
}
