"""Model loading shared by the service: packaged weights, local folders or hub ids."""
