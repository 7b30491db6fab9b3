"""Benchmarking in one place: model cost and samplers (``cost``), the ``footseg bench`` table (``table``), the
MediaPipe peer (``peer``) and the accuracy-latency Pareto sweep (``pareto``). They all time through
``footseg.runtime.timing``, the one timing module, which sits in the runtime so that anything running a model
(``footseg eval --clips``, the video runner) times it the same way.
"""
