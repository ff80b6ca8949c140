"""TF-IDF + a linear classifier: the honest baseline.

Default: complement naive Bayes on sublinear TF-IDF of word uni+bigrams (English stop words
removed), whose scores are scaled by one temperature fitted on the validation split so the
probabilities are calibrated (the argmax is unchanged); `classifier="logreg"` gives
multinomial logistic regression instead. Either way the model is linear: probabilities are
softmax(X W^T + b), computed here, so the explanation (weight x feature value per word) adds
up exactly to the decision score. Saved without pickle: vocabulary and vectorizer settings in
JSON, idf / coef / intercept in safetensors.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from safetensors.numpy import load_file, save_file
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from scipy.optimize import minimize_scalar
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import ComplementNB

WEIGHTS = "tfidf.safetensors"
META = "tfidf.json"
VECTORIZER_PARAMS = ("stop_words", "lowercase", "sublinear_tf", "ngram_range", "min_df", "max_df", "max_features",
                     "token_pattern", "strip_accents", "norm", "smooth_idf", "dtype")


@dataclass
class TfidfClassifier:
    vectorizer: TfidfVectorizer
    coef: np.ndarray  # (C, F) float32
    intercept: np.ndarray  # (C,) float32

    @property
    def params(self) -> int:
        return int(self.coef.size + self.intercept.size)

    def decision_function(self, texts: Sequence[str]) -> np.ndarray:
        X = self.vectorizer.transform(texts)  # (N, F) sparse
        return np.asarray(X @ self.coef.T) + self.intercept  # (N, C)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax(self.decision_function(texts))

    def contributions(self, text: str, target: int, versus: int | None = None) -> tuple[list[str], np.ndarray, float]:
        """Features present in `text`, their exact contribution weight x value, and the bias.

        With `versus`, contrastive: the weights and bias are class `target`'s minus class `versus`'s,
        so the contributions plus the bias add up to decision[target] - decision[versus] and a word
        can speak for either class (complement NB pushes every class up with every word, so only
        the difference says why one class beats another).
        """
        X = sparse.csr_matrix(self.vectorizer.transform([text]))
        names = self.vectorizer.get_feature_names_out()
        idx = X.indices
        weights = self.coef[target, idx].astype(np.float64)
        bias = float(self.intercept[target])
        if versus is not None:
            weights = weights - self.coef[versus, idx]
            bias -= float(self.intercept[versus])
        return [str(names[i]) for i in idx], X.data * weights, bias


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def make_vectorizer(cfg) -> TfidfVectorizer:
    return TfidfVectorizer(lowercase=True, sublinear_tf=True, ngram_range=(1, cfg.ngram_max), min_df=2,
                           max_df=0.5, max_features=cfg.max_features, stop_words="english",
                           strip_accents="unicode", dtype=np.float32)


def fit(cfg, texts: Sequence[str], labels: np.ndarray, num_labels: int,
        val_texts: Sequence[str] = (), val_labels: np.ndarray | None = None) -> TfidfClassifier:
    """Fit vectorizer and classifier on the training split; calibrate a temperature on val (cnb)."""
    vectorizer = make_vectorizer(cfg)
    X = vectorizer.fit_transform(texts)
    if cfg.classifier == "cnb":
        clf = ComplementNB(alpha=cfg.alpha).fit(X, labels)
        weights, bias = clf.feature_log_prob_, np.zeros(len(clf.classes_))
    else:
        clf = LogisticRegression(C=1.0 / cfg.alpha, max_iter=300, random_state=cfg.seed,
                                 class_weight="balanced" if cfg.class_balance else None).fit(X, labels)
        weights, bias = clf.coef_, clf.intercept_
        if len(clf.classes_) == 2:  # binary: one row for classes_[1]; softmax([-z/2, z/2]) == sigmoid(z)
            weights, bias = np.vstack([-weights / 2, weights / 2]), np.concatenate([-bias / 2, bias / 2])
    coef = np.zeros((num_labels, X.shape[1]), dtype=np.float32)
    intercept = np.full(num_labels, -1e4, dtype=np.float32)  # a class absent from training is never predicted
    coef[clf.classes_] = weights
    intercept[clf.classes_] = bias
    model = TfidfClassifier(vectorizer, coef, intercept)
    if cfg.classifier == "cnb" and len(val_texts) and val_labels is not None:
        temperature = fit_temperature(model.decision_function(val_texts), np.asarray(val_labels))
        model.coef *= temperature
        model.intercept[clf.classes_] *= temperature
    return model


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The scale t minimising the negative log-likelihood of softmax(t * scores)."""
    def nll(log_t: float) -> float:
        z = scores * np.exp(log_t)
        z = z - z.max(1, keepdims=True)
        return float(-(z[np.arange(len(z)), labels] - np.log(np.exp(z).sum(1))).mean())
    return float(np.exp(minimize_scalar(nll, bounds=(-8.0, 8.0), method="bounded").x))


def save(model: TfidfClassifier, directory: Path) -> None:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    vec = model.vectorizer
    params = {k: v for k, v in vec.get_params().items() if k in VECTORIZER_PARAMS}
    params["dtype"] = np.dtype(params["dtype"]).name
    vocab = {term: int(i) for term, i in vec.vocabulary_.items()}
    (directory / META).write_text(json.dumps({"params": params, "vocabulary": vocab}), encoding="utf-8")
    save_file({"idf": vec.idf_.astype(np.float32), "coef": model.coef, "intercept": model.intercept},
              str(directory / WEIGHTS))


def load(directory: Path) -> TfidfClassifier:
    directory = Path(directory)
    meta = json.loads((directory / META).read_text(encoding="utf-8"))
    params = dict(meta["params"])
    params["ngram_range"] = tuple(params["ngram_range"])
    params["dtype"] = np.dtype(params["dtype"])
    params["max_features"] = None  # the fixed vocabulary already holds the kept features
    vectorizer = TfidfVectorizer(vocabulary=meta["vocabulary"], **params)
    arrays = load_file(str(directory / WEIGHTS))
    vectorizer.idf_ = arrays["idf"].astype(np.float64)
    return TfidfClassifier(vectorizer, arrays["coef"], arrays["intercept"])


# ---- explanation -------------------------------------------------------------------------------
def token_contributions(model: TfidfClassifier, text: str, target: int, versus: int | None = None
                        ) -> tuple[list[tuple[int, int]], list[float], float, float]:
    """(token char spans, token scores, unaligned, bias): each feature's exact contribution spread
    over its occurrences, a bigram's share split equally over its words (contrastive against
    class `versus` when given, see TfidfClassifier.contributions)."""
    vec = model.vectorizer
    names, contribs, bias = model.contributions(text, target, versus)
    by_feature = dict(zip(names, contribs.tolist()))
    preprocess = vec.build_preprocessor()
    stop = vec.get_stop_words() or frozenset()
    pattern = re.compile(vec.token_pattern)
    toks = [(preprocess(m.group(1) if pattern.groups else m.group(0)), m.span(1 if pattern.groups else 0))
            for m in pattern.finditer(text)]
    toks = [(t, span) for t, span in toks if t not in stop]  # sklearn drops stop words before n-grams
    lo, hi = vec.ngram_range
    occurrences: dict[str, list[list[tuple[int, int]]]] = {}
    for n in range(lo, hi + 1):
        for i in range(len(toks) - n + 1):
            gram = " ".join(t for t, _ in toks[i:i + n])
            if gram in by_feature:
                occurrences.setdefault(gram, []).append([span for _, span in toks[i:i + n]])
    spans: list[tuple[int, int]] = []
    scores: list[float] = []
    unaligned = 0.0
    for name, value in by_feature.items():
        occ = occurrences.get(name)
        if not occ:  # a feature our scan cannot place (exotic preprocessing): keep the sum exact
            unaligned += value
            continue
        for grams in occ:
            for span in grams:
                spans.append(span)
                scores.append(value / len(occ) / len(grams))
    return spans, scores, unaligned, bias


def contrast_class(decision: np.ndarray, target: int) -> int | None:
    """The class an explanation of `target` is contrasted with: the best-scoring other class
    (the runner-up when `target` is the prediction, else the prediction); None with one class."""
    if len(decision) < 2:
        return None
    others = np.array(decision, dtype=np.float64)
    others[target] = -np.inf
    return int(np.argmax(others))
