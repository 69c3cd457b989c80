"""``genlab serve``: a local web application over a runs folder.

It lists the runs (live while they train), draws from a run's model on demand, explores its
latent space and renders the comparison report, and never writes into the runs folder. The
package needs the ``serve`` extra (Starlette and uvicorn); nothing but the command line
imports it, and importing it does no torch work.

Modules: :mod:`.app` (routes), :mod:`.state` (what they share), :mod:`.responses` (JSON,
PNG and one-line failures), :mod:`.safety` (Host and method checks, paths inside the
runs folder), :mod:`.params` (bounded query parameters), :mod:`.limits` (the bounds),
:mod:`.problems` (one-line JSON errors), :mod:`.queue` (the bounded compute queue),
:mod:`.cache` (models within a byte budget), :mod:`.loaded` (a run's model and test images
as the worker holds them), :mod:`.runs_index` (the runs list and a run's record),
:mod:`.capabilities` (what a run's family can draw), :mod:`.sample_checks` (a drawing
request against the model), :mod:`.drawing` (sample and chain pictures), :mod:`.latent`
(the latent explorer), :mod:`.compare_view` (the comparison report) and :mod:`.server`
(uvicorn).
"""
