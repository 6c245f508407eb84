// Convert a TensorFlow.js graph model (model.json + weight shards) into an ONNX model.
//
// Scope: the op set used by the FaceMesh, Iris and NanoDet graph models that Kuzet ships
// (convolutions, depthwise convolutions, pooling, padding, PReLU/LeakyReLU/Sigmoid, element-wise
// adds, concat, split, reshape, transpose, bilinear resize). Everything that depends only on
// constants is folded here, so the ONNX graph holds only the float data path.
//
// Layout: TF graphs are NHWC; ONNX Conv/MaxPool/Resize are NCHW. Each value carries a layout tag:
// 'plain' (stored exactly as TF sees it) or 'nchw' (a rank-4 NHWC value stored as NCHW). Ops that
// need NCHW ask for it, element-wise ops keep whatever they get, and a Transpose is emitted only
// where a layout really changes, so chains of convolutions carry no transposes.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DataType, FloatAttr, encodeModel } from './onnx-proto.mjs';

const NHWC_TO_NCHW = [0, 3, 1, 2];

// ---------- weights ----------

function halfToFloat(h) {
  const s = (h & 0x8000) >> 15;
  const e = (h & 0x7c00) >> 10;
  const f = h & 0x03ff;
  let v;
  if (e === 0) v = (f / 1024) * 2 ** -14;
  else if (e === 31) v = f ? NaN : Infinity;
  else v = (1 + f / 1024) * 2 ** (e - 15);
  return s ? -v : v;
}

const size = (shape) => shape.reduce((a, b) => a * b, 1);

/** Read every weight of a tfjs weights manifest into typed arrays. */
export function readWeights(modelDir, manifest) {
  const out = new Map();
  for (const group of manifest) {
    const buf = Buffer.concat(group.paths.map((p) => readFileSync(join(modelDir, p))));
    let off = 0;
    for (const w of group.weights) {
      const n = size(w.shape);
      const q = w.quantization;
      let entry;
      if (q && q.dtype === 'float16') {
        const half = new Uint16Array(n);
        for (let i = 0; i < n; i++) half[i] = buf.readUInt16LE(off + 2 * i);
        off += 2 * n;
        entry = { dtype: 'float32', half, data: Float32Array.from(half, halfToFloat) };
      } else if (q && (q.dtype === 'uint8' || q.dtype === 'uint16')) {
        const bytes = q.dtype === 'uint8' ? 1 : 2;
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) {
          const v = bytes === 1 ? buf[off + i] : buf.readUInt16LE(off + 2 * i);
          data[i] = v * q.scale + q.min;
        }
        off += bytes * n;
        entry = { dtype: 'float32', data };
      } else if (q) {
        throw new Error(`unsupported quantization ${JSON.stringify(q)} for ${w.name}`);
      } else if (w.dtype === 'float32') {
        const data = new Float32Array(n);
        for (let i = 0; i < n; i++) data[i] = buf.readFloatLE(off + 4 * i);
        off += 4 * n;
        entry = { dtype: 'float32', data };
      } else if (w.dtype === 'int32') {
        const data = new Array(n);
        for (let i = 0; i < n; i++) data[i] = buf.readInt32LE(off + 4 * i);
        off += 4 * n;
        entry = { dtype: 'int', data };
      } else {
        throw new Error(`unsupported weight dtype ${w.dtype} for ${w.name}`);
      }
      out.set(w.name, { ...entry, shape: w.shape.slice() });
    }
    if (off !== buf.length) throw new Error(`weights shard size mismatch: read ${off} of ${buf.length} bytes`);
  }
  return out;
}

// ---------- constant helpers ----------

/** Transpose a dense array (any element type) with shape `shape` by permutation `perm`. */
function permute(data, shape, perm) {
  const rank = shape.length;
  const outShape = perm.map((p) => shape[p]);
  const inStrides = new Array(rank);
  let s = 1;
  for (let i = rank - 1; i >= 0; i--) {
    inStrides[i] = s;
    s *= shape[i];
  }
  const out = new data.constructor(data.length);
  const idx = new Array(rank).fill(0);
  for (let o = 0; o < data.length; o++) {
    let src = 0;
    for (let d = 0; d < rank; d++) src += idx[d] * inStrides[perm[d]];
    out[o] = data[src];
    for (let d = rank - 1; d >= 0; d--) {
      if (++idx[d] < outShape[d]) break;
      idx[d] = 0;
    }
  }
  return { data: out, shape: outShape };
}

function broadcastShape(a, b) {
  const r = Math.max(a.length, b.length);
  const out = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`cannot broadcast [${a}] with [${b}]`);
    out.push(Math.max(x, y));
  }
  return out;
}

const b64 = (s) => Buffer.from(s, 'base64').toString('utf8');
const attrS = (n, k) => (n.attr?.[k]?.s !== undefined ? b64(n.attr[k].s) : undefined);
const attrInts = (n, k) => (n.attr?.[k]?.list?.i ?? []).map(Number);
const attrF = (n, k, d) => (n.attr?.[k]?.f !== undefined ? Number(n.attr[k].f) : d);
const attrB = (n, k) => Boolean(n.attr?.[k]?.b);

// ---------- converter ----------

/**
 * @param {string} modelJsonPath path of the tfjs model.json
 * @param {{ inputShapes?: Record<string, number[]>, outputNames?: Record<string,string> }} [opts]
 * @returns {{ bytes: Uint8Array, inputs: {name:string,dims:number[]}[], outputs: {name:string,dims:number[],tfName:string}[], stats: Record<string, number> }}
 */
export function convertTfjsGraphModel(modelJsonPath, opts = {}) {
  const model = JSON.parse(readFileSync(modelJsonPath, 'utf8'));
  if (model.format !== 'graph-model') throw new Error(`${modelJsonPath}: not a tfjs graph-model`);
  const weights = readWeights(dirname(modelJsonPath), model.weightsManifest);
  const nodes = model.modelTopology.node;
  const byName = new Map(nodes.map((n) => [n.name, n]));

  const onnxNodes = [];
  const initializers = [];
  const inputs = [];
  const used = new Set();
  let uid = 0;
  const fresh = (base) => `${base.replace(/[^A-Za-z0-9_./-]/g, '_')}__${uid++}`;

  /** TF ref "node" / "node:1" → value */
  const values = new Map();
  /** name → constant {dtype, shape, data, half?} */
  const consts = new Map();

  const refKey = (ref) => (ref.includes(':') ? ref : `${ref}:0`);

  function emit(opType, ins, outs, attrs, name) {
    onnxNodes.push({ opType, inputs: ins, outputs: outs, attrs, name: name ?? fresh(opType) });
    return outs;
  }

  function addInitializer(base, c, forceType) {
    const name = fresh(base);
    if (c.dtype === 'float32' && c.half && !forceType) {
      // keep float16 storage (as shipped) and cast once at session start
      const hname = `${name}_f16`;
      initializers.push({ name: hname, dataType: DataType.FLOAT16, dims: c.shape, raw: new Uint8Array(c.half.buffer, c.half.byteOffset, c.half.byteLength) });
      emit('Cast', [hname], [name], { to: DataType.FLOAT });
      return name;
    }
    if (c.dtype === 'float32') {
      const f = Float32Array.from(c.data);
      initializers.push({ name, dataType: DataType.FLOAT, dims: c.shape, raw: new Uint8Array(f.buffer) });
    } else {
      const f = BigInt64Array.from(c.data, (v) => BigInt(v));
      initializers.push({ name, dataType: DataType.INT64, dims: c.shape, raw: new Uint8Array(f.buffer) });
    }
    return name;
  }

  const int64Init = (base, arr) => addInitializer(base, { dtype: 'int', shape: [arr.length], data: arr });

  function constOf(ref) {
    return consts.get(refKey(ref));
  }

  /** Value of a TF ref, materialising constants as initialisers on demand. */
  function val(ref) {
    const k = refKey(ref);
    if (values.has(k)) return values.get(k);
    const c = consts.get(k);
    if (!c) throw new Error(`unknown input ${ref}`);
    const v = { name: addInitializer(k, c), layout: 'plain', shape: c.shape };
    values.set(k, v);
    return v;
  }

  function asPlain(v) {
    if (v.layout === 'plain') return v.name;
    if (!v.plainName) {
      v.plainName = emit('Transpose', [v.name], [fresh('to_nhwc')], { perm: [0, 2, 3, 1] })[0];
    }
    return v.plainName;
  }
  function asNCHW(v) {
    if (v.shape.length !== 4) throw new Error('NCHW needs rank 4');
    if (v.layout === 'nchw') return v.name;
    if (!v.nchwName) {
      v.nchwName = emit('Transpose', [v.name], [fresh('to_nchw')], { perm: NHWC_TO_NCHW })[0];
    }
    return v.nchwName;
  }

  const setVal = (name, idx, v) => values.set(`${name}:${idx}`, v);

  // ---- collect constants ----
  for (const n of nodes) {
    if (n.op !== 'Const') continue;
    const w = weights.get(n.name);
    if (!w) throw new Error(`const ${n.name} has no weight data`);
    consts.set(`${n.name}:0`, w);
  }

  // ---- topological order ----
  const order = [];
  const state = new Map();
  const visit = (name) => {
    const s = state.get(name);
    if (s === 2) return;
    if (s === 1) throw new Error(`cycle at ${name}`);
    state.set(name, 1);
    const n = byName.get(name);
    if (!n) throw new Error(`missing node ${name}`);
    for (const i of n.input ?? []) if (!i.startsWith('^')) visit(i.split(':')[0]);
    state.set(name, 2);
    order.push(n);
  };
  for (const n of nodes) visit(n.name);

  const consumers = new Map();
  for (const n of nodes) for (const i of n.input ?? []) if (!i.startsWith('^')) consumers.set(i.split(':')[0], true);

  // ---- constant folding of small int/shape subgraphs ----
  function tryFold(n, ins) {
    if (!ins.length || !ins.every((i) => consts.has(refKey(i)))) return false;
    const c = ins.map((i) => consts.get(refKey(i)));
    let r;
    switch (n.op) {
      case 'Identity':
        r = c[0];
        break;
      case 'SparseToDense': {
        const [idx, outShape, vals, def] = c;
        const shape = outShape.data.map(Number);
        const data = new Array(size(shape)).fill(def.data[0]);
        const nIdx = idx.shape[0] ?? 0;
        const rank = shape.length;
        for (let k = 0; k < nIdx; k++) {
          let off = 0;
          for (let d = 0; d < rank; d++) off = off * shape[d] + Number(idx.data[k * rank + d] ?? idx.data[k]);
          data[off] = vals.data.length === 1 ? vals.data[0] : vals.data[k];
        }
        r = { dtype: def.dtype, shape, data };
        break;
      }
      case 'AddV2':
      case 'Add':
      case 'Mul':
      case 'Sub': {
        const [a, b] = c;
        const shape = broadcastShape(a.shape, b.shape);
        if (size(a.shape) !== size(shape) && size(a.shape) !== 1) return false;
        if (size(b.shape) !== size(shape) && size(b.shape) !== 1) return false;
        const f = { AddV2: (x, y) => x + y, Add: (x, y) => x + y, Mul: (x, y) => x * y, Sub: (x, y) => x - y }[n.op];
        const len = size(shape);
        const data = new (a.dtype === 'float32' ? Float32Array : Array)(len);
        for (let i = 0; i < len; i++) data[i] = f(a.data[a.data.length === 1 ? 0 : i], b.data[b.data.length === 1 ? 0 : i]);
        r = { dtype: a.dtype, shape, data };
        break;
      }
      case 'Cast':
        r = c[0];
        break;
      default:
        return false;
    }
    consts.set(`${n.name}:0`, r);
    return true;
  }

  // ---- main pass ----
  for (const n of order) {
    if (n.op === 'Const') continue;
    const ins = (n.input ?? []).filter((i) => !i.startsWith('^'));
    if (n.op === 'Placeholder') {
      const dims = (n.attr.shape.shape.dim ?? []).map((d) => {
        const v = Number(d.size ?? -1);
        return v < 0 ? 1 : v;
      });
      const shape = opts.inputShapes?.[n.name] ?? dims;
      inputs.push({ name: n.name, dataType: DataType.FLOAT, dims: shape });
      setVal(n.name, 0, { name: n.name, layout: 'plain', shape });
      continue;
    }
    if (tryFold(n, ins)) continue;

    const out0 = fresh(n.name);
    switch (n.op) {
      case 'Identity': {
        values.set(`${n.name}:0`, val(ins[0]));
        break;
      }
      case 'Conv2D':
      case '_FusedConv2D':
      case 'DepthwiseConv2dNative':
      case '_FusedDepthwiseConv2dNative': {
        if ((attrS(n, 'data_format') ?? 'NHWC') !== 'NHWC') throw new Error(`${n.name}: only NHWC supported`);
        const x = val(ins[0]);
        const f = constOf(ins[1]);
        if (!f) throw new Error(`${n.name}: filter must be constant`);
        const depthwise = n.op.includes('Depthwise');
        const [kh, kw, fin, fout] = f.shape;
        const inC = x.shape[3];
        let w;
        let group;
        let outC;
        if (depthwise) {
          // [kh,kw,C,M] → [C*M,1,kh,kw]
          const p = permute(f.half ?? f.data, f.shape, [2, 3, 0, 1]);
          w = { dtype: 'float32', shape: [fin * fout, 1, kh, kw], data: f.half ? Float32Array.from(p.data, halfToFloat) : p.data, half: f.half ? p.data : undefined };
          group = fin;
          outC = fin * fout;
        } else {
          const p = permute(f.half ?? f.data, f.shape, [3, 2, 0, 1]);
          w = { dtype: 'float32', shape: [fout, fin, kh, kw], data: f.half ? Float32Array.from(p.data, halfToFloat) : p.data, half: f.half ? p.data : undefined };
          group = inC / fin;
          if (!Number.isInteger(group)) throw new Error(`${n.name}: bad group count`);
          outC = fout;
        }
        const strides = attrInts(n, 'strides');
        const dil = attrInts(n, 'dilations').length ? attrInts(n, 'dilations') : [1, 1, 1, 1];
        const padding = attrS(n, 'padding');
        const { pads, outH, outW } = spatialPads(x.shape, [kh, kw], strides, dil, padding, attrInts(n, 'explicit_paddings'), n.name);
        const convIns = [asNCHW(x), addInitializer(`${n.name}/w`, w)];
        const fused = (n.attr?.fused_ops?.list?.s ?? []).map(b64);
        let extra = 2;
        if (fused[0] === 'BiasAdd') {
          const b = constOf(ins[2]);
          if (!b) throw new Error(`${n.name}: bias must be constant`);
          convIns.push(addInitializer(`${n.name}/b`, b));
          extra = 3;
        } else if (fused.length) {
          throw new Error(`${n.name}: unsupported fused ops ${fused}`);
        }
        let cur = emit('Conv', convIns, [fresh(`${n.name}/conv`)], {
          kernel_shape: [kh, kw], strides: [strides[1], strides[2]], dilations: [dil[1], dil[2]], pads, group,
        })[0];
        const act = fused[1];
        const shape = [x.shape[0], outH, outW, outC];
        if (act === 'Relu') cur = emit('Relu', [cur], [fresh(n.name)])[0];
        else if (act === 'Relu6') cur = emit('Clip', [cur, addInitializer('zero', { dtype: 'float32', shape: [], data: [0] }), addInitializer('six', { dtype: 'float32', shape: [], data: [6] })], [fresh(n.name)])[0];
        else if (act === 'Sigmoid') cur = emit('Sigmoid', [cur], [fresh(n.name)])[0];
        else if (act === 'LeakyRelu') cur = emit('LeakyRelu', [cur], [fresh(n.name)], { alpha: new FloatAttr(attrF(n, 'leakyrelu_alpha', 0.2)) })[0];
        else if (act === 'Prelu') {
          const a = constOf(ins[extra]);
          if (!a) throw new Error(`${n.name}: prelu alpha must be constant`);
          cur = emit('PRelu', [cur, addInitializer(`${n.name}/alpha`, toNCHWConst(a, 4))], [fresh(n.name)])[0];
        } else if (act) throw new Error(`${n.name}: unsupported activation ${act}`);
        setVal(n.name, 0, { name: cur, layout: 'nchw', shape });
        break;
      }
      case 'MaxPool':
      case 'AvgPool': {
        const x = val(ins[0]);
        const k = attrInts(n, 'ksize');
        const s = attrInts(n, 'strides');
        const { pads, outH, outW } = spatialPads(x.shape, [k[1], k[2]], s, [1, 1, 1, 1], attrS(n, 'padding'), [], n.name);
        emit(n.op === 'MaxPool' ? 'MaxPool' : 'AveragePool', [asNCHW(x)], [out0], { kernel_shape: [k[1], k[2]], strides: [s[1], s[2]], pads });
        setVal(n.name, 0, { name: out0, layout: 'nchw', shape: [x.shape[0], outH, outW, x.shape[3]] });
        break;
      }
      case 'Add':
      case 'AddV2':
      case 'Mul':
      case 'Sub':
      case 'Prelu':
      case 'Maximum':
      case 'Minimum': {
        const onnxOp = { Add: 'Add', AddV2: 'Add', Mul: 'Mul', Sub: 'Sub', Prelu: 'PRelu', Maximum: 'Max', Minimum: 'Min' }[n.op];
        const parts = ins.map((i) => ({ ref: i, c: constOf(i) }));
        const dyn = parts.filter((p) => !p.c).map((p) => val(p.ref));
        const shape = ins.map((i) => (constOf(i) ? constOf(i).shape : val(i).shape)).reduce(broadcastShape);
        const useNCHW = shape.length === 4 && dyn.some((v) => v.layout === 'nchw') && dyn.every((v) => v.shape.length === 4);
        const names = parts.map((p) => {
          if (p.c) return addInitializer(`${n.name}/c`, useNCHW ? toNCHWConst(p.c, 4) : p.c);
          const v = val(p.ref);
          return useNCHW ? asNCHW(v) : asPlain(v);
        });
        emit(onnxOp, names, [out0]);
        setVal(n.name, 0, { name: out0, layout: useNCHW ? 'nchw' : 'plain', shape });
        break;
      }
      case 'Sigmoid':
      case 'Relu':
      case 'Relu6':
      case 'LeakyRelu':
      case 'Tanh': {
        const x = val(ins[0]);
        if (n.op === 'LeakyRelu') emit('LeakyRelu', [x.name], [out0], { alpha: new FloatAttr(attrF(n, 'alpha', 0.2)) });
        else if (n.op === 'Relu6') emit('Clip', [x.name, addInitializer('zero', { dtype: 'float32', shape: [], data: [0] }), addInitializer('six', { dtype: 'float32', shape: [], data: [6] })], [out0]);
        else emit(n.op, [x.name], [out0]);
        setVal(n.name, 0, { name: out0, layout: x.layout, shape: x.shape });
        break;
      }
      case 'Pad':
      case 'PadV2':
      case 'MirrorPad': {
        const x = val(ins[0]);
        const p = constOf(ins[1]);
        if (!p) throw new Error(`${n.name}: paddings must be constant`);
        const rank = x.shape.length;
        let pairs = [];
        for (let d = 0; d < rank; d++) pairs.push([Number(p.data[2 * d]), Number(p.data[2 * d + 1])]);
        const shape = x.shape.map((s, d) => s + pairs[d][0] + pairs[d][1]);
        if (x.layout === 'nchw') pairs = NHWC_TO_NCHW.map((d) => pairs[d]);
        const padIns = [x.name, int64Init(`${n.name}/pads`, [...pairs.map((q) => q[0]), ...pairs.map((q) => q[1])])];
        const attrs = { mode: n.op === 'MirrorPad' ? (attrS(n, 'mode') === 'REFLECT' ? 'reflect' : 'edge') : 'constant' };
        if (n.op === 'PadV2') {
          const cv = constOf(ins[2]);
          padIns.push(addInitializer(`${n.name}/cv`, { dtype: 'float32', shape: [], data: [cv.data[0]] }));
        }
        emit('Pad', padIns, [out0], attrs);
        setVal(n.name, 0, { name: out0, layout: x.layout, shape });
        break;
      }
      case 'ConcatV2': {
        const axC = constOf(ins[ins.length - 1]);
        const parts = ins.slice(0, -1).map((i) => ({ ref: i, c: constOf(i) }));
        const vs = parts.map((p) => (p.c ? { c: p.c, shape: p.c.shape } : { v: val(p.ref), shape: val(p.ref).shape }));
        const rank = vs[0].shape.length;
        let axis = Number(axC.data[0]);
        if (axis < 0) axis += rank;
        const shape = vs[0].shape.slice();
        shape[axis] = vs.reduce((a, v) => a + v.shape[axis], 0);
        const useNCHW = rank === 4 && vs.some((v) => v.v?.layout === 'nchw');
        const names = vs.map((v) => (v.c ? addInitializer(`${n.name}/c`, useNCHW ? toNCHWConst(v.c, 4) : v.c) : useNCHW ? asNCHW(v.v) : asPlain(v.v)));
        emit('Concat', names, [out0], { axis: useNCHW ? NHWC_TO_NCHW.indexOf(axis) : axis });
        setVal(n.name, 0, { name: out0, layout: useNCHW ? 'nchw' : 'plain', shape });
        break;
      }
      case 'Transpose': {
        const x = val(ins[0]);
        const perm = constOf(ins[1]).data.map(Number);
        const shape = perm.map((p) => x.shape[p]);
        // stored axis for each logical axis of x
        const storedOf = x.layout === 'nchw' ? [0, 2, 3, 1] : x.shape.map((_, i) => i);
        const r = perm.map((p) => storedOf[p]);
        const isId = r.every((v, i) => v === i);
        if (isId) setVal(n.name, 0, { name: x.name, layout: 'plain', shape });
        else if (r.length === 4 && r.join() === '0,2,3,1') setVal(n.name, 0, { name: x.name, layout: 'nchw', shape });
        else {
          emit('Transpose', [x.name], [out0], { perm: r });
          setVal(n.name, 0, { name: out0, layout: 'plain', shape });
        }
        break;
      }
      case 'Reshape': {
        const x = val(ins[0]);
        const sc = constOf(ins[1]);
        if (!sc) throw new Error(`${n.name}: shape must be constant`);
        const want = sc.data.map(Number);
        const total = size(x.shape);
        const known = want.reduce((a, v, i) => (v === -1 ? a : a * (v === 0 ? x.shape[i] : v)), 1);
        const shape = want.map((v, i) => (v === -1 ? total / known : v === 0 ? x.shape[i] : v));
        emit('Reshape', [asPlain(x), int64Init(`${n.name}/shape`, shape)], [out0]);
        setVal(n.name, 0, { name: out0, layout: 'plain', shape });
        break;
      }
      case 'SplitV':
      case 'Split': {
        let x;
        let sizes;
        let axis;
        if (n.op === 'SplitV') {
          x = val(ins[0]);
          sizes = constOf(ins[1]).data.map(Number);
          axis = Number(constOf(ins[2]).data[0]);
        } else {
          x = val(ins[1]);
          axis = Number(constOf(ins[0]).data[0]);
        }
        if (axis < 0) axis += x.shape.length;
        const num = Number(n.attr?.num_split?.i ?? sizes?.length);
        if (!sizes) sizes = new Array(num).fill(x.shape[axis] / num);
        const neg = sizes.indexOf(-1);
        if (neg >= 0) sizes[neg] = x.shape[axis] - sizes.reduce((a, v) => (v === -1 ? a : a + v), 0);
        const outs = sizes.map((_, i) => fresh(`${n.name}_${i}`));
        const useNCHW = x.layout === 'nchw';
        emit('Split', [x.name, int64Init(`${n.name}/split`, sizes)], outs, { axis: useNCHW ? NHWC_TO_NCHW.indexOf(axis) : axis });
        outs.forEach((o, i) => {
          const shape = x.shape.slice();
          shape[axis] = sizes[i];
          setVal(n.name, i, { name: o, layout: x.layout, shape });
        });
        break;
      }
      case 'ResizeBilinear':
      case 'ResizeNearestNeighbor': {
        const x = val(ins[0]);
        const sz = constOf(ins[1]).data.map(Number);
        const alignCorners = attrB(n, 'align_corners');
        const halfPixel = attrB(n, 'half_pixel_centers');
        const shape = [x.shape[0], sz[0], sz[1], x.shape[3]];
        const ct = alignCorners ? 'align_corners' : halfPixel ? (n.op === 'ResizeBilinear' ? 'half_pixel' : 'tf_half_pixel_for_nn') : 'asymmetric';
        const attrs = { mode: n.op === 'ResizeBilinear' ? 'linear' : 'nearest', coordinate_transformation_mode: ct };
        if (n.op !== 'ResizeBilinear') attrs.nearest_mode = alignCorners ? 'round_prefer_ceil' : 'floor';
        emit('Resize', [asNCHW(x), '', '', int64Init(`${n.name}/sizes`, [shape[0], shape[3], shape[1], shape[2]])], [out0], attrs);
        setVal(n.name, 0, { name: out0, layout: 'nchw', shape });
        break;
      }
      default:
        throw new Error(`${modelJsonPath}: unsupported op ${n.op} (${n.name})`);
    }
    used.add(n.op);
  }

  // ---- outputs ----
  const sig = model.signature?.outputs;
  let outRefs;
  if (sig && Object.keys(sig).length) {
    outRefs = Object.entries(sig).map(([key, o]) => ({ key: key.includes(':') ? key.split(':')[0] : key, ref: o.name }));
  } else {
    outRefs = nodes.filter((n) => n.op !== 'Const' && !consumers.has(n.name)).map((n) => ({ key: n.name, ref: `${n.name}:0` }));
  }
  outRefs.sort((a, b) => a.key.localeCompare(b.key, 'en', { numeric: true }));
  const outputs = [];
  for (const { key, ref } of outRefs) {
    const v = val(ref);
    const name = opts.outputNames?.[key] ?? key;
    emit('Identity', [asPlain(v)], [name]);
    outputs.push({ name, dataType: DataType.FLOAT, dims: v.shape, tfName: ref });
  }

  const bytes = encodeModel({
    graphName: model.generatedBy ? `from ${model.generatedBy}` : 'tfjs-graph',
    nodes: onnxNodes,
    initializers,
    inputs,
    outputs,
    opset: 13,
    producer: 'kuzet-tfjs2onnx',
  });
  const stats = { nodes: onnxNodes.length, initializers: initializers.length, transposes: onnxNodes.filter((x) => x.opType === 'Transpose').length };
  return { bytes, inputs: inputs.map((i) => ({ name: i.name, dims: i.dims })), outputs: outputs.map((o) => ({ name: o.name, dims: o.dims, tfName: o.tfName })), stats, ops: [...used] };
}

/** Reshape a TF (NHWC-broadcastable) constant to broadcast against an NCHW tensor of the given rank. */
function toNCHWConst(c, rank) {
  if (c.shape.length > rank) throw new Error('constant rank too high');
  const shape = [...new Array(rank - c.shape.length).fill(1), ...c.shape];
  const p = permute(c.half ?? c.data, shape, NHWC_TO_NCHW);
  return { dtype: c.dtype, shape: p.shape, data: c.half ? Float32Array.from(p.data, halfToFloat) : p.data, half: c.half ? p.data : undefined };
}

function spatialPads(inShape, k, strides, dil, padding, explicit, name) {
  const [, h, w] = inShape;
  const dims = [h, w];
  const before = [];
  const after = [];
  const out = [];
  for (let i = 0; i < 2; i++) {
    const s = strides[i + 1];
    const eff = (k[i] - 1) * dil[i + 1] + 1;
    if (padding === 'SAME') {
      const o = Math.ceil(dims[i] / s);
      const total = Math.max((o - 1) * s + eff - dims[i], 0);
      before.push(Math.floor(total / 2));
      after.push(total - Math.floor(total / 2));
      out.push(o);
    } else if (padding === 'VALID') {
      before.push(0);
      after.push(0);
      out.push(Math.floor((dims[i] - eff) / s) + 1);
    } else if (padding === 'EXPLICIT') {
      const b = explicit[2 * (i + 1)];
      const a = explicit[2 * (i + 1) + 1];
      before.push(b);
      after.push(a);
      out.push(Math.floor((dims[i] + b + a - eff) / s) + 1);
    } else throw new Error(`${name}: unsupported padding ${padding}`);
  }
  return { pads: [before[0], before[1], after[0], after[1]], outH: out[0], outW: out[1] };
}
