// safetensors: an 8-byte little-endian header length, a JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, __metadata__?: {...} }, then the
// raw little-endian data. We read the header, validate every entry against the file
// size, and read tensors one at a time at their offsets — never the whole file.
import { open, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'I8' | 'I32' | 'F64' | 'I64' | 'U8' | 'BOOL' | 'I16' | 'U16';

const DTYPE_BYTES: Record<string, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, U16: 2, I8: 1, U8: 1, BOOL: 1,
};

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDType;
  shape: number[];
  /** absolute byte offset of the data in the file */
  offset: number;
  byteLength: number;
  file: string;
}

const MAX_HEADER = 100 * 1024 * 1024;

function bad(file: string, msg: string): Error {
  return new Error(`Malformed safetensors file ${file}: ${msg}`);
}

/** Reads and validates the header of one .safetensors file. */
export async function readSafetensorsHeader(file: string): Promise<{ tensors: TensorInfo[]; metadata: Record<string, string> }> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    if (size < 8) throw bad(file, `file is ${size} bytes, shorter than the 8-byte header length`);
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen < 2 || headerLen > MAX_HEADER || 8 + headerLen > size)
      throw bad(file, `header length ${headerLen} does not fit in a file of ${size} bytes`);
    const hbuf = Buffer.alloc(headerLen);
    await fh.read(hbuf, 0, headerLen, 8);
    let header: unknown;
    try {
      header = JSON.parse(hbuf.toString('utf8'));
    } catch (e) {
      throw bad(file, `header is not valid JSON (${(e as Error).message})`);
    }
    if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad(file, 'header is not a JSON object');
    const dataStart = 8 + headerLen;
    const tensors: TensorInfo[] = [];
    let metadata: Record<string, string> = {};
    for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') {
        metadata = (v ?? {}) as Record<string, string>;
        continue;
      }
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (!e || typeof e !== 'object') throw bad(file, `entry '${name}' is not an object`);
      if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) throw bad(file, `entry '${name}' has unknown dtype ${JSON.stringify(e.dtype)}`);
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0))
        throw bad(file, `entry '${name}' has an invalid shape ${JSON.stringify(e.shape)}`);
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d) && d >= 0) || off[0] > off[1])
        throw bad(file, `entry '${name}' has invalid data_offsets ${JSON.stringify(off)}`);
      const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
      const bytes = numel * DTYPE_BYTES[e.dtype];
      if (off[1] - off[0] !== bytes)
        throw bad(file, `entry '${name}' (${e.dtype} [${(e.shape as number[]).join(', ')}]) needs ${bytes} bytes but its offsets span ${off[1] - off[0]}`);
      if (dataStart + off[1] > size) throw bad(file, `entry '${name}' ends at byte ${dataStart + off[1]} past the end of the file (${size})`);
      tensors.push({ name, dtype: e.dtype as SafetensorsDType, shape: e.shape as number[], offset: dataStart + off[0], byteLength: bytes, file });
    }
    const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
    for (let i = 1; i < sorted.length; i++)
      if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].byteLength)
        throw bad(file, `entries '${sorted[i - 1].name}' and '${sorted[i].name}' overlap`);
    return { tensors, metadata };
  } finally {
    await fh.close();
  }
}

/**
 * The tensors of a model directory: model.safetensors, or the shards listed in
 * model.safetensors.index.json.
 */
export async function listModelTensors(dir: string): Promise<Map<string, TensorInfo>> {
  const index = join(dir, 'model.safetensors.index.json');
  const single = join(dir, 'model.safetensors');
  const out = new Map<string, TensorInfo>();
  let files: string[];
  if (await exists(index)) {
    let idx: { weight_map?: Record<string, string> };
    try {
      idx = JSON.parse(await readFile(index, 'utf8'));
    } catch (e) {
      throw new Error(`Malformed ${index}: ${(e as Error).message}`);
    }
    if (!idx.weight_map || typeof idx.weight_map !== 'object') throw new Error(`Malformed ${index}: missing weight_map`);
    files = [...new Set(Object.values(idx.weight_map))];
    for (const f of files)
      if (basename(f) !== f) throw new Error(`Malformed ${index}: shard name '${f}' must be a file in the model directory`);
  } else if (await exists(single)) {
    files = ['model.safetensors'];
  } else {
    throw new Error(`No model.safetensors or model.safetensors.index.json in ${dir}`);
  }
  for (const f of files) {
    const { tensors } = await readSafetensorsHeader(join(dir, f));
    for (const t of tensors) {
      if (out.has(t.name)) throw new Error(`Tensor '${t.name}' appears in more than one shard of ${dir}`);
      out.set(t.name, t);
    }
  }
  return out;
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** Reads one tensor's raw bytes (a fresh buffer of exactly its size). */
export async function readTensorBytes(t: TensorInfo): Promise<Uint8Array> {
  const fh = await open(t.file, 'r');
  try {
    const buf = new Uint8Array(t.byteLength);
    let done = 0;
    while (done < t.byteLength) {
      const { bytesRead } = await fh.read(buf, done, t.byteLength - done, t.offset + done);
      if (bytesRead === 0) throw new Error(`Unexpected end of ${t.file} while reading '${t.name}'`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

export interface TensorToWrite {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16' | 'I32' | 'I8';
  shape: number[];
  /** produces the little-endian raw bytes when the writer reaches this tensor */
  data: () => Uint8Array;
}

const WRITE_BYTES: Record<TensorToWrite['dtype'], number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I8: 1 };

/**
 * Writes a .safetensors file. Tensors are produced and written one at a time, so a
 * multi-GB model never sits in memory whole.
 */
export async function writeSafetensors(file: string, tensors: TensorToWrite[], metadata: Record<string, string> = {}): Promise<void> {
  const header: Record<string, unknown> = { __metadata__: metadata };
  let off = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * WRITE_BYTES[t.dtype];
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [off, off + bytes] };
    off += bytes;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - (json.length % 8)) % 8; // spaces keep the data 8-byte aligned
  json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const fh = await open(file, 'w');
  try {
    await fh.write(len);
    await fh.write(json);
    for (const t of tensors) {
      const d = t.data();
      const expect = (header[t.name] as { data_offsets: number[] }).data_offsets;
      if (d.byteLength !== expect[1] - expect[0])
        throw new Error(`writeSafetensors: '${t.name}' produced ${d.byteLength} bytes, expected ${expect[1] - expect[0]}`);
      await fh.write(d);
    }
  } finally {
    await fh.close();
  }
}
