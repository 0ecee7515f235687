// A hand-written SVG bar chart: % of the measured peak per benchmark case.
import type { Peaks } from './peak.js';

interface Row {
  name: string;
  device: string;
  unit: string;
  rate: number;
  pctOfPeak: number | null;
  bound: 'compute' | 'memory';
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderChart(rows: Row[], machine: { cpu: string; date: string }, peaks: Peaks): string {
  const bars = rows.filter((r) => r.pctOfPeak !== null);
  const labelW = 330, barW = 420, rowH = 22, top = 56, W = labelW + barW + 150;
  const H = top + bars.length * rowH + 30;
  const maxPct = Math.max(100, ...bars.map((b) => b.pctOfPeak!));
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">llm-kernels: % of measured peak (cpu)</text>`,
    `<text x="10" y="38" fill="#555">${esc(machine.cpu)}, ${peaks.threads} threads, ${esc(peaks.isa)} — peaks: fp32 ${peaks.fp32Gflops.toFixed(0)} GFLOP/s, int8 ${peaks.int8Gops.toFixed(0)} GOP/s, read ${peaks.readGBs.toFixed(1)} GB/s — ${machine.date.slice(0, 10)}</text>`,
  ];
  const x100 = labelW + (barW * 100) / maxPct;
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const w = Math.max(1, (barW * b.pctOfPeak!) / maxPct);
    const color = b.bound === 'memory' ? '#3b82f6' : '#f59e0b';
    out.push(
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(b.name)}</text>`,
      `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`,
      `<text x="${(labelW + w + 4).toFixed(1)}" y="${y + 15}">${b.pctOfPeak!.toFixed(0)}% (${b.rate.toFixed(1)} ${b.unit})</text>`,
    );
  });
  out.push(
    `<line x1="${x100}" y1="${top - 4}" x2="${x100}" y2="${H - 24}" stroke="#999" stroke-dasharray="4 3"/>`,
    `<text x="${x100}" y="${H - 10}" text-anchor="middle" fill="#555">100% of peak (blue: memory-bound vs read GB/s, orange: compute-bound)</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}

interface PeerBar {
  group: string;
  workload: string;
  peerName: string;
  speedup: number;
  threads: number;
}

/** Ours vs peers: one bar per workload, speed-up on a log scale around 1× (right of the line: llm-kernels faster). */
export function renderPeersChart(r: { date: string; machine: { cpu: string; threads: number; isa: string }; versions: Record<string, string>; rows: PeerBar[] }): string {
  const labelW = 520, barW = 360, rowH = 22, top = 64, W = labelW + barW + 90;
  const H = top + r.rows.length * rowH + 34;
  const maxLog = Math.max(Math.log2(4), ...r.rows.map((b) => Math.abs(Math.log2(b.speedup))));
  const x1 = labelW + barW / 2;
  const scale = barW / 2 / maxLog;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="20" font-size="15" font-weight="bold">llm-kernels vs peers: speed-up (median of alternating runs, log scale)</text>`,
    `<text x="10" y="38" fill="#555">${esc(r.machine.cpu)}, ${esc(r.machine.isa)} — ${esc(Object.entries(r.versions).map(([k, v]) => `${k} ${v}`).join(', '))} — ${r.date.slice(0, 10)}</text>`,
  ];
  r.rows.forEach((b, i) => {
    const y = top + i * rowH;
    const len = Math.log2(b.speedup) * scale;
    const x = len >= 0 ? x1 : x1 + len;
    const color = b.speedup >= 1 ? '#16a34a' : '#dc2626';
    out.push(
      `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end">${esc(`${b.workload} vs ${b.peerName}, ${b.threads}t`)}</text>`,
      `<rect x="${x.toFixed(1)}" y="${y + 3}" width="${Math.max(1, Math.abs(len)).toFixed(1)}" height="${rowH - 6}" fill="${color}"/>`,
      `<text x="${(len >= 0 ? x1 + len + 4 : x1 + 4).toFixed(1)}" y="${y + 15}">${b.speedup.toFixed(2)}×</text>`,
    );
  });
  out.push(
    `<line x1="${x1}" y1="${top - 4}" x2="${x1}" y2="${H - 26}" stroke="#333"/>`,
    `<text x="${x1}" y="${H - 10}" text-anchor="middle" fill="#555">1× (green: llm-kernels faster, red: the peer faster)</text>`,
    '</svg>',
  );
  return out.join('\n') + '\n';
}
