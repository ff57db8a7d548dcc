"""The local server's model: scikit-learn's LogisticRegression fitted to the iris data,
served from its fitted coefficients (`iris_model.json`, package data).

That is how a SageMaker model reaches an endpoint: an artifact trained beforehand, loaded by
the serving code. Serving needs no scikit-learn: a multinomial logistic regression's
predict_proba is the softmax of X W^T + b, which is what scikit-learn computes
(tests/test_iris.py holds the two equal, and the artifact to a fresh fit). Loading it takes
milliseconds, where importing scikit-learn took 2 CPU-seconds in every instance of every
server started (the demo's, and about seventy in `make test`).

    python -m recommender.local.iris    # refit with this scikit-learn and rewrite the artifact
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

Prediction = dict[str, Any]
Predictor = Callable[[list[list[float]]], list[Prediction]]
ARTIFACT = "iris_model.json"


def fit() -> dict[str, Any]:
    """Fit LogisticRegression(max_iter=1000) to scikit-learn's iris data: the artifact."""
    import sklearn
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    model = LogisticRegression(max_iter=1000).fit(iris.data, iris.target)
    return {
        "model": "sklearn.linear_model.LogisticRegression(max_iter=1000)",
        "data": "sklearn.datasets.load_iris()",
        "scikit_learn": sklearn.__version__,
        "classes": [str(name) for name in iris.target_names],
        "coef": model.coef_.tolist(),
        "intercept": model.intercept_.tolist(),
    }


def load() -> dict[str, Any]:
    text = resources.files("recommender.local").joinpath(ARTIFACT).read_text()
    artifact: dict[str, Any] = json.loads(text)
    return artifact


def predictor(artifact: dict[str, Any] | None = None) -> Predictor:
    """predict(rows) -> one {label, class, probabilities} per row, as the server answers."""
    a = load() if artifact is None else artifact
    coef, intercept = np.asarray(a["coef"]), np.asarray(a["intercept"])
    names: list[str] = a["classes"]

    def predict(rows: list[list[float]]) -> list[Prediction]:
        scores = np.asarray(rows, dtype=float) @ coef.T + intercept
        scores -= scores.max(axis=1, keepdims=True)  # softmax, as scikit-learn's, stably
        probs = np.exp(scores)
        probs /= probs.sum(axis=1, keepdims=True)
        return [{"label": names[int(p.argmax())], "class": int(p.argmax()),
                 "probabilities": p.tolist()} for p in probs]  # fmt: skip

    return predict


def main() -> None:
    path = Path(__file__).with_name(ARTIFACT)
    path.write_text(json.dumps(fit(), indent=1) + "\n")
    print(f"Wrote {path}")


if __name__ == "__main__":
    main()
