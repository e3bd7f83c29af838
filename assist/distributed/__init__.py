"""Scale-out backends: Ray Serve for ASR (`ray_asr`), Redis for live events across front ends (`redis_bus`).

Neither is imported unless its setting asks for it; the default service runs everything in-process.
"""
