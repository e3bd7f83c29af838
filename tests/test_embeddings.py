"""The packaged multilingual embedder: shape, normalisation, EN/ES paraphrases, sharing across threads."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from models.embeddings import load_embedder

# (a, paraphrase of a): written for this test, EN, ES, regional ES and cross-language.
PAIRS = [
    ("I can't pay this month", "I don't have the money to make a payment right now"),
    ("Ya pagué esa deuda el mes pasado", "Esa cuenta ya la pagué hace unas semanas"),
    ("Me quedé sin trabajo", "Perdí mi empleo y no tengo ingresos"),
    ("Ahorita no tengo lana", "En este momento no tengo dinero"),
    ("This is a scam, I'm not giving you anything", "Esto es una estafa, no le voy a dar nada"),
    ("Call me back tomorrow afternoon", "Llámeme mañana por la tarde"),
    ("I want to speak to my lawyer", "Quiero hablar con mi abogado"),
]


@pytest.fixture(scope="module")
def embedder():
    return load_embedder()


def test_shape_dtype_and_unit_norm(embedder):
    out = embedder.embed(["hola", "hello there", ""])
    assert out.shape == (3, embedder.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out[:2], axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, embedder.dim)


def test_loaded_once_per_process(embedder):
    assert load_embedder("default") is embedder


def test_paraphrases_closer_than_unrelated(embedder):
    a = embedder.embed([p[0] for p in PAIRS])
    b = embedder.embed([p[1] for p in PAIRS])
    sims = a @ b.T
    for i in range(len(PAIRS)):
        others = np.delete(sims[i], i)
        assert sims[i, i] > others.max(), (PAIRS[i], sims[i, i], others.max())


def test_thread_safe_and_deterministic(embedder):
    texts = [p[0] for p in PAIRS]
    ref = embedder.embed(texts)
    with ThreadPoolExecutor(4) as pool:
        outs = list(pool.map(lambda _: embedder.embed(texts), range(8)))
    for out in outs:
        assert np.allclose(out, ref, atol=1e-5)


def test_unknown_model_fails_clearly():
    with pytest.raises((ImportError, OSError, ValueError)):
        load_embedder("/nonexistent/embedding-model-folder")
