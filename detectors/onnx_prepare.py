"""Prepare an ONNX detector for batched CPU inference: dynamic batch axis, float weights, head re-anchored to imgsz.

Why each step (found by reading ultralytics 8.4.190 ``nn/autobackend.py`` and measuring on this project's CPU):

1. **Dynamic batch.** ultralytics reads the export arguments from the ONNX metadata. For a model exported with
   ``dynamic=False`` (the shared ``yolov8n_int8.onnx`` is one) ``AutoBackend.forward`` silently splits a batch of N
   images into N session runs of batch 1 (``for x in im.split(self.batch)``) — "batched" prediction is then one
   call per image. We give the input/output a symbolic ``batch`` dimension, replace the ``1`` that head Reshapes pin
   (``[1, 64, -1]``, ``[1, 4, 16, 8400]`` …) by ``0`` (copy the input's own batch), and set ``dynamic: True`` in the
   metadata so ultralytics passes the whole batch to onnxruntime.
2. **Float weights.** The shared model is *dynamically* quantized (``DynamicQuantizeLinear`` → ``ConvInteger``): the
   activation scale is the min/max of the whole input tensor, so in a batch every image shares one quantization
   range and a crop's scores change with its batch neighbours (measured: up to 0.37 difference in class score).
   Folding ``(w_q - zp) * scale`` back into float ``Conv`` weights removes that coupling (batched == single, to the
   last bit) and is not slower on x86, where ``ConvInteger`` has no fast kernel.
3. **Re-anchor for imgsz.** YOLOv8's head bakes the anchor grid and strides of the export size (8400 anchors at
   640) into constants. The weights are size-independent, so for a smaller ``imgsz`` (320: 2100 anchors, ~4x less
   work, Frigate's usual region size) we recompute those constants.

Nothing is written to the source folder (the shared models folder is read-only): the prepared copy goes to
``cache_dir`` keyed by the source's SHA-256 and the options, and is re-used.
"""
from __future__ import annotations

import ast
import hashlib
import logging
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _anchors(imgsz: int, strides: tuple[int, ...] = (8, 16, 32)) -> tuple[np.ndarray, np.ndarray]:
    """Anchor centres (1, 2, N) and strides (1, N) exactly as ultralytics ``make_anchors`` lays them out."""
    points, stride_list = [], []
    for s in strides:
        n = imgsz // s
        ys, xs = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        stride_list.append(np.full(n * n, s))
    return np.concatenate(points, 1)[None].astype(np.float32), np.concatenate(stride_list)[None].astype(np.float32)


def _free_batch(graph) -> int:
    from onnx import numpy_helper

    for value in list(graph.input) + list(graph.output):
        dim = value.type.tensor_type.shape.dim[0]
        dim.Clear()
        dim.dim_param = "batch"
    inits = {i.name: i for i in graph.initializer}
    changed = 0
    for node in graph.node:
        if node.op_type != "Reshape" or len(node.input) < 2 or node.input[1] not in inits or node.input[0] in inits:
            continue
        shape = numpy_helper.to_array(inits[node.input[1]]).astype(np.int64)
        if shape.ndim != 1 or shape.size < 3 or shape[0] != 1 or shape[1] == -1:
            continue  # not a batch-pinning head reshape ([1, -1, 1, 1] reshapes per-channel scales)
        new = shape.copy()
        new[0] = 0  # 0 = copy the input's first dimension (allowzero=0), i.e. the batch
        name = f"{node.input[1]}__dynbatch_{changed}"
        graph.initializer.append(numpy_helper.from_array(new, name=name))
        node.input[1] = name
        changed += 1
    return changed


def _dequantize(graph) -> int:
    """Fold DynamicQuantizeLinear→ConvInteger→Cast→Mul(scale)[→Add(bias)] chains into float Conv nodes."""
    from onnx import helper, numpy_helper

    inits = {i.name: i for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list] = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    replace: dict[int, object] = {}
    drop: set[int] = set()
    for conv in [n for n in graph.node if n.op_type == "ConvInteger"]:
        dql = producer.get(conv.input[0])
        users = consumers.get(conv.output[0], [])
        if dql is None or dql.op_type != "DynamicQuantizeLinear" or len(users) != 1 or users[0].op_type != "Cast":
            raise ValueError(f"unexpected quantized pattern at {conv.name}")
        cast = users[0]
        (mul,) = consumers[cast.output[0]]
        scale_mul = producer[mul.input[1]]
        w_scale = numpy_helper.to_array(inits[scale_mul.input[1]]).astype(np.float32)
        w_q = numpy_helper.to_array(inits[conv.input[1]]).astype(np.float32)
        w_zp = numpy_helper.to_array(inits[conv.input[3]]).astype(np.float32) if len(conv.input) > 3 else 0.0
        if np.ndim(w_scale) == 1:
            w_scale = w_scale.reshape(-1, 1, 1, 1)
            w_zp = np.reshape(w_zp, (-1, 1, 1, 1)) if np.ndim(w_zp) == 1 else w_zp
        weight_name = f"{conv.input[1]}__f32"
        graph.initializer.append(numpy_helper.from_array(((w_q - w_zp) * w_scale).astype(np.float32), weight_name))
        inputs, output, chain = [dql.input[0], weight_name], mul.output[0], [cast, mul, scale_mul]
        after = consumers.get(mul.output[0], [])
        if len(after) == 1 and after[0].op_type == "Add":
            bias_src = producer.get(after[0].input[1])
            if bias_src is not None and bias_src.op_type == "Reshape" and bias_src.input[0] in inits:
                bias = numpy_helper.to_array(inits[bias_src.input[0]]).astype(np.float32).ravel()
                graph.initializer.append(numpy_helper.from_array(bias, f"{weight_name}_bias"))
                inputs.append(f"{weight_name}_bias")
                output = after[0].output[0]
                chain += [after[0], bias_src]
        node = helper.make_node("Conv", inputs, [output], name=f"{conv.name}__f32")
        node.attribute.extend(conv.attribute)
        replace[id(conv)] = node
        drop.update(id(n) for n in chain)
    nodes = [replace.get(id(n), n) for n in graph.node if id(n) not in drop]
    outputs = {o.name for o in graph.output}
    while True:  # prune what no longer feeds an output (the DynamicQuantizeLinear nodes)
        used = set(outputs)
        for n in nodes:
            used.update(n.input)
        kept = [n for n in nodes if any(o in used for o in n.output)]
        if len(kept) == len(nodes):
            break
        nodes = kept
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in nodes for i in n.input}
    kept_inits = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept_inits)
    return len(replace)


def _reanchor(graph, imgsz: int) -> bool:
    """Swap the head's anchor/stride constants for ``imgsz``; False when the graph has no recognisable YOLOv8 head."""
    from onnx import numpy_helper

    native = None
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.ndim == 3 and arr.shape[:2] == (1, 2):
            native = arr.shape[2]
    if native is None:
        return False
    anchors, strides = _anchors(imgsz)
    n = anchors.shape[2]
    for idx, init in enumerate(list(graph.initializer)):
        arr = numpy_helper.to_array(init)
        new = None
        if arr.shape == (1, 2, native):
            new = anchors
        elif arr.shape == (1, native):
            new = strides
        elif arr.ndim == 1 and arr.size in (3, 4) and arr.dtype == np.int64 and arr[-1] == native:
            new = arr.copy()
            new[-1] = -1
        if new is not None:
            graph.initializer[idx].CopyFrom(numpy_helper.from_array(new, init.name))
    inp = graph.input[0].type.tensor_type.shape.dim
    inp[2].Clear(), inp[3].Clear()
    inp[2].dim_value = inp[3].dim_value = imgsz
    out = graph.output[0].type.tensor_type.shape.dim
    out[2].Clear()
    out[2].dim_value = n
    return True


def prepare_onnx(source: Path, cache_dir: Path, imgsz: int, max_batch: int = 8, dequantize: bool = True) -> Path:
    """Return the prepared copy of ``source`` (created in ``cache_dir`` when missing).

    Raises ``ValueError`` when the graph does not look like the YOLOv8-family export this surgery understands;
    callers then fall back to the original file (correct, but one call per image).
    """
    import onnx

    source = Path(source)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = f"{_sha256(source)[:16]}.b{max_batch}.s{imgsz}{'.f32' if dequantize else ''}"
    target = cache_dir / f"{source.stem}.{key}.onnx"
    if target.exists():
        return target
    model = onnx.load(str(source))
    graph = model.graph
    props = {p.key: p for p in model.metadata_props}
    native = ast.literal_eval(props["imgsz"].value)[0] if "imgsz" in props else None
    freed = _free_batch(graph)
    folded = _dequantize(graph) if dequantize and any(n.op_type == "ConvInteger" for n in graph.node) else 0
    if native is not None and native != imgsz:
        if imgsz % 32:
            raise ValueError(f"imgsz {imgsz} is not a multiple of 32")
        if not _reanchor(graph, imgsz):
            raise ValueError("cannot re-anchor this head; use the model's native imgsz")
        props["imgsz"].value = repr([imgsz, imgsz])
    del graph.value_info[:]
    if "args" in props:
        args = ast.literal_eval(props["args"].value)
        args.update(dynamic=True, batch=max_batch, imgsz=imgsz)
        props["args"].value = repr(args)
    if "batch" in props:
        props["batch"].value = str(max_batch)
    onnx.checker.check_model(model)
    tmp = target.with_name(target.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(target)
    log.info("prepared %s → %s (%d reshapes freed, %d convs folded to float, imgsz %s)",
             source.name, target.name, freed, folded, imgsz)
    return target
