// Single-node ONNX models encoded straight to protobuf bytes, for onnxruntime-node's
// InferenceSession.create(Uint8Array). Only the handful of onnx.proto fields a
// one-operator graph needs: ModelProto{ir_version=1, graph=7, opset_import=8},
// GraphProto{node=1, name=2, initializer=5, input=11, output=12}, NodeProto{input=1,
// output=2, op_type=4, domain=7}, TensorProto{dims=1, data_type=2, name=8, raw_data=9},
// ValueInfoProto{name=1, type=2}, TypeProto{tensor_type=1}, TypeProto.Tensor{elem_type=1,
// shape=2}, TensorShapeProto{dim=1}, Dimension{dim_value=1}, OperatorSetIdProto{domain=1,
// version=2}.

/** onnx.TensorProto.DataType values */
export const ONNX = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, FLOAT16: 10 } as const;

class Writer {
  private parts: number[] = [];
  private chunks: Uint8Array[] = [];
  private flush(): void {
    if (this.parts.length) this.chunks.push(Uint8Array.from(this.parts));
    this.parts = [];
  }
  varint(v: number | bigint): this {
    let x = BigInt(v);
    if (x < 0n) x += 1n << 64n; // int64 negatives: ten-byte two's complement
    do {
      const b = Number(x & 0x7fn);
      x >>= 7n;
      this.parts.push(x ? b | 0x80 : b);
    } while (x);
    return this;
  }
  tag(field: number, wire: 0 | 2): this {
    return this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    return this.tag(field, 0).varint(v);
  }
  bytes(field: number, b: Uint8Array): this {
    this.tag(field, 2).varint(b.length);
    this.flush();
    this.chunks.push(b);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Writer): this {
    return this.bytes(field, m.finish());
  }
  finish(): Uint8Array {
    this.flush();
    const n = this.chunks.reduce((a, c) => a + c.length, 0);
    const out = new Uint8Array(n);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.length;
    }
    return out;
  }
}

export interface ValueSpec {
  name: string;
  type: number;
  dims: number[];
}

export interface InitSpec extends ValueSpec {
  /** little-endian raw bytes */
  raw: Uint8Array;
}

export interface NodeSpec {
  op: string;
  domain?: string;
  inputs: string[];
  outputs: string[];
  inputsSpec: ValueSpec[];
  outputsSpec: ValueSpec[];
  initializers: InitSpec[];
}

function valueInfo(v: ValueSpec): Writer {
  const shape = new Writer();
  for (const d of v.dims) shape.msg(1, new Writer().int(1, d));
  const tensorType = new Writer().int(1, v.type).msg(2, shape);
  return new Writer().str(1, v.name).msg(2, new Writer().msg(1, tensorType));
}

/** A model holding one node; weights travel as initializers (constant, so ORT may pre-pack them). */
export function singleNodeModel(n: NodeSpec): Uint8Array {
  const node = new Writer();
  for (const i of n.inputs) node.str(1, i);
  for (const o of n.outputs) node.str(2, o);
  node.str(4, n.op);
  if (n.domain) node.str(7, n.domain);
  const graph = new Writer().msg(1, node).str(2, `${n.op}_bench`);
  for (const t of n.initializers) {
    const tp = new Writer();
    for (const d of t.dims) tp.int(1, d);
    tp.int(2, t.type).str(8, t.name).bytes(9, t.raw);
    graph.msg(5, tp);
  }
  for (const v of n.inputsSpec) graph.msg(11, valueInfo(v));
  for (const v of n.outputsSpec) graph.msg(12, valueInfo(v));
  const model = new Writer().int(1, 8).msg(7, graph).msg(8, new Writer().str(1, '').int(2, 17));
  if (n.domain) model.msg(8, new Writer().str(1, n.domain).int(2, 1));
  return model.finish();
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Y[M,N] = A[M,K] · B[K,N] in f32; B is a constant initializer. */
export function matmulF32(M: number, K: number, N: number, b: Float32Array): Uint8Array {
  return singleNodeModel({
    op: 'MatMul',
    inputs: ['A', 'B'],
    outputs: ['Y'],
    inputsSpec: [{ name: 'A', type: ONNX.FLOAT, dims: [M, K] }],
    outputsSpec: [{ name: 'Y', type: ONNX.FLOAT, dims: [M, N] }],
    initializers: [{ name: 'B', type: ONNX.FLOAT, dims: [K, N], raw: bytesOf(b) }],
  });
}

/** Y[M,N] (int32) = (A[M,K] u8 − 128) · B[K,N] s8: the integer GEMM alone (no quantize, no dequantize). */
export function matmulInteger(M: number, K: number, N: number, b: Int8Array): Uint8Array {
  return singleNodeModel({
    op: 'MatMulInteger',
    inputs: ['A', 'B', 'a_zero_point'],
    outputs: ['Y'],
    inputsSpec: [{ name: 'A', type: ONNX.UINT8, dims: [M, K] }],
    outputsSpec: [{ name: 'Y', type: ONNX.INT32, dims: [M, N] }],
    initializers: [
      { name: 'B', type: ONNX.INT8, dims: [K, N], raw: bytesOf(b) },
      { name: 'a_zero_point', type: ONNX.UINT8, dims: [], raw: Uint8Array.of(128) },
    ],
  });
}

/**
 * com.microsoft DynamicQuantizeMatMul: f32 A quantized per call, s8 B with per-column
 * scales, f32 out — what onnxruntime.quantization.quantize_dynamic produces, i.e. the
 * same float-in/float-out work as our int8.matmul.
 */
export function dynamicQuantizeMatMul(M: number, K: number, N: number, b: Int8Array, bScale: Float32Array): Uint8Array {
  return singleNodeModel({
    op: 'DynamicQuantizeMatMul',
    domain: 'com.microsoft',
    inputs: ['A', 'B', 'b_scale'],
    outputs: ['Y'],
    inputsSpec: [{ name: 'A', type: ONNX.FLOAT, dims: [M, K] }],
    outputsSpec: [{ name: 'Y', type: ONNX.FLOAT, dims: [M, N] }],
    initializers: [
      { name: 'B', type: ONNX.INT8, dims: [K, N], raw: bytesOf(b) },
      { name: 'b_scale', type: ONNX.FLOAT, dims: [N], raw: bytesOf(bScale) },
    ],
  });
}
