"""Choosing a model for an index: compare two models side by side, place several on a
quality-vs-speed frontier, tune (build and pick) the fastest one that keeps a share of a
reference's quality. Each embeds the index with the models it measures, then measures them."""
