"""Scale-out backends: Ray Serve for ASR (`ray_asr`) and the analysers' embedder (`ray_embed`), joined through
`ray_cluster`; Redis for live events across front ends (`redis_bus`).

None is imported unless its setting asks for it; the default service runs everything in-process.
"""
