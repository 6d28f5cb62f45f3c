"""One module per source of networks, each with a `SOURCE` (a `NetworkSource`); the module's
name is the `model.source` value that selects it."""
