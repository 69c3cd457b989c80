"""Models with a latent code: autoencoders (no density) and variational autoencoders
(explicit density, approximate: the ELBO and the importance-weighted bound)."""
