# CPU image. For a GPU host, start FROM an nvidia/cuda runtime image with cuDNN 9 and drop the torch pin.
FROM python:3.11-slim
RUN apt-get update && apt-get install -y --no-install-recommends libsndfile1 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY assist assist
COPY models models
COPY streaming streaming
# torch is pinned in the same command (silero-vad needs it); point pip at a CPU torch build to keep the image small.
RUN pip install --no-cache-dir torch==2.13.0 .
ENV RECOBRA_HOST=0.0.0.0 RECOBRA_DATABASE_URL=sqlite:////data/recobra.db
VOLUME /data
EXPOSE 8080
CMD ["recobra", "serve"]
