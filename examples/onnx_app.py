"""Feet in a photo from footseg's exported ONNX file, with nothing of footseg: the steps an app of one's own takes.

    footseg export --out foot.onnx                 # or --format onnx-int8
    python examples/onnx_app.py foot.onnx photo.jpg mask.png

Needs only numpy, opencv-python(-headless) and onnxruntime: the same steps port line by line to ONNX Runtime on
Android, iOS or the web. footseg's own runtime (``footseg.runtime.predictor``) gives the same masks;
``tests/test_examples.py`` checks that they do.
"""

from __future__ import annotations

import json
import os
import sys

import cv2
import numpy as np
import onnxruntime as ort

SETTINGS = ("input_size", "threshold", "region_peak", "presence")  # JSON text in the file's metadata


def load(path: str) -> tuple[ort.InferenceSession, dict]:
    """The network and the settings it runs with, from the file's metadata."""
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    if props.get("footseg.output") != "margin":  # a plain word; every two-class export has it
        raise ValueError(f"{path}: not a two-class footseg export (its output is not the foot margin)")
    return session, {key: json.loads(props[f"footseg.{key}"]) for key in SETTINGS if f"footseg.{key}" in props}


def foot_probability(session: ort.InferenceSession, settings: dict, rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 foot probability for an (H, W, 3) uint8 RGB frame, at the network's resolution."""
    height, width = settings["input_size"]
    # The whole frame squashed to the network's input, as in training (no crop, no letterbox); area filter when
    # shrinking, so a detailed phone frame does not alias.
    shrink = height < rgb.shape[0] or width < rgb.shape[1]
    small = cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    image = (small.astype(np.float32) / 255.0).transpose(2, 0, 1)[None]
    margin = session.run(None, {"image": image})[0][0, 0]  # foot logit minus background logit
    return (1.0 / (1.0 + np.exp(-margin))).astype(np.float32)


def clear_unconfident_regions(prob: np.ndarray, threshold: float, peak: float) -> np.ndarray:
    """Set to 0 every 8-connected region above ``threshold`` with no pixel above ``peak``, but the region holding
    the frame's most confident pixel: floor blobs the network half-believes go, a foot never does."""
    count, labels = cv2.connectedComponents((prob > threshold).astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    keep[0] = True  # background
    keep[labels[prob > peak]] = True
    keep[labels.flat[int(np.argmax(prob))]] = True
    return np.where(keep[labels], prob, np.float32(0.0))


def foot_mask(session: ort.InferenceSession, settings: dict, rgb: np.ndarray) -> np.ndarray:
    """(H, W) bool mask of foot at the frame's own size."""
    threshold = settings["threshold"]
    prob = foot_probability(session, settings, rgb)
    if settings.get("region_peak") is not None:
        prob = clear_unconfident_regions(prob, threshold, settings["region_peak"])
    if settings.get("presence") is not None and not (prob > settings["presence"]).any():
        prob = np.zeros_like(prob)  # no pixel sure enough: the frame shows no foot
    prob = cv2.resize(prob, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return prob > threshold


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python examples/onnx_app.py MODEL.onnx PHOTO MASK.png", file=sys.stderr)
        return 2
    model, photo, out = argv
    # applies the photo's EXIF orientation, as footseg does; not its colour profile, which footseg converts to sRGB
    # (phones' wide-gamut photos: an app reading those converts them with its platform's colour management)
    bgr = cv2.imread(photo, cv2.IMREAD_COLOR) if os.path.isfile(photo) else None  # (no OpenCV warning besides)
    if bgr is None:
        print(f"{photo}: cannot read this image", file=sys.stderr)
        return 1
    try:
        session, settings = load(model)
    except Exception as error:  # ONNX Runtime's own kinds: a missing file, one that is not a model
        print(f"{model}: cannot load it as an ONNX model ({str(error).splitlines()[0]})", file=sys.stderr)
        return 1
    mask = foot_mask(session, settings, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    try:
        written = cv2.imwrite(out, mask.astype(np.uint8) * 255)
    except cv2.error:  # a name OpenCV has no writer for
        written = False
    if not written:  # (imwrite says so by its result, not an exception: a missing folder, no permission)
        print(f"{out}: cannot write the mask there (a PNG in an existing folder, say)", file=sys.stderr)
        return 1
    print(f"{out}: {mask.mean():.1%} of the frame is foot")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
