# CPU image: the service, its rules and the browser pages (/ui), built as a wheel and installed.
# GPU hosts: Dockerfile.gpu. tests/test_packaging.py checks what this image holds without a docker daemon.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY assist assist
COPY models models
COPY streaming streaming
COPY web_overlay web_overlay
RUN pip wheel --no-cache-dir --no-deps -w /wheels .

FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
# torch is pinned in the same command (silero-vad needs it), from the CPU index to keep the image small.
RUN pip install --no-cache-dir --extra-index-url https://download.pytorch.org/whl/cpu torch==2.13.0 /wheels/*.whl \
    && rm -rf /wheels
RUN useradd --create-home --uid 10001 recobra && mkdir /data && chown recobra /data
USER recobra
WORKDIR /home/recobra
ENV RECOBRA_HOST=0.0.0.0 RECOBRA_DATABASE_URL=sqlite:////data/recobra.db
VOLUME /data
EXPOSE 8080
CMD ["recobra", "serve"]
