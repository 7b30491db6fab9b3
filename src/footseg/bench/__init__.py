"""Benchmarking in one place: timing (``timing``), model cost and samplers (``cost``), the ``footseg bench`` table
(``table``), the MediaPipe peer (``peer``) and the accuracy-latency Pareto sweep (``pareto``).

``footseg.bench.timing`` is standard library only: the peer script imports it from a venv without torch, so this
package's ``__init__`` imports nothing.
"""
