"""Measuring retrieval quality: ranking metrics, query sets with judgements (and evaluate() of a
searcher on one), and the label-free estimate of a model against a reference. Pure computation
over rankings and vectors: nothing here opens an index or loads a model."""
