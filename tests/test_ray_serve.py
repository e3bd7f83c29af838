"""ASR and embeddings served by Ray Serve on a local Ray cluster: a real call through a front end, and
Serve's batching."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import jiwer
import numpy as np
import pytest

from assist.democall import DATA, load_mono
from assist.settings import Settings
from models.asr import AsrRequest
from tests.service import RunningService
from tests.test_end_to_end import check_whole_call, harvard_call, normalise, stream_call

FLEURS = DATA / "fleurs-cuttledoc"


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A fresh local Ray cluster (2 CPUs; not one `ray start` left running) with Serve, one per test session:
    Ray starts slowly on small machines."""
    try:
        import ray
        from ray import serve
    except ImportError as exc:
        if os.environ.get("RECOBRA_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Ray Serve is required here: pip install torch==2.13.0 -e '.[scale]' ({exc})")
        pytest.skip("Ray Serve is not installed (pip install torch==2.13.0 -e '.[scale]')")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    yield
    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="module")
def ray_settings(ray_cluster, tmp_path_factory) -> Iterator[Settings]:
    from ray import serve

    from assist.distributed import ray_asr, ray_embed

    tmp = tmp_path_factory.mktemp("ray")
    settings = Settings(asr_model="tiny.en", language="en", cache_dir=tmp / "cache",
                        database_url=f"sqlite:///{tmp / 'recobra.db'}",
                        inference_backend="ray", embedding_backend="ray", ray_app_name="recobra-test",
                        ray_asr_num_cpus=1, ray_embed_app_name="recobra-test-embed", ray_embed_num_cpus=0.5)
    ray_asr.deploy(settings)
    ray_embed.deploy(settings)
    yield settings
    serve.delete(settings.distributed.ray_app_name)
    serve.delete(settings.distributed.ray_embed_app_name)


def test_call_transcribed_and_analysed_through_ray_serve(ray_settings):
    from assist.distributed.ray_asr import RayAsrClient
    from assist.distributed.ray_embed import RayEmbeddingClient

    agent, debtor, ref_agent, ref_debtor = harvard_call()
    with RunningService(ray_settings) as service:
        assert isinstance(service.app.state.worker, RayAsrClient)
        assert isinstance(service.app.state.embedder, RayEmbeddingClient)
        events = stream_call(service, "twilio", agent, debtor, "ray-call")
        stats = asyncio.run(service.app.state.worker.stats())
        embed_stats = service.app.state.embedder.stats()
    wer = check_whole_call(events, ref_agent, ref_debtor)
    print(f"ray: WER {wer:.3f}, Serve batch sizes: ASR {stats['batch_sizes']}, embeddings {embed_stats}")
    assert wer <= 0.15
    assert sum(stats["batch_sizes"].values()) > 0
    finals = [e for e in events if e["type"] == "transcript.final"]
    sentiments = [e for e in events if e["type"] == "sentiment"]
    # every final was scored with embeddings computed by the cluster
    assert len(sentiments) == len(finals) and embed_stats["cache_misses"] > 0
    assert sum(embed_stats["batch_sizes"].values()) > 0


def test_serve_batches_concurrent_requests_and_a_bad_one_fails_alone(ray_settings):
    from assist.distributed.ray_asr import RayAsrClient, deploy

    clips = [load_mono(FLEURS / f"fleurs-en-00{i}.ogg") for i in range(3)]
    refs = [(FLEURS / f"fleurs-en-00{i}.txt").read_text() for i in range(3)]
    requests = [AsrRequest(clip, 0.0, "en", final=True, call_id=f"c{i}", channel="agent")
                for i, clip in enumerate(clips)]
    bad = AsrRequest(np.zeros(0, dtype=np.float32), 0.0, "en", final=True, call_id="bad", channel="agent")
    client = RayAsrClient.connect(ray_settings)

    async def one_by_one():
        return [await client.transcribe(r) for r in requests], (await client.stats())["batch_sizes"]

    async def together():
        results = await asyncio.gather(*(client.transcribe(r) for r in [*requests, bad]), return_exceptions=True)
        return results, (await client.stats())["batch_sizes"]

    alone, before = asyncio.run(one_by_one())
    # a batch is released when full or after the wait: a long wait makes these four one batch
    deploy(ray_settings.model_copy(update={"ray_max_batch_size": 4, "ray_batch_wait_timeout_s": 30.0}))
    try:
        batched, after = asyncio.run(together())
    finally:
        deploy(ray_settings)
    assert after.get(4, 0) == before.get(4, 0) + 1
    assert isinstance(batched[3], ValueError) and "non-empty" in str(batched[3])
    assert [_text(r) for r in batched[:3]] == [_text(r) for r in alone]
    # the three clips together: tiny.en's reading of fleurs-en-002 alone changes by a few words with the last bit
    # of its features ("nouns" / "now's", "safe" / "say"; WER 0.24 with the float64 mel projection)
    assert jiwer.wer([normalise(ref) for ref in refs], [normalise(_text(r)) for r in batched[:3]]) <= 0.2


def _text(result) -> str:
    return " ".join(w.text for w in result.words)


def test_a_front_end_without_the_deployment_says_how_to_deploy_it(ray_settings):
    from assist.distributed.ray_embed import RayEmbeddingClient

    missing = ray_settings.model_copy(update={"ray_embed_app_name": "not-deployed"})
    with pytest.raises(RuntimeError, match="serve run --name not-deployed assist.distributed.ray_embed:build_app"):
        RayEmbeddingClient.connect(missing)
