"""Running a model on photos of any size: the one place where inference pre- and post-processing live.

A photo is resized to the side the network runs at (``input_size``), the network gives a foot probability per pixel,
and that probability map is resized back (bilinear) to the photo's own size, so a 640x480 phone photo gets a 640x480
mask.
Evaluation, prediction, video, reports and benchmarks all go through ``Predictor`` so they feed the network exactly the
same pixels and decide on its output the same way; what runs the network (PyTorch, or ONNX Runtime on an export of the
same weights) differs in float rounding only.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import cv2
import numpy as np

from footseg.config import MAX_INPUT_SIDE, is_input_side
from footseg.data.transforms import resize_image, to_array
from footseg.errors import FootsegError, FootsegWarning
from footseg.models.info import (
    CONFIG_NAME,
    SavedModelInfo,
    check_presence,
    check_region_peak,
    check_threshold,
    read_info,
)
from footseg.runtime.device import cpu_threads
from footseg.runtime.resolve import ModelRef, check_input_side, resolve_model

if TYPE_CHECKING:
    import torch
    from torch import nn

    from footseg.runtime.onnx_model import OnnxModel


def resize_proba(prob: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an (h, w) float probability map to ``size`` = (height, width) with bilinear interpolation."""
    h, w = size
    if prob.shape == (h, w):
        return prob
    return cv2.resize(prob, (w, h), interpolation=cv2.INTER_LINEAR)


# A string, so that naming torch's module type costs no torch import (running an export never needs torch).
ModelLike: TypeAlias = "str | Path | ModelRef | tuple[nn.Module, SavedModelInfo] | None"
# What may run a model (``footseg bench``'s names): auto, ONNX Runtime where the model is an exported file, or on a CPU
# a folder holding its own export (``own_export``), PyTorch otherwise; torch and onnx insist.
RUNTIMES = ("auto", "torch", "onnx")


class Predictor:
    """A loaded model plus the preprocessing it was trained with.

    ``model`` is anything ``footseg.runtime.resolve_model`` resolves (a saved model or run folder, a shipped name,
    an ``.onnx`` file from ``footseg export`` run by ONNX Runtime, or None for the default model), or an
    ``(nn.Module, SavedModelInfo)`` pair, e.g. a network still in memory after training.

    ``runtime`` (``RUNTIMES``): on a CPU a model folder that holds its own export (``footseg export`` of these very
    weights; both shipped models ship one) runs it in ONNX Runtime, about three times as fast as PyTorch eager, unless
    "torch" is asked for; ``model`` is then None (``runtime="torch"`` gives the PyTorch network). "onnx" refuses a
    model without such a file. The threshold, region peak and presence are the folder's config's either way.
    """

    def __init__(self, model: ModelLike = None, device: str | torch.device = "cpu", runtime: str = "auto"):
        if runtime not in RUNTIMES:
            raise FootsegError(f"unknown runtime '{runtime}'; choose one of: {', '.join(RUNTIMES)}")
        self.device = str(device)  # "cpu", "cuda", "cuda:1": torch takes the name where the network runs in it
        self.on_cpu = self.device.partition(":")[0] == "cpu"
        if not self.on_cpu:  # torch runs the network there: it checks the name now, not at the first frame
            import torch

            try:
                torch.device(self.device)
            except RuntimeError as exc:
                raise FootsegError(f"unknown device '{self.device}' ({exc})") from exc
        self.asked = runtime
        self.onnx: OnnxModel | None = None
        self.ref: ModelRef | None = None
        if isinstance(model, tuple):
            if runtime == "onnx":
                raise FootsegError("a network in memory runs in PyTorch: export it to run it in ONNX Runtime")
            net, info = model
            net = net.to(self.device)
        else:
            self.ref = resolve_model(model)
            net, info = self._load(runtime)
        if len(info.input_size) != 2 or not all(is_input_side(s) for s in info.input_size):
            raise FootsegError(
                f"input_size must be two multiples of 32 from 32 to {MAX_INPUT_SIDE}, got {list(info.input_size)}",
                None if self.ref is None else self.ref.path if self.ref.onnx else self.ref.path / CONFIG_NAME,
            )
        self.model = net.eval() if net is not None else None  # None: ``onnx`` runs the network
        self.info = info

    def _load(self, runtime: str) -> tuple[nn.Module | None, SavedModelInfo]:
        """``ref``'s network in ``runtime`` (``self.onnx`` set where ONNX Runtime runs it) and its info."""
        ref = self.ref
        # onnxruntime is imported only where an exported file may run
        if ref.onnx:
            from footseg.runtime.onnx_model import OnnxModel

            if runtime == "torch":
                raise FootsegError("an exported file runs in ONNX Runtime, not PyTorch: give the model folder",
                                   ref.path)
            self.onnx = OnnxModel(ref.path, threads=cpu_threads())
            return None, self.onnx.info
        if runtime == "onnx":
            if not self.on_cpu:
                raise FootsegError(f"footseg runs ONNX Runtime on the CPU, not {self.device}: ask for the torch "
                                   "runtime there", ref.path)
            if ref.size is not None:
                raise FootsegError(f"its export runs at the size it was exported at, not {ref.size}: ask for the "
                                   "torch runtime at another side", ref.path)
        if runtime == "onnx" or (runtime == "auto" and self.on_cpu and ref.size is None):
            from footseg.runtime.onnx_model import FP32_NAME, own_export

            self.onnx, why = own_export(ref.folder, threads=cpu_threads())
            if self.onnx is not None:
                return None, read_info(ref.folder)  # the decisions (threshold, ...) as its config has them now
            if runtime == "onnx":
                raise FootsegError(f"{why}: run `footseg export` on it first", ref.folder)
            if (ref.folder / FP32_NAME).is_file():  # an export someone made and would expect to run
                warnings.warn(FootsegWarning(f"{why}: its weights run in PyTorch, about three times as slow on a CPU "
                                             "(`footseg export` on it makes the file again)", ref.folder),
                              stacklevel=2)
        return ref.load(self.device)

    @property
    def name(self) -> str:
        return self.info.model

    @property
    def runtime(self) -> str:
        """What runs the network, in ``footseg bench``'s words: "torch", "onnx" or "onnx-int8" (an int8 file)."""
        if self.onnx is None:
            return "torch"
        return "onnx-int8" if self.onnx.precision == "int8" else "onnx"

    def with_threads(self, threads: int) -> Predictor:
        """This predictor with its ONNX session at ``threads`` threads (a session fixes its count when it is made; a
        PyTorch network runs at the process's, ``torch.set_num_threads``); itself where nothing changes."""
        if self.onnx is None or self.onnx.threads == threads:
            return self
        from footseg.runtime.onnx_model import OnnxModel

        other = copy.copy(self)
        other.onnx = OnnxModel(self.onnx.path, threads=threads)
        return other

    @property
    def label(self) -> str:
        """How to call this model in a table or picture: its folder's or file's name, else its architecture."""
        return self.ref.name if self.ref is not None else self.info.model

    @property
    def threshold(self) -> float:
        """The foot probability above which a pixel is foot: the model's own operating point (its config's
        ``threshold``, chosen on synthetic validation images), 0.5 for a model without one."""
        return self.info.threshold

    def at_threshold(self, threshold: float | None) -> Predictor:
        """This predictor deciding at another operating point (the same loaded network); itself for None."""
        return self._at("threshold", threshold, check_threshold)

    @property
    def region_peak(self) -> float | None:
        """The confidence a region of foot must reach somewhere to be kept (``keep_confident_regions``); None: off."""
        return self.info.region_peak

    def at_region_peak(self, peak: float | None) -> Predictor:
        """This predictor keeping regions by another peak (``0`` turns the filter off); itself for None."""
        return self._at("region_peak", peak, lambda v: check_region_peak(v or None))

    @property
    def presence(self) -> float | None:
        """The confidence a frame's most confident pixel must exceed for it to show any foot (``gate_presence``);
        None: off."""
        return self.info.presence

    def at_presence(self, presence: float | None) -> Predictor:
        """This predictor gating frames by another presence level (``0`` turns the gate off); itself for None."""
        return self._at("presence", presence, lambda v: check_presence(v or None))

    def _at(self, key: str, value: float | None, check: Callable[[float], float | None]) -> Predictor:
        """This predictor with one decision setting of its info replaced by ``check(value)``; itself for None."""
        if value is None:
            return self
        try:
            checked = check(value)
        except ValueError as exc:
            raise FootsegError(str(exc)) from exc
        other = copy.copy(self)
        other.info = dataclasses.replace(self.info, **{key: checked})
        return other

    def at_size(self, size: int | None) -> Predictor:
        """This predictor running its network at ``size`` x ``size`` instead of its own input size (the same loaded
        network; a folder's own export gives way to its weights in PyTorch); itself for None. An exported file fixes
        the size it takes."""
        if size is None or (size, size) == self.input_size:
            return self
        check_input_side(size)
        if self.onnx is not None and (self.ref is None or self.ref.onnx):
            raise FootsegError(f"an exported file runs at the size it was exported at ({self.input_size[0]}), not "
                               f"{size}", self.ref.path if self.ref is not None else None)
        if self.onnx is not None and self.asked == "onnx":
            raise FootsegError(f"its export runs at the size it was exported at ({self.input_size[0]}), not {size}: "
                               "ask for the torch runtime at another side", self.ref.path)
        if self.onnx is not None:
            other = Predictor(self.ref, self.device, runtime="torch")  # the decisions below stay this predictor's
            other.info = dataclasses.replace(self.info, input_size=(size, size))
            return other
        other = copy.copy(self)
        other.info = dataclasses.replace(self.info, input_size=(size, size))
        return other

    @property
    def input_size(self) -> tuple[int, int]:
        return (int(self.info.input_size[0]), int(self.info.input_size[1]))

    @property
    def takes_prior(self) -> bool:
        """A prior-mask network: its 4th input is the previous frame's foot probability (see ``VideoSegmenter``)."""
        return self.info.in_channels == 4

    def network_proba(self, images: Sequence[np.ndarray], priors: Sequence[np.ndarray | None] | None = None
                      ) -> np.ndarray:
        """(N, h, w) float32 foot probability at the network's ``input_size`` for (H, W, 3) uint8 RGB images, its
        unconfident regions cleared where the model has a ``region_peak``, and frames without a confident pixel
        cleared where it has a ``presence``.

        ``priors`` (prior-mask networks only): per image the previous frame's probability at ``input_size``, or None
        for a first frame (an empty prior, as in training). Kept small on purpose: the video runner keeps its state
        at this resolution and the backends (PyTorch, ONNX Runtime) differ only in what runs the network here.
        """
        for image in images:
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise ValueError(f"expected (H, W, 3) uint8 RGB images, got {image.shape} {image.dtype}")
        batch = np.stack([to_array(resize_image(image, self.input_size)) for image in images])
        if self.takes_prior:
            given = list(priors) if priors is not None else [None] * len(images)
            planes = [np.zeros(self.input_size, np.float32) if p is None else np.asarray(p, np.float32)
                      for p in given]
            batch = np.concatenate([batch, np.stack(planes)[:, None]], axis=1)
        elif priors is not None and any(p is not None for p in priors):
            raise FootsegError(f"{self.label} takes no previous-frame mask (it has no prior input)")
        if self.onnx is not None:
            logits = self.onnx.run(batch)
        else:
            import torch  # only where PyTorch runs the network: an export runs without it

            with torch.inference_mode():
                logits = self.model(torch.from_numpy(batch).to(self.device)).float().cpu().numpy()
        probs = foot_probability_array(logits)
        if self.region_peak is not None:
            for k, prob in enumerate(probs):
                probs[k] = keep_confident_regions(prob, self.threshold, self.region_peak)
        if self.presence is not None:
            for k, prob in enumerate(probs):
                probs[k] = gate_presence(prob, self.presence)
        return probs

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Foot probability maps, float32 (H, W) at each image's own size, for (H, W, 3) uint8 RGB images.

        Images may have different sizes: each is resized to ``input_size`` before they are stacked. A prior-mask
        network sees each as a first frame (no previous mask).
        """
        if not images:
            return []
        probs = self.network_proba(images)
        return [resize_proba(np.ascontiguousarray(p), image.shape[:2]) for p, image in zip(probs, images, strict=True)]

    def predict_proba(self, image: np.ndarray) -> np.ndarray:
        """Foot probability, float32 (H, W) at the image's size, for one (H, W, 3) uint8 RGB image."""
        return self.predict_batch([image])[0]

    def predict_mask(self, image: np.ndarray) -> np.ndarray:
        """Binary foot mask, uint8 (H, W) in {0, 1}, at the image's size, at the model's ``threshold``."""
        return to_mask(self.predict_proba(image), self.threshold)


def foot_probability(logits: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) logits -> (N, H, W) probability of foot, i.e. of any class but background (class 0).

    Losses and metrics count every non-zero class as foot, so inference must too. One channel is a foreground
    margin (an exported two-class file): sigmoid(m) = softmax([0, m])[1]. Differentiable: training's losses use it;
    ``foot_probability_array`` is the same on the arrays a ``Predictor`` gets from either runtime.
    """
    if logits.shape[1] == 1:
        return logits[:, 0].sigmoid()
    return 1.0 - logits.softmax(dim=1)[:, 0]


def foot_probability_array(logits: np.ndarray) -> np.ndarray:
    """``foot_probability`` for a float32 NumPy array of logits, as (N, H, W) float32: the one post-processing of both
    runtimes, so they differ in the network's arithmetic only."""
    logits = np.asarray(logits, np.float32)
    with np.errstate(over="ignore"):  # exp overflows to inf far from the boundary, where the answer is 0 or 1 anyway
        if logits.shape[1] == 1:
            return (1.0 / (1.0 + np.exp(-logits[:, 0]))).astype(np.float32)
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (1.0 - shifted[:, 0] / shifted.sum(axis=1)).astype(np.float32)


def keep_confident_regions(prob: np.ndarray, threshold: float, peak: float) -> np.ndarray:
    """``prob`` with every region of foot (8-connected pixels above ``threshold``) set to 0 unless some pixel of it
    exceeds ``peak`` or it holds the map's most confident pixel.

    The network marks floor blobs as foot with less certainty than feet; a foot anywhere in the frame keeps its most
    confident region, so a frame with foot never comes out empty. Cleared regions touch no kept one, so resizing the
    map up afterwards leaves the kept regions' edges as they were. The web page does the same (segmenter.js).
    """
    count, labels = cv2.connectedComponents((prob > threshold).astype(np.uint8), connectivity=8)
    if count <= 2:  # no foot, or one region: the most confident one
        return prob
    keep = np.zeros(count, bool)
    keep[0] = True  # background
    keep[labels[prob > peak]] = True
    keep[labels.flat[int(np.argmax(prob))]] = True
    cleared = ~keep[labels]
    if not cleared.any():
        return prob
    out = prob.copy()
    out[cleared] = 0.0
    return out


def gate_presence(prob: np.ndarray, presence: float) -> np.ndarray:
    """``prob``, or all zeros (no foot in the frame) where no pixel of it exceeds ``presence``.

    A frame-level decision, as a face or pose detector's presence score: a floor with no foot still has a most
    foot-like patch, which thresholds and the region peak keep. The web page does the same (segmenter.js).
    """
    # compared element-wise, in the map's float32 on every NumPy, as the page compares with Math.fround
    return prob if (prob > presence).any() else np.zeros_like(prob)


def to_mask(prob: np.ndarray, threshold: float) -> np.ndarray:
    """Probability map -> uint8 {0, 1} mask: foot where the probability exceeds ``threshold`` (with two classes,
    0.5 is the argmax over the logits; a model's own is ``Predictor.threshold``)."""
    return (prob > threshold).astype(np.uint8)


def as_predictor(model: ModelLike | Predictor) -> Predictor:
    """Accept any model reference, an in-memory (module, info) pair or a ready ``Predictor``."""
    return model if isinstance(model, Predictor) else Predictor(model)
