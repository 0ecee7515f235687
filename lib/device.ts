import { native } from './native.js';
import type { NativeCudaStatus } from './native-types.js';
import { describe } from './validate.js';

export interface DeviceInfo {
  /** 'cpu', 'simt' or 'cuda:N' */
  name: string;
  kind: 'cpu' | 'simt' | 'cuda';
  /** cpu: the ISA in use (avx512vnni | avx2 | scalar); cuda: the GPU; simt: emulator facts */
  detail: string;
  /** worker threads used for compute (cpu / simt) */
  threads: number;
  totalMemory: number;
}

/** Devices usable in this process: cpu always, simt when built in, cuda:N when a GPU answers. */
export function devices(): DeviceInfo[] {
  cachedDevices ??= native().devices();
  return cachedDevices.map((d) => ({ ...d }));
}
let cachedDevices: DeviceInfo[] | undefined;

/** Whether CUDA is usable and, if not, why (e.g. no driver on this machine). */
export function cudaStatus(): NativeCudaStatus {
  return native().cudaStatus();
}

/** Resolves a device name, throwing a clear error for unknown ones. 'auto' = best available. */
export function resolveDevice(d: unknown, name = 'device'): string {
  if (d === undefined || d === 'auto') {
    const list = devices();
    return list.find((x) => x.kind === 'cuda')?.name ?? 'cpu';
  }
  if (typeof d !== 'string') throw new TypeError(`Expected a device name string for ${name} but received ${describe(d)}`);
  const list = (cachedDevices ??= native().devices());
  if (!list.some((x) => x.name === d))
    throw new Error(`Unknown or unavailable device '${d}' for ${name}; available: ${list.map((x) => x.name).join(', ')}`);
  return d;
}

/** Waits for all queued work on a device (default: every device) and surfaces queued errors. */
export async function synchronize(device?: string): Promise<void> {
  if (device === undefined) {
    await Promise.all(devices().map((d) => native().synchronize(d.name)));
    return;
  }
  await native().synchronize(resolveDevice(device));
}

/** Live tensor handles and bytes allocated per device. */
export function memory(): { tensors: number; bytes: Record<string, number> } {
  return native().memory();
}
