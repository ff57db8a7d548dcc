"""The local server's iris model: served from its fitted coefficients, as scikit-learn
would serve it (recommender.local.iris)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from recommender.local import iris


def test_the_artifact_serves_what_scikit_learn_predicts() -> None:
    """Our softmax of X W^T + b is scikit-learn's predict_proba for the same coefficients,
    on every iris row and on rows far outside them (large scores: the softmax stays finite)."""
    artifact = iris.load()
    model = LogisticRegression(max_iter=1000)
    model.coef_ = np.asarray(artifact["coef"])
    model.intercept_ = np.asarray(artifact["intercept"])
    model.classes_ = np.arange(3)
    rows = load_iris().data.tolist() + [[100.0, 0.0, 0.0, 0.0], [0.0, 0.0, 200.0, 200.0]]
    got = iris.predictor(artifact)(rows)
    want = model.predict_proba(rows)
    assert np.allclose([g["probabilities"] for g in got], want, rtol=0, atol=1e-12)
    assert [g["class"] for g in got] == want.argmax(axis=1).tolist()
    assert [g["label"] for g in got][:1] == ["setosa"] and got[-1]["label"] == "virginica"


def test_the_artifact_is_the_fit_it_says_it_is() -> None:
    """A fresh fit with this scikit-learn classifies every iris row as the artifact does
    (coefficients agree to the solver's tolerance), and the model is a real one: 97% right."""
    fresh = iris.fit()
    artifact = iris.load()
    assert fresh["classes"] == artifact["classes"] == ["setosa", "versicolor", "virginica"]
    assert np.allclose(fresh["coef"], artifact["coef"], atol=1e-2)
    data = load_iris()
    ours = [p["class"] for p in iris.predictor(artifact)(data.data.tolist())]
    theirs = [p["class"] for p in iris.predictor(fresh)(data.data.tolist())]
    assert ours == theirs
    assert np.mean(np.asarray(ours) == data.target) == pytest.approx(0.973, abs=0.01)
