"""Application Auto Scaling's scaling activities in the AWS emulator (moto 5.2 lacks them).

moto stores scalable targets and policies but evaluates nothing, so it has no activities and
no DescribeScalingActivities. The local scaler (recommender.local.autoscaler) plays
Application Auto Scaling's part and records each activity here, through one local-only
operation, `RecommenderLocal.PutScalingActivity` (an activity in DescribeScalingActivities'
own shape, replaced by ActivityId: an activity starts InProgress and is put again when it
ends). `AnyScaleFrontendService.DescribeScalingActivities` answers as AWS does: newest
first, filtered by namespace, resource id and dimension, paged by MaxResults/NextToken.
Times are epoch seconds (the JSON protocol's timestamps), which botocore parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from recommender.local.emulator_app import ApiError, Call, Extension, JsonHandler

PUT_OPERATION = "RecommenderLocal.PutScalingActivity"
_REQUIRED = ("ActivityId", "ServiceNamespace", "ResourceId", "ScalableDimension",
             "Description", "Cause", "StartTime", "StatusCode")  # fmt: skip


class ScalingActivities(Extension):
    def __init__(self) -> None:
        super().__init__()
        self._activities: dict[str, dict[str, Any]] = {}  # by ActivityId, in insertion order

    def reset(self) -> None:
        with self.lock:
            self._activities.clear()

    def operations(self) -> Mapping[str, JsonHandler]:
        return {
            "AnyScaleFrontendService.DescribeScalingActivities": self.describe,
            PUT_OPERATION: self.put,
        }

    def put(self, call: Call) -> Mapping[str, Any]:
        for name in _REQUIRED:
            call.require(name)
        with self.lock:
            self._activities[str(call.params["ActivityId"])] = dict(call.params)
        return {}

    def describe(self, call: Call) -> Mapping[str, Any]:
        namespace = call.require("ServiceNamespace")
        p = call.params
        with self.lock:
            found = [a for a in self._activities.values()
                     if a["ServiceNamespace"] == namespace
                     and p.get("ResourceId") in (None, a["ResourceId"])
                     and p.get("ScalableDimension") in (None, a["ScalableDimension"])]  # fmt: skip
        found.sort(key=lambda a: float(a["StartTime"]), reverse=True)
        try:
            start = int(p.get("NextToken") or 0)
            size = int(p.get("MaxResults") or 50)
        except ValueError:
            raise ApiError("InvalidNextTokenException", "bad NextToken") from None
        page = found[start : start + size]
        out: dict[str, Any] = {"ScalingActivities": page}
        if start + size < len(found):
            out["NextToken"] = str(start + size)
        return out
