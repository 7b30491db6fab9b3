"""Synthetic training data: parametric 3D feet rendered with OpenGL onto floors seen by a phone camera."""

from footseg.data.synth.engine import SynthSettings, synthesize

__all__ = ["SynthSettings", "synthesize"]
