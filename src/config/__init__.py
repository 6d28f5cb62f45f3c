"""From Hydra config to checked values and objects.

- `checks`: `check_train_config`, every mistake in a training config as one line, before data is
  read.
- `resolvers`: `${scaled_lr:...}`, the learning rate that follows the batch size.
- `compose`: a config composed in-process as an entry point gets it (tests, benchmarks).
- `instantiation`: config groups to objects, plain values.
- `hparams`: the columns of the loggers' hparams tables.
"""
