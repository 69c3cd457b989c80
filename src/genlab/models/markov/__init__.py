"""Markov-chain models: the Boltzmann machine (explicit density, approximate: log Z by AIS),
sampled by Gibbs chains; running any model's chain lives in :mod:`.chain`."""
