"""The subscriber list: model, store, import/export, consent tokens and preferences.

Table owners: ``store`` (``subscribers``), ``events`` (``events``, the consent record),
``suppressions`` (``suppressions``); ``stats`` adds their counts up for ``subscribers stats``.
"""
