"""rhead from Python: find, inspect and ablate the retrieval heads of language models.

The C++ core (the same library as the ``rhead`` command) loads GGUF files, Hugging Face
directories and llama2.c checkpoints, and computes its attention probes inside the attention
kernel.  This package is a thin layer over it::

    import rhead
    m = rhead.load("model.gguf")
    g = m.generate("The capital of France is", max_new_tokens=8)
    g.probes.argmax          # NumPy [step, layer, head]: each head's argmax key position
    s = rhead.detect(m, out="runs/detect")   # the same run folder as `rhead detect`
    s.mean["2-0"]            # a head's retrieval score
    rhead.read_run("runs/detect")

Long calls release the GIL.  Ctrl-C stops a run between tests and leaves its folder
resumable: call again with the same ``out`` to continue.  Progress goes to ``sys.stderr``
(``progress=False`` turns it off).  Errors raise :class:`rhead.Error` with the one-line
message the command would print.
"""

from __future__ import annotations

import json as _json
import os as _os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Union

if TYPE_CHECKING:  # the arrays come from the extension; NumPy is needed once one is made
    import numpy as _np

from . import _rhead

__version__: str = _rhead.__version__
Error = _rhead.Error
Error.__doc__ = "An rhead error: the message is the one line the command would print."

__all__ = ["load", "Model", "Config", "Generation", "Probes", "detect", "niah", "Scores", "read_scores", "read_run",
           "Error", "__version__"]


@dataclass(frozen=True)
class Config:
    """A model's shape: ``layers`` x ``heads`` query heads sharing ``kv_heads`` KV heads."""

    family: str
    architecture: str
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    context: int
    path: str


@dataclass
class Probes:
    """Attention probes of every decode step, NumPy arrays shaped [step, layer, head].

    ``argmax`` is the key position a head attends to most (ties: the earliest position),
    ``argmax_weight`` its attention weight, ``argmax_token`` the token there, ``copy`` whether
    it holds the token emitted at that step (the copy rule of the retrieval score; a masked
    head never copies), ``sink_mass`` the attention on position 0.  With ``top_k``:
    ``topk`` and ``topk_weight`` shaped [step, layer, head, k] (position -1: fewer keys).
    ``positions[step]`` is the query position of each step.
    """

    positions: _np.ndarray
    argmax: _np.ndarray
    argmax_weight: _np.ndarray
    argmax_token: _np.ndarray
    copy: _np.ndarray
    sink_mass: _np.ndarray
    topk: Optional[_np.ndarray] = None
    topk_weight: Optional[_np.ndarray] = None

    def head(self, name: str) -> Dict[str, _np.ndarray]:
        """One head's series over the steps, by its "L-H" name."""
        layer, head = (int(x) for x in name.split("-"))
        out = {k: getattr(self, k)[:, layer, head] for k in
               ("argmax", "argmax_weight", "argmax_token", "copy", "sink_mass")}
        if self.topk is not None:
            out["topk"] = self.topk[:, layer, head]
            out["topk_weight"] = self.topk_weight[:, layer, head]
        return out


@dataclass
class Generation:
    """The result of :meth:`Model.generate`."""

    text: str                 # the continuation as it reads after the prompt
    tokens: List[int]         # generated ids (the end-of-generation token included when it came)
    prompt_tokens: List[int]
    probes: Optional[Probes]  # None with probes=False
    masked: _np.ndarray       # [layer, head] bool: the heads the mask removed
    kv_full: _np.ndarray      # [layer, head] bool: heads that kept the whole KV cache
    prefill_seconds: float = 0.0
    decode_seconds: float = 0.0
    kv_bytes_held: int = 0    # bytes of K and V the session held at the end (a KV policy's
                              # compacted cache holds less than the whole one)


class Model:
    """A loaded model.  Create it with :func:`rhead.load`."""

    def __init__(self, native: Any):
        self._m = native
        self.config = Config(**native.config())

    @property
    def path(self) -> str:
        """The path (or builtin:NAME) the model was loaded from."""
        return self._m.path

    @property
    def device(self) -> str:
        """Where the forward passes run: "cpu" or "cuda"."""
        return self._m.device

    def __repr__(self) -> str:
        c = self.config
        return (f"<rhead.Model {c.path!r}: {c.family}, {c.layers} layers x {c.heads} heads "
                f"({c.kv_heads} KV heads, head_dim {c.head_dim}) on {self.device}>")

    def tokenize(self, text: str, *, add_bos: bool = True) -> List[int]:
        """Token ids of ``text`` (special tokens written in the text become their ids)."""
        return self._m.tokenize(text, add_bos)

    def detokenize(self, ids: Sequence[int], *, skip_special: bool = True) -> str:
        """The text of ``ids``; ``skip_special`` drops control tokens such as BOS and EOS."""
        return self._m.detokenize([int(i) for i in ids], skip_special)

    def generate(self, prompt: str = "", *, max_new_tokens: int = 64, probes: bool = True, top_k: int = 0,
                 mask: Optional[str] = None, mask_mode: str = "uniform", mask_phase: str = "decode",
                 scores: Optional[str] = None, seed: int = 0, kv_window: int = 0, kv_sink: int = 4,
                 kv_full: str = "none", kv_policy: Optional[str] = None, add_bos: bool = True,
                 stop_at_eos: bool = True) -> Generation:
        """Greedy generation, the way the retrieval-head method decodes, with probes.

        The prompt minus its last token is prefilled; every generated token then has a
        decode step whose probes are recorded (see :class:`Probes`).  The options take the
        grammar strings of the ``rhead attn`` / ``rhead generate`` options:

        - ``mask``: heads to remove: ``none``, ``all``, ``heads:L-H,...``, ``kv:L-G,...``,
          ``top:K`` / ``random:K`` (these need ``scores``: a head_score JSON or a detect
          folder; ``random`` draws with ``seed``).  ``mask_mode`` uniform | zero | mean,
          ``mask_phase`` decode | all.
        - KV policy: restricted heads see the first ``kv_sink`` positions and the last
          ``kv_window`` (0: no policy); ``kv_full`` names the heads that keep everything
          (same grammar); ``kv_policy`` reads a head_policy.json of ``rhead kv-plan``.
        - ``top_k``: also record each head's top-k positions and weights.
        """
        r = self._m.generate(prompt, dict(
            max_new_tokens=max_new_tokens, probes=probes, top_k=top_k, mask=mask or "none",
            mask_mode=mask_mode, mask_phase=mask_phase, scores=_path(scores) or "", seed=seed,
            kv_window=kv_window, kv_sink=kv_sink, kv_full=kv_full, kv_policy=_path(kv_policy) or "",
            add_bos=add_bos, stop_at_eos=stop_at_eos))
        p = r.get("probes")
        return Generation(text=r["text"], tokens=r["tokens"], prompt_tokens=r["prompt_tokens"],
                          probes=Probes(**p) if p is not None else None, masked=r["masked"],
                          kv_full=r["kv_full"], prefill_seconds=r["prefill_seconds"],
                          decode_seconds=r["decode_seconds"], kv_bytes_held=r["kv_bytes_held"])

    def explain(self, context: str, question: str, *, scores: str, top_heads: int = 0, tau: float = 0.5,
                prompt_template: Optional[str] = None, chat_template: Optional[str] = None, no_chat: bool = False,
                max_new_tokens: int = 50, mask: Optional[str] = None, mask_mode: str = "uniform",
                mask_phase: str = "decode", seed: int = 0, kv_window: int = 0, kv_sink: int = 4,
                kv_full: str = "none", kv_policy: Optional[str] = None, context_file: Optional[str] = None,
                html: Optional[str] = None) -> dict:
        """Answers ``question`` over the document ``context`` (its text) as ``rhead explain``
        does, and traces every answer token to the document tokens that the ``top_heads``
        best heads of ``scores`` (a head_score JSON or a detect folder) copied it from
        (0: 10 heads, or every head of a smaller model).

        Returns the explanation document of ``rhead explain --json``: ``answer``,
        ``support_share`` and per token its ``support`` (copied / attended / unsupported),
        ``sink_mass``, ``document_mass`` and ``sources`` (prompt position, byte range in
        the context, head, weight).  ``html`` also writes the offline page.  Masks and KV
        policies take the grammar strings of :meth:`generate`.
        """
        return _rhead.explain(self._m, context, question, dict(
            scores=_path(scores), top_heads=top_heads, tau=float(tau), prompt_template=prompt_template,
            chat_template=chat_template, no_chat=no_chat, max_new_tokens=max_new_tokens, mask=mask or "none",
            mask_mode=mask_mode, mask_phase=mask_phase, seed=seed, kv_window=kv_window, kv_sink=kv_sink,
            kv_full=kv_full, kv_policy=_path(kv_policy), context_file=_path(context_file), html=_path(html)))


def load(path: Union[str, "_os.PathLike[str]"], *, device: Optional[str] = None, threads: int = 0,
         tokenizer: Optional[str] = None, ctx: int = 0, kv_type: str = "f16") -> Model:
    """Loads a model: a ``.gguf`` file, a Hugging Face directory, a llama2.c ``.bin`` (with
    ``tokenizer``) or ``builtin:induction``.

    ``device``: "cpu" or "cuda" (default: cuda when a GPU is present).  ``threads``: OpenMP
    threads for this process (0: all cores).  ``ctx``: KV cache capacity (0: the model's
    context).  ``kv_type``: "f16" or "f32".
    """
    return Model(_rhead.load(_path(path), device or "", int(threads), _path(tokenizer) or "", int(ctx), kv_type))


@dataclass
class Scores:
    """Retrieval scores of every head (the reference ``{"L-H": [scores]}`` format).

    ``mean["L-H"]`` is a head's retrieval score, ``grid[layer, head]`` the same as an array,
    ``per_test[test, layer, head]`` the score of every test (None when the source holds only
    means), ``summary`` the run's summary.json (detect runs).
    """

    mean: Dict[str, float]
    grid: _np.ndarray
    per_test: Optional[_np.ndarray]
    source: str
    summary: Optional[dict] = None

    def top(self, k: int = 10) -> List[str]:
        """The ``k`` best heads, highest first (ties: layer, then head)."""
        return [n for n, _ in sorted(self.mean.items(), key=lambda kv: (-kv[1],) + _head_key(kv[0]))][:k]


def read_scores(path: Union[str, "_os.PathLike[str]"]) -> Scores:
    """Reads scores from a head_score JSON file or a detect run folder (as ``--scores``)."""
    layers, heads, grid, per_test = _rhead.read_scores(_path(path))
    mean = {f"{l}-{h}": float(grid[l, h]) for l in range(layers) for h in range(heads)}
    summary = None
    summary_path = _os.path.join(_path(path), "summary.json")
    if _os.path.isdir(_path(path)) and _os.path.exists(summary_path):
        with open(summary_path, encoding="utf-8") as f:
            summary = _json.load(f)
    return Scores(mean=mean, grid=grid, per_test=per_test, source=_path(path), summary=summary)


def detect(model_or_path: Union[Model, str], *, out: str, needles: Optional[str] = None,
           haystack: Optional[str] = None, lengths: Optional[str] = None,
           depths: Optional[int] = None, prompt_template: Optional[str] = None, chat_template: Optional[str] = None,
           no_chat: bool = False, buffer: Optional[int] = None, max_new_tokens: Optional[int] = None,
           prefix_reuse: bool = True, shard: str = "0/1", progress: Union[bool, Callable[..., Any]] = True,
           device: Optional[str] = None, threads: int = 0, methods: str = "copy") -> Scores:
    """The retrieval-head detection of ``rhead detect``: writes (or resumes) the run folder
    ``out`` (results.jsonl, head_score.json, summary.json, run.json) and returns its scores.

    ``methods``: detectors, comma-separated, as ``--methods`` (copy always; qrhead, lookback,
    previous-token, duplicate-token, induction each write ``head_score.<method>.json``; read
    one with ``read_scores(out + "/head_score.qrhead.json")``).

    ``needles``: needle sets, JSONL (default: built-in).  ``haystack``: a folder of .txt files
    (default: built-in filler).  ``lengths``: "MIN:MAX:N" (default
    1000:50000:20, clipped to the model's context).  ``depths``: number of needle depths
    (default 10).  ``prompt_template``: a prompt with ``{context}`` and ``{question}``.
    ``buffer`` (default 200) and ``max_new_tokens`` (default 50) as the command's options.

    ``progress``: True draws a progress line on stderr, False nothing; a callable is called
    as ``progress(done, total, line)`` after every test (``line``: its results.jsonl entry)
    and may raise to stop the run.  Ctrl-C stops between tests; rerun to resume.
    A path instead of a model is loaded with ``device`` and ``threads``.
    """
    model = model_or_path if isinstance(model_or_path, Model) else load(model_or_path, device=device, threads=threads)
    options = dict(needles=_path(needles), haystack=_path(haystack), lengths=lengths, depths=depths,
                   prompt_template=prompt_template, chat_template=chat_template, no_chat=no_chat, buffer=buffer,
                   max_new_tokens=max_new_tokens, prefix_reuse=prefix_reuse, out=_path(out), shard=shard,
                   methods=methods)
    callback = progress if callable(progress) else None
    _rhead.detect(model._m, options, bool(progress) and callback is None, callback)
    return read_scores(out)


def niah(model_or_path: Union[Model, str], *, out: str, needles: Optional[str] = None,
         haystack: Optional[str] = None, lengths: Optional[str] = None, depths: Optional[int] = None,
         prompt_template: Optional[str] = None, chat_template: Optional[str] = None, no_chat: bool = False,
         buffer: Optional[int] = None, max_new_tokens: Optional[int] = None, prefix_reuse: bool = True,
         mask: Optional[str] = None, scores: Optional[str] = None, seeds: Sequence[int] = (0,),
         mask_mode: str = "uniform", mask_phase: str = "decode", sweep: Optional[str] = None,
         sweep_random: bool = False, baseline: bool = False, kv_window: int = 0, kv_sink: int = 4,
         kv_full: str = "none", kv_policy: Optional[str] = None, kv_sweep_window: Optional[str] = None,
         kv_sweep_full: Optional[str] = None, sink_heads: int = 5, support_heads: int = 10, shard: str = "0/1",
         progress: Union[bool, Callable[..., Any]] = True, device: Optional[str] = None, threads: int = 0) -> dict:
    """The causal NIAH experiment of ``rhead niah``: the grid under head masks and KV
    policies, written to (or resumed from) the run folder ``out``; returns its summary.json.

    Grid and prompt options as :func:`detect` (default needle: the paper's single San
    Francisco needle).  ``mask``: ``none``, ``top:K``, ``random:K``, ``heads:L-H,...``,
    ``kv:L-G,...`` (top/random need ``scores``; each of ``seeds`` is one random condition);
    ``sweep``: e.g. "top:0,5,10" (with ``sweep_random`` also random heads); ``baseline`` also
    runs the unmasked model.  KV policy as :meth:`Model.generate`, and the KV sweep
    ``kv_sweep_window`` "16,32,64" x ``kv_sweep_full`` "top:0,2,4".  ``progress`` as in
    :func:`detect`.
    """
    model = model_or_path if isinstance(model_or_path, Model) else load(model_or_path, device=device, threads=threads)
    options = dict(needles=_path(needles), haystack=_path(haystack), lengths=lengths, depths=depths,
                   prompt_template=prompt_template, chat_template=chat_template, no_chat=no_chat, buffer=buffer,
                   max_new_tokens=max_new_tokens, prefix_reuse=prefix_reuse, out=_path(out), shard=shard,
                   mask=mask or "none", scores=_path(scores), seeds=[int(x) for x in seeds], mask_mode=mask_mode,
                   mask_phase=mask_phase, sweep=sweep, sweep_random=sweep_random, baseline=baseline,
                   kv_window=kv_window, kv_sink=kv_sink, kv_full=kv_full, kv_policy=_path(kv_policy),
                   kv_sweep_window=kv_sweep_window, kv_sweep_full=kv_sweep_full, sink_heads=sink_heads,
                   support_heads=support_heads)
    callback = progress if callable(progress) else None
    return _rhead.niah(model._m, options, bool(progress) and callback is None, callback)


def read_run(dir: Union[str, "_os.PathLike[str]"], *, frame: Optional[bool] = None):
    """The result lines of a run folder (detect, niah, qa or cot): a pandas DataFrame when
    pandas is installed (``frame=False``: always a list of dicts), else a list of dicts."""
    lines = _rhead.read_results(_path(dir))
    if frame is False:
        return lines
    try:
        import pandas
    except ImportError:
        if frame:
            raise
        return lines
    return pandas.DataFrame(lines)


def _path(p: Any) -> Optional[str]:
    return None if p is None else _os.fspath(p)


def _head_key(name: str):
    layer, head = name.split("-")
    return (int(layer), int(head))
