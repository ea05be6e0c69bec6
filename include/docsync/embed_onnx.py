"""The embedding model on ONNX Runtime with int8 weights (``DOCSYNC_EMBED_BACKEND=onnx-int8``).

The configured sentence-transformers model's transformer is exported to ONNX from its local
files (``torch.onnx.export``) and its MatMul weights quantized dynamically to int8, per output
channel (``onnxruntime.quantization``): per-tensor or Gather-quantized variants moved vectors to
a cosine of ~0.91 from fp32, per-channel MatMul-only keeps them at >= 0.98 (README, "Benchmarks").
Pooling and normalisation are the model's own (its ``Pooling`` module's mode), done in numpy.

The export runs offline once: ``docsync export-onnx`` (run by ``make setup`` and the Dockerfile),
or at first use, under a file lock, into ``DOCSYNC_EMBED_ONNX_DIR``. Nothing is ever downloaded.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np

BACKENDS = ("torch", "onnx-int8")
FILE = "model_int8.onnx"


def versions() -> str:
    """What decides the exported file besides the model: the exporter's and quantizer's versions."""
    return f"torch {importlib.metadata.version('torch')}, onnxruntime {importlib.metadata.version('onnxruntime')}"


def export_dir(root: Path, model_dir: Path) -> Path:
    """Where the int8 export of a model's transformer lives: keyed by what the export reads (its
    config and weights: names, sizes, first and last MiB) and the exporter's versions. Settings
    applied outside the graph (the token window, pooling) share one export."""
    from docsync.embed import hash_file_sample  # here: docsync.embed imports this module on use

    files = hashlib.sha256(versions().encode())
    for path in sorted(model_dir.iterdir()):
        if path.name == "config.json" or path.suffix in (".safetensors", ".bin"):
            hash_file_sample(files, path, path.name)
    return root / f"transformer-{files.hexdigest()[:16]}"


def _pooling(directory: Path) -> tuple[str, bool]:
    """(pooling mode, normalized) from the model's modules; only Transformer -> Pooling [->
    Normalize] models run here (anything else: DOCSYNC_EMBED_BACKEND=torch)."""
    modules = json.loads((directory / "modules.json").read_text())
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise ValueError(f"the onnx-int8 embedding backend supports Transformer+Pooling(+Normalize) models, "
                         f"not {kinds}: set DOCSYNC_EMBED_BACKEND=torch")
    config = json.loads((directory / modules[1]["path"] / "config.json").read_text())
    mode = "cls" if config.get("pooling_mode_cls_token") else "mean"
    if not (config.get("pooling_mode_mean_tokens") or mode == "cls"):
        raise ValueError("the onnx-int8 embedding backend supports mean or CLS pooling: set DOCSYNC_EMBED_BACKEND=torch")
    return mode, kinds[-1] == "Normalize"


def export(model_dir: Path, target: Path) -> Path:
    """Export ``model_dir``'s transformer to ``target``/model_int8.onnx (local files only);
    atomic: a concurrent or interrupted export never leaves a half-written model behind."""
    if (target / FILE).is_file():
        return target / FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second worker waits for the first one's export
        if (target / FILE).is_file():
            return target / FILE
        _pooling(model_dir)  # refuse an unsupported model before spending time on it
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            _export_to(model_dir, scratch)
            scratch.chmod(0o755)  # mkdtemp's 0700 would hide it from other users of the environment
            os.replace(scratch, target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return target / FILE


def _export_to(model_dir: Path, out: Path) -> None:
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    names = list(tokenizer.model_input_names)
    # Two texts of different lengths: the traced graph must take any batch and padding.
    sample = tokenizer(["an example", "a somewhat longer example sentence"], padding=True, return_tensors="pt")

    class Hidden(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs):
            return self.model(**dict(zip(names, inputs, strict=True))).last_hidden_state

    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape-dependent Python branches
        # The TorchScript exporter: the dynamo one needs onnxscript, which docsync does not install.
        torch.onnx.export(Hidden(), tuple(sample[n] for n in names), str(out / "fp32.onnx"), dynamo=False,
                          input_names=names, output_names=["last_hidden_state"], dynamic_axes=axes,
                          opset_version=17)
    quantize_dynamic(str(out / "fp32.onnx"), str(out / FILE), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=["MatMul"])
    (out / "fp32.onnx").unlink()
    (out / "export.json").write_text(json.dumps({"inputs": names, "versions": versions()}))


def intra_op_threads() -> int:
    """ONNX Runtime's threads per run: the process's share of the cores (0: ORT's default).

    Batch workers set ``OMP_NUM_THREADS`` to their share (``pipeline._init_worker``), which torch
    reads and ORT does not: ORT would run every worker's sessions on all physical cores. With two
    workers on two cores each run then waits on a thread the other worker holds: 15-16% more CPU
    for the same texts and no faster (two concurrent processes, 400 chunks each, measured).
    """
    try:
        return max(0, int(os.environ.get("OMP_NUM_THREADS", "0")))
    except ValueError:
        return 0


class OnnxEncoder:
    """``SentenceTransformer.encode``'s subset that docsync calls, on ONNX Runtime."""

    def __init__(self, model_dir: Path, onnx_file: Path, max_tokens: int) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.model_dir, self.max_seq_length = model_dir, max_tokens
        self.pooling, self.normalized = _pooling(model_dir)
        self.inputs = json.loads((onnx_file.parent / "export.json").read_text())["inputs"]
        options = ort.SessionOptions()
        # No busy-waiting between batches: the worker's other threads (parsing, PII) need the core.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.intra_op_num_threads = intra_op_threads()
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
        self._load_tokenizer = lambda: AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
        self._local = threading.local()
        self.tokenizer = self._thread_tokenizer()

    def _thread_tokenizer(self):
        # A fast tokenizer's truncation/padding are mutable state on the instance (see
        # docsync.embed.get_tokenizer): one per thread.
        if getattr(self._local, "tokenizer", None) is None:
            self._local.tokenizer = self._load_tokenizer()
        return self._local.tokenizer

    def encode(self, texts: list[str], batch_size: int = 32, normalize_embeddings: bool = False,
               convert_to_numpy: bool = True, show_progress_bar: bool = False) -> np.ndarray:
        """Vectors of ``texts`` (a float32 array), one text per run.

        Dynamic quantization scales the activations per run over the whole input tensor: in a
        padded batch a text's vector would depend on its neighbours and on the padding (a
        chunk re-embedded in another batch would move). One text per run makes a text's vector
        a function of the text alone, and costs nothing: no padding is computed (measured
        ~25% less CPU than batches of 32). ``batch_size`` only sizes the tokenizer's calls."""
        if not texts:
            return np.zeros((0, self.session.get_outputs()[0].shape[-1]), dtype=np.float32)
        tokenizer = self._thread_tokenizer()
        vectors: list[np.ndarray] = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start : start + batch_size], padding=False, truncation=True,
                              max_length=self.max_seq_length)
            for row in range(len(batch["input_ids"])):
                feed = {n: np.asarray([batch[n][row]], dtype=np.int64) for n in self.inputs}
                hidden = self.session.run(None, feed)[0][0]
                vectors.append(hidden[0] if self.pooling == "cls" else hidden.mean(axis=0))
        out = np.asarray(vectors, dtype=np.float32)
        if normalize_embeddings or self.normalized:
            out = out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)
        return out
