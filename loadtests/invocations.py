"""A locustfile to copy and edit: POST your own requests at the plan's rate.

    recommender run --url http://127.0.0.1:8080/invocations --max-rps 200 \
        --locustfile loadtests/invocations.py

Subclassing InvocationsUser keeps the plan's open-loop pacing and the latency recording;
`invoke()` is the one request per intended send time.
"""

import json
import random

from recommender.loadgen.users import InvocationsUser

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


class RandomRows(InvocationsUser):
    def invoke(self) -> None:
        body = json.dumps({"instances": [random.choice(ROWS)]})
        self.client.post(
            "/invocations",
            data=body,
            headers={"Content-Type": "application/json"},
            name="invocations",
        )
