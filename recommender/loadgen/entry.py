"""Loaded by Locust beside the user's locustfile: brings the ramp shape and the recorder."""

from recommender.loadgen.harness import RampShape

__all__ = ["RampShape"]
