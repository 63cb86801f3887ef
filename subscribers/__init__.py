"""The subscriber list: model, store, import/export, consent tokens and preferences."""
