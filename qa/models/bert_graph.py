"""Build time: a plain BERT sentence model's weights -> its ONNX graph, written directly, without torch.

Owns the export of the models whose layout is known here: a BERT encoder
(`BertModel`, absolute positions, exact GELU) in sentence-transformers' plain
layout (qa/models/export.py's `plain_layout`: transformer, mean pooling,
normalisation), weights in `model.safetensors`. The packaged
all-MiniLM-L6-v2 is one. The graph computes what transformers' eager
`BertModel` followed by mean pooling and normalisation computes, op for op
(embeddings and their LayerNorm; per layer: attention with the additive
mask, its output LayerNorm, the GELU feed-forward and its LayerNorm), with
the same inputs and outputs (the pooled vector; the token vectors before pooling) as the traced export (qa/models/onnx_model.py runs
either).

Why: tracing needs torch and transformers imported and the model loaded,
most of a fresh machine's wait for its first answer (docs/BENCHMARKS.md,
first_start); reading the weights with safetensors and writing the graph
takes a fraction of that. The graph is checked like a traced one
(qa/models/export.py): onnxruntime must load it, and its vectors of the
sample texts must agree with torch's within the same tolerance.

How the file is written: the few ONNX messages the graph needs (model,
graph, node, attribute, tensor, value info) are encoded here, in protobuf's
wire format, the bytes the onnx package's helpers and `onnx.save` give for
them (tests/test_onnx.py compares the two, and runs onnx's checker on ours).
Importing onnx (its compiled helpers and ml_dtypes) alone took longer than
writing the graph, in series on a fresh machine's way to its first answer.

Limits: BERT only, in that layout (anything else is None: traced instead);
fp32. The encoder writes only the fields used here.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np

# The graph's inputs, as the traced export names them.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# The ONNX IR version written: the one that goes with OPSET 17 (onnx 1.12's), which every onnxruntime
# the requirements allow reads.
IR_VERSION = 8


def supported(folder: Path) -> bool:
    """`folder`'s transformer is a BERT encoder this module writes (its weights in model.safetensors)."""
    try:
        config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (config.get("model_type") == "bert" and config.get("architectures") in (None, ["BertModel"])
            and config.get("hidden_act") == "gelu"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and (Path(folder) / "model.safetensors").is_file())


def write(folder: Path, out_file: Path, opset: int) -> None:
    """Write the ONNX graph of the BERT model in `folder` (mean pooled, normalised) to `out_file`."""
    out_file.write_bytes(graph_bytes(folder, opset))


def graph_bytes(folder: Path, opset: int) -> bytes:
    """The serialised ONNX model of the BERT model in `folder` (mean pooled, normalised)."""
    from safetensors.numpy import load_file

    config = json.loads((Path(folder) / "config.json").read_text(encoding="utf-8"))
    weights = load_file(str(Path(folder) / "model.safetensors"))
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_size = hidden // heads
    eps = float(config.get("layer_norm_eps", 1e-12))
    nodes, initializers = [], []
    counter = [0]

    def name(stem: str) -> str:
        counter[0] += 1
        return f"{stem}_{counter[0]}"

    def const(array, stem: str = "c") -> str:
        tensor_name = name(stem)
        initializers.append(_tensor(tensor_name, np.asarray(array)))
        return tensor_name

    def weight(key: str, transpose: bool = False) -> str:
        array = weights[prefix + key].astype(np.float32)
        return const(np.ascontiguousarray(array.T) if transpose else array, key)

    def node(op: str, inputs: list[str], **attributes) -> str:
        output = name(op.lower())
        nodes.append(_node(op, inputs, [output], attributes))
        return output

    def linear(x: str, key: str) -> str:
        return node("Add", [node("MatMul", [x, weight(f"{key}.weight", transpose=True)]), weight(f"{key}.bias")])

    def layer_norm(x: str, key: str) -> str:
        return node("LayerNormalization", [x, weight(f"{key}.weight"), weight(f"{key}.bias")], axis=-1, epsilon=eps)

    # Embeddings: word + position (0 .. tokens-1) + token type, then LayerNorm.
    tokens = node("Gather", [node("Shape", ["input_ids"]), const(np.array(1, np.int64))], axis=0)
    positions = node("Range", [const(np.array(0, np.int64)), tokens, const(np.array(1, np.int64))])
    x = node("Add", [node("Add", [node("Gather", [weight("embeddings.word_embeddings.weight"), "input_ids"]),
                                  node("Gather", [weight("embeddings.position_embeddings.weight"), positions])]),
                     node("Gather", [weight("embeddings.token_type_embeddings.weight"), "token_type_ids"])])
    x = layer_norm(x, "embeddings.LayerNorm")

    # The additive mask of transformers' eager attention: 0 where attended, the float's minimum where padded.
    mask = node("Cast", ["attention_mask"], to=_FLOAT)
    additive = node("Mul", [node("Sub", [const(np.array(1.0, np.float32)), mask]),
                            const(np.array(np.finfo(np.float32).min, np.float32))])
    additive = node("Unsqueeze", [additive, const(np.array([1, 2], np.int64))])  # [batch, 1, 1, tokens]
    split = const(np.array([0, 0, heads, head_size], np.int64))
    merged = const(np.array([0, 0, hidden], np.int64))
    scale = const(np.array(1.0 / math.sqrt(head_size), np.float32))

    for layer in range(int(config["num_hidden_layers"])):
        key = f"encoder.layer.{layer}"

        def heads_of(projection: str, perm: list[int]) -> str:
            return node("Transpose", [node("Reshape", [linear(x, f"{key}.attention.self.{projection}"), split])],
                        perm=perm)
        query = heads_of("query", [0, 2, 1, 3])  # [batch, heads, tokens, head]
        keys = heads_of("key", [0, 2, 3, 1])  # [batch, heads, head, tokens]
        values = heads_of("value", [0, 2, 1, 3])
        scores = node("Add", [node("Mul", [node("MatMul", [query, keys]), scale]), additive])
        context = node("MatMul", [node("Softmax", [scores], axis=-1), values])
        context = node("Reshape", [node("Transpose", [context], perm=[0, 2, 1, 3]), merged])
        x = layer_norm(node("Add", [linear(context, f"{key}.attention.output.dense"), x]),
                       f"{key}.attention.output.LayerNorm")
        inner = linear(x, f"{key}.intermediate.dense")
        gelu = node("Mul", [node("Mul", [inner, node("Add", [node("Erf", [node("Div", [inner, const(
            np.array(math.sqrt(2.0), np.float32))])]), const(np.array(1.0, np.float32))])]),
            const(np.array(0.5, np.float32))])
        x = layer_norm(node("Add", [linear(gelu, f"{key}.output.dense"), x]), f"{key}.output.LayerNorm")

    # The last layer's token vectors, before pooling, are an output too (answer choice's token match).
    nodes.append(_node("Identity", [x], ["token_embeddings"], {}))
    # Mean pooling over the attended tokens, then unit length (sentence-transformers' Pooling, Normalize).
    weights_of_tokens = node("Unsqueeze", [mask, const(np.array([2], np.int64))])
    summed = node("ReduceSum", [node("Mul", [x, weights_of_tokens]), const(np.array([1], np.int64))], keepdims=0)
    count = node("Clip", [node("ReduceSum", [weights_of_tokens, const(np.array([1], np.int64))], keepdims=0),
                          const(np.array(1e-9, np.float32))])
    pooled = node("Div", [summed, count])
    norm = node("Clip", [node("ReduceL2", [pooled], axes=[1], keepdims=1),
                         const(np.array(1e-12, np.float32))])
    nodes.append(_node("Div", [pooled, norm], ["sentence_embedding"], {}))

    graph = b"".join([
        *(_field(1, n) for n in nodes), _field(2, b"sentence_embedding"), *(_field(5, t) for t in initializers),
        *(_field(11, _value_info(n, _INT64, ["batch", "tokens"])) for n in INPUTS),
        _field(12, _value_info("sentence_embedding", _FLOAT, ["batch", hidden])),
        _field(12, _value_info("token_embeddings", _FLOAT, ["batch", "tokens", hidden]))])
    opset_id = _field(1, b"") + _varint_field(2, opset)  # the default domain, named (as onnx's helper does)
    return _varint_field(1, IR_VERSION) + _field(2, b"qa") + _field(7, graph) + _field(8, opset_id)


# ---------------------------------------------------------------------- ONNX's messages in protobuf's wire format
# Field numbers from onnx.proto (proto2: a field that is set is written, even when zero; repeated numbers are
# not packed), fields in the order of their numbers.

_FLOAT, _INT64 = 1, 7  # TensorProto.DataType
_ATTRIBUTE_FLOAT, _ATTRIBUTE_INT, _ATTRIBUTE_INTS = 1, 2, 7  # AttributeProto.AttributeType
_DATA_TYPES = {np.dtype(np.float32): _FLOAT, np.dtype(np.int64): _INT64}


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # a negative int64 is written as its two's complement, in ten bytes
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3) + _varint(value)


def _field(number: int, value: bytes | str) -> bytes:
    """A length-delimited field: a string, bytes or an embedded message."""
    data = value.encode("utf-8") if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _tensor(name: str, array: np.ndarray) -> bytes:
    """TensorProto: dims, data_type, name, raw_data (little-endian), as onnx's numpy_helper.from_array."""
    return b"".join([*(_varint_field(1, d) for d in array.shape), _varint_field(2, _DATA_TYPES[array.dtype]),
                     _field(8, name), _field(9, np.ascontiguousarray(array, array.dtype.newbyteorder("<")).tobytes())])


def _attribute(name: str, value) -> bytes:
    """AttributeProto of an int, a float or a list of ints, as onnx's helper.make_attribute."""
    if isinstance(value, (list, tuple)):
        return _field(1, name) + b"".join(_varint_field(8, v) for v in value) + _varint_field(20, _ATTRIBUTE_INTS)
    if isinstance(value, float):
        return _field(1, name) + _varint(2 << 3 | 5) + struct.pack("<f", value) + _varint_field(20, _ATTRIBUTE_FLOAT)
    return _field(1, name) + _varint_field(3, int(value)) + _varint_field(20, _ATTRIBUTE_INT)


def _node(op: str, inputs: list[str], outputs: list[str], attributes: dict) -> bytes:
    """NodeProto: inputs, outputs, op_type, attributes sorted by name (as onnx's helper.make_node)."""
    return b"".join([*(_field(1, i) for i in inputs), *(_field(2, o) for o in outputs), _field(4, op),
                     *(_field(5, _attribute(k, v)) for k, v in sorted(attributes.items()))])


def _value_info(name: str, elem_type: int, dims: list) -> bytes:
    """ValueInfoProto of a tensor: its name, element type and shape (a str is a named axis, an int a size)."""
    shape = b"".join(_field(1, _field(2, d) if isinstance(d, str) else _varint_field(1, d)) for d in dims)
    return _field(1, name) + _field(2, _field(1, _varint_field(1, elem_type) + _field(2, shape)))


__all__ = ["supported", "write", "INPUTS"]
