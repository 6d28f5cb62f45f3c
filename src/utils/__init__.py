"""What every layer may use: user errors, atomic file writes, devices and processes.

- `errors`: `UserError` (one line, no traceback, exit 2) and the value checks that raise it.
- `io`: `write_atomically` / `atomic_output`, files never left half written.
- `devices`: CPU or GPU, loader workers by default, the launching process.
- `console`: a progress bar for long steps, and the third-party messages filtered out.
"""

from src.utils.console import progress, quiet_known_messages
from src.utils.devices import default_num_workers, is_launcher_process, runs_on_cpu
from src.utils.errors import UserError, exit_on_user_error, require_int, require_number
from src.utils.io import atomic_output, write_atomically

__all__ = [
    "UserError",
    "atomic_output",
    "default_num_workers",
    "exit_on_user_error",
    "is_launcher_process",
    "progress",
    "quiet_known_messages",
    "require_int",
    "require_number",
    "runs_on_cpu",
    "write_atomically",
]
