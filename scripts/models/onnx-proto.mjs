// Minimal protobuf writer for the subset of the ONNX schema (onnx.proto3) that the
// converter emits. Field numbers follow onnx/onnx.proto; only encoding is needed.

export const DataType = Object.freeze({ FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7, FLOAT16: 10 });
const AttrType = Object.freeze({ FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7 });

/** Growable byte sink with protobuf primitives. */
class Writer {
  constructor() {
    this.chunks = [];
    this.length = 0;
  }
  push(buf) {
    this.chunks.push(buf);
    this.length += buf.length;
  }
  varint(value) {
    // value: number or bigint, non-negative or negative int64 (two's complement, 10 bytes)
    let v = BigInt.asUintN(64, BigInt(value));
    const out = [];
    while (v >= 0x80n) {
      out.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    out.push(Number(v));
    this.push(Uint8Array.from(out));
  }
  tag(field, wire) {
    this.varint((field << 3) | wire);
  }
  int(field, value) {
    this.tag(field, 0);
    this.varint(value);
  }
  float(field, value) {
    this.tag(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
  }
  bytes(field, data) {
    this.tag(field, 2);
    this.varint(data.length);
    this.push(data);
  }
  string(field, s) {
    this.bytes(field, new TextEncoder().encode(s));
  }
  message(field, build) {
    const w = new Writer();
    build(w);
    this.bytes(field, w.finish());
  }
  packedInts(field, values) {
    const w = new Writer();
    for (const v of values) w.varint(v);
    this.bytes(field, w.finish());
  }
  packedFloats(field, values) {
    const b = new Uint8Array(values.length * 4);
    const dv = new DataView(b.buffer);
    values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    this.bytes(field, b);
  }
  finish() {
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** @param {{name:string, dataType:number, dims:number[], raw:Uint8Array}} t */
function writeTensor(w, t) {
  for (const d of t.dims) w.int(1, d); // dims (non-packed is accepted by parsers)
  w.int(2, t.dataType);
  w.string(8, t.name);
  w.bytes(9, t.raw);
}

function writeAttribute(w, name, value) {
  w.string(1, name);
  if (typeof value === 'number' && Number.isInteger(value)) {
    w.int(3, value);
    w.int(20, AttrType.INT);
  } else if (value instanceof FloatAttr) {
    w.float(2, value.v);
    w.int(20, AttrType.FLOAT);
  } else if (typeof value === 'number') {
    w.float(2, value);
    w.int(20, AttrType.FLOAT);
  } else if (typeof value === 'string') {
    w.string(4, value);
    w.int(20, AttrType.STRING);
  } else if (Array.isArray(value)) {
    w.packedInts(8, value);
    w.int(20, AttrType.INTS);
  } else if (value && value.raw) {
    w.message(5, (t) => writeTensor(t, value));
    w.int(20, AttrType.TENSOR);
  } else {
    throw new Error(`unsupported attribute ${name}`);
  }
}

/** Wrap a number so that it is written as a FLOAT attribute even when integral. */
export class FloatAttr {
  constructor(v) {
    this.v = v;
  }
}

function writeValueInfo(w, vi) {
  w.string(1, vi.name);
  w.message(2, (type) => {
    type.message(1, (tt) => {
      tt.int(1, vi.dataType);
      tt.message(2, (shape) => {
        for (const d of vi.dims) shape.message(1, (dim) => dim.int(1, d));
      });
    });
  });
}

/**
 * Encode an ONNX ModelProto.
 * @param {{ graphName:string, nodes:{opType:string,name:string,inputs:string[],outputs:string[],attrs?:Record<string,unknown>}[],
 *   initializers:{name:string,dataType:number,dims:number[],raw:Uint8Array}[],
 *   inputs:{name:string,dataType:number,dims:number[]}[], outputs:{name:string,dataType:number,dims:number[]}[],
 *   opset?:number, producer?:string, docString?:string, metadata?:Record<string,string> }} m
 * @returns {Uint8Array}
 */
export function encodeModel(m) {
  const w = new Writer();
  w.int(1, 8); // ir_version 8
  w.string(2, m.producer ?? 'kuzet-tfjs2onnx');
  w.string(3, '1');
  if (m.docString) w.string(6, m.docString);
  w.message(7, (g) => {
    for (const n of m.nodes) {
      g.message(1, (nw) => {
        for (const i of n.inputs) nw.string(1, i);
        for (const o of n.outputs) nw.string(2, o);
        nw.string(3, n.name);
        nw.string(4, n.opType);
        for (const [k, v] of Object.entries(n.attrs ?? {})) nw.message(5, (a) => writeAttribute(a, k, v));
      });
    }
    g.string(2, m.graphName);
    for (const t of m.initializers) g.message(5, (tw) => writeTensor(tw, t));
    for (const i of m.inputs) g.message(11, (vw) => writeValueInfo(vw, i));
    for (const o of m.outputs) g.message(12, (vw) => writeValueInfo(vw, o));
  });
  w.message(8, (op) => {
    op.string(1, '');
    op.int(2, m.opset ?? 13);
  });
  for (const [k, v] of Object.entries(m.metadata ?? {})) {
    w.message(14, (e) => {
      e.string(1, k);
      e.string(2, v);
    });
  }
  return w.finish();
}
