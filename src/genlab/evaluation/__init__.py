"""Evaluation: one metric registry over one EvalContext, feature network, probes, fine-tuning."""
