"""The sweep engine: model specs crossed with grid axes, or a search over ranges, as one Optuna
study whose trials are ordinary run directories.

Its parts, each a module: ``space`` (what varies), ``definition`` (the `Sweep`), ``trials``
(how a study's trials are read), ``storage`` (the study and its database), ``worker`` (the
processes that train the trials) and ``results`` (one row per trial, ``sweep.csv``).
"""
