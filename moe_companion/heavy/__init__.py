"""Heavy experiments (papermill chapters): runner, result store, loaders and experiment modules.

Importing this package is cheap: it imports neither torch nor transformers.  The pieces are

* :mod:`moe_companion.heavy.store` -- :class:`ResultStore`, a resumable JSON-lines unit store;
* :mod:`moe_companion.heavy.device` -- :func:`select_device` (CUDA if available, else CPU);
* :mod:`moe_companion.heavy.runner` -- profiles, parameter validation, cache and papermill runs
  (CLI: ``python -m moe_companion heavy run NAME --profile cpu``);
* :mod:`moe_companion.heavy.contract` -- the one heavy-experiment contract (declared units, ``run_unit``,
  :class:`~moe_companion.heavy.contract.ExperimentResult`);
* :mod:`moe_companion.heavy.registry` -- model / tokenizer / data-set names -> specs and loaders;
* :mod:`moe_companion.heavy.check` -- ``heavy check``: requirements, pre-flight, dry run;
* :mod:`moe_companion.heavy.cluster` -- the units on a Dask cluster (``--workers`` / ``--scheduler``);
* :mod:`moe_companion.heavy.data` -- offline loaders (prose, MiniLM, tweets) and paper-profile loaders;
* experiment modules (``modular``, ``moefication``, ``probes``, ``pretraining``), each with ``PROFILES``.
"""

from .store import ResultStore

__all__ = ["ResultStore"]
