"""The default locustfile: POST the payloads to the target at the plan's rate."""

from recommender.loadgen.users import InvocationsUser


class Invocations(InvocationsUser):
    """Sends each payload in turn to the invocation URL."""
