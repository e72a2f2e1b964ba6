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
with onnx takes a fraction of that. The graph is checked like a traced one
(qa/models/export.py): its vectors of the sample texts must agree with
torch's within the same tolerance.

Limits: BERT only, in that layout (anything else is None: traced instead);
fp32.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

# The graph's inputs, as the traced export names them.
INPUTS = ("input_ids", "attention_mask", "token_type_ids")


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
    import onnx
    from onnx import TensorProto, helper, numpy_helper
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
        tensor = numpy_helper.from_array(np.asarray(array), name(stem))
        initializers.append(tensor)
        return tensor.name

    def weight(key: str, transpose: bool = False) -> str:
        array = weights[prefix + key].astype(np.float32)
        return const(np.ascontiguousarray(array.T) if transpose else array, key)

    def node(op: str, inputs: list[str], **attributes) -> str:
        output = name(op.lower())
        nodes.append(helper.make_node(op, inputs, [output], **attributes))
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
    mask = node("Cast", ["attention_mask"], to=TensorProto.FLOAT)
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
    nodes.append(helper.make_node("Identity", [x], ["token_embeddings"]))
    # Mean pooling over the attended tokens, then unit length (sentence-transformers' Pooling, Normalize).
    weights_of_tokens = node("Unsqueeze", [mask, const(np.array([2], np.int64))])
    summed = node("ReduceSum", [node("Mul", [x, weights_of_tokens]), const(np.array([1], np.int64))], keepdims=0)
    count = node("Clip", [node("ReduceSum", [weights_of_tokens, const(np.array([1], np.int64))], keepdims=0),
                          const(np.array(1e-9, np.float32))])
    pooled = node("Div", [summed, count])
    norm = node("Clip", [node("ReduceL2", [pooled], axes=[1], keepdims=1),
                         const(np.array(1e-12, np.float32))])
    nodes.append(helper.make_node("Div", [pooled, norm], ["sentence_embedding"]))

    dims = ["batch", "tokens"]
    graph = helper.make_graph(
        nodes, "sentence_embedding",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in INPUTS],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", hidden]),
         helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "tokens", hidden])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="qa")
    onnx.checker.check_model(model)
    onnx.save(model, str(out_file))


__all__ = ["supported", "write", "INPUTS"]
