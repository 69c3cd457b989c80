"""Explicit density, tractable: change-of-variables models (normalizing flows). An invertible
network maps images to latents with a simple prior; the density follows exactly from the
log-determinant of its Jacobian, and sampling is one pass of the inverse."""
