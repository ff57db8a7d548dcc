"""recommender: size SageMaker endpoint autoscaling from a load test.

Kept import-light on purpose: the Locust subprocess imports parts of this package after
gevent has monkey-patched it, so nothing here may pull in boto3 or other heavy modules.
"""

__version__ = "0.1.0"
