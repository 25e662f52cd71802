"""Executing notebooks with Papermill: a params file into its run folder, the kernel it runs in.

:func:`execute_params` is what ``snnbp run`` and every ``snnbp sweep`` task do for one params file:
check it, skip a run that is up to date, execute its notebook (:func:`execute_notebook`) into
``results/<profile>/<name>`` with the parameters injected, and report the run's headline metric.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from snnbp.config import NOT_IDENTITY, ConfigError, EvalParams, load_params, params_to_dict, profile_of, read_yaml
from snnbp.io import atomic_write_text
from snnbp.paths import notebooks_dir, results_dir, without_root

DATA_ENV = ("SNNBP_DATA_DIR", "SNNBP_DATA_ROOT")


HEADLINES = {"yoso": ("test_accuracy", "energy_per_image_uj", "power_mw", "latency_ms")}
"""The metrics ``snnbp run`` prints at the end, per method (the first is the headline; default ``test_accuracy``)."""


def run_dir_for(params_path: Path, name: str, profile: str | None = None) -> Path:
    """``results/<profile>/<name>``; the profile defaults to the params file's folder name."""
    return results_dir() / (profile or Path(params_path).resolve().parent.name) / name


def headline(run_dir: Path, method: str) -> str | None:
    """``test_accuracy=0.9731`` (and, for an evaluation, its other headline numbers) from the run
    folder's ``metrics.json``; None when the folder holds no such value."""
    try:
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(metrics, dict):
        return None
    parts = [
        f"{key}={metrics[key]:.4f}"
        for key in HEADLINES.get(method, ("test_accuracy",))
        if isinstance(metrics.get(key), (int, float)) and not isinstance(metrics.get(key), bool)
    ]
    return " ".join(parts) or None


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """Set environment variables for the block (the kernel inherits them), then restore them."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def absolute_data_env() -> dict[str, str]:
    """The data folders of the environment as absolute paths (the kernel's working directory is notebooks/)."""
    return {key: str(Path(os.environ[key]).resolve()) for key in DATA_ENV if os.environ.get(key)}


@contextlib.contextmanager
def _kernel_manager() -> Iterator[type]:
    """A kernel manager class whose kernels talk over local (IPC) sockets in a private temporary
    folder, not over TCP without encryption (and so do not warn about it); TCP where IPC sockets
    do not exist (Windows).

    While the context is open, the first interrupt (Ctrl-C, SIGINT) of this process is passed on
    to the running kernel, which starts in a session of its own and would not see it: the cell
    stops at once (a training run records itself as interrupted and keeps its checkpoint) instead
    of after the cell. A second interrupt stops this process as usual.
    """
    from jupyter_client.manager import AsyncKernelManager

    started: list[Any] = []

    def forward(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, previous)
        for manager in started:
            pid = getattr(getattr(manager, "provisioner", None), "pid", None)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGINT)

    previous = signal.getsignal(signal.SIGINT)
    forwarding = os.name == "posix" and _in_main_thread()
    if forwarding:
        signal.signal(signal.SIGINT, forward)
    try:
        if os.name != "posix":
            yield AsyncKernelManager
            return
        with tempfile.TemporaryDirectory(prefix="snnbp-kernel-") as sockets:

            class IpcKernelManager(AsyncKernelManager):
                def __init__(self, **kwargs: Any) -> None:
                    kwargs.setdefault("transport", "ipc")
                    kwargs.setdefault("ip", os.path.join(sockets, "kernel"))
                    super().__init__(**kwargs)
                    started.append(self)

            yield IpcKernelManager
    finally:
        if forwarding:
            signal.signal(signal.SIGINT, previous)


def _in_main_thread() -> bool:
    """True in the main thread (the only one where Python lets a signal handler be set)."""
    import threading

    return threading.current_thread() is threading.main_thread()


def execute_notebook(
    notebook: Path, output: Path, parameters: dict[str, Any] | None = None, *, progress: bool = True, stream: Any = None
) -> Path:
    """Execute ``notebook`` with Papermill into ``output``, through a temporary file.

    The executed notebook is written as ``.<name>.running.ipynb`` beside ``output`` and moved over
    ``output`` only when every cell ran; on an error it is kept as ``<stem>.failed.ipynb`` (its
    path is the error's ``notebook_path``) and ``output`` is left as it was. The kernel runs in
    ``notebooks/`` (as in JupyterLab) over IPC sockets (:func:`_kernel_manager`).

    Args:
        progress: Papermill's bar over the cells.
        stream: a file that receives what the notebook writes to stderr while it runs (the
            per-epoch lines), e.g. ``sys.stdout``; None: nothing is streamed.

    Raises:
        papermill.exceptions.PapermillExecutionError: a cell raised (``ename``, ``evalue``).
    """
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.stem}.running.ipynb")
    failed = output.with_name(f"{output.stem}.failed.ipynb")
    try:
        with _kernel_manager() as manager:
            papermill.execute_notebook(
                str(notebook),
                str(partial),
                parameters=parameters or {},
                cwd=str(notebooks_dir()),
                progress_bar=progress,
                kernel_name="python3",
                kernel_manager_class=manager,
                stderr_file=stream,
            )
    except BaseException as error:
        if partial.exists():
            _store_portable(partial)
            os.replace(partial, failed)
            error.notebook_path = failed  # type: ignore[attr-defined]
        raise
    _store_portable(partial)
    os.replace(partial, output)
    failed.unlink(missing_ok=True)
    return output


def _store_portable(notebook: Path) -> None:
    """Rewrite an executed notebook so that the paths it holds (Papermill's input and output paths,
    the injected ``output_dir``, printed paths) are relative to the project root, not this machine's."""
    text = notebook.read_text()
    portable = without_root(text)
    if portable != text:
        atomic_write_text(notebook, portable)


def _evaluation_up_to_date(run_dir: Path, params: EvalParams) -> bool:
    """True when ``run_dir`` holds a completed evaluation of the same params and the same input files.

    Anything else is left to the evaluation itself, which refuses other params or changed inputs.
    """
    from snnbp.paths import from_record
    from snnbp.yoso.study import identity_params, record_params, sha256_file

    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(record, dict) or record.get("status") != "completed":
        return False
    stored = record.get("params")
    same = (
        {k: v for k, v in params_to_dict(params).items() if k not in NOT_IDENTITY},
        {k: v for k, v in record_params(params).items() if k not in NOT_IDENTITY},
        identity_params(params),
    )
    if not isinstance(stored, dict) or {k: v for k, v in stored.items() if k not in NOT_IDENTITY} not in same:
        return False  # the params, with their paths as the file writes them or in the records' form
    inputs = record.get("inputs") or {}
    for entry in inputs.values() if isinstance(inputs, dict) else [None]:
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            return False
        path = from_record(entry["path"])
        if not path.is_file() or sha256_file(path) != entry.get("sha256"):
            return False
    return True


def up_to_date(run_dir: Path, params: Any) -> bool:
    """True when ``run_dir`` holds a completed run of ``params`` (nothing to do).

    Raises:
        snnbp.train.CheckpointMismatchError, snnbp.train.RunFolderError: a training run folder
            holds a record or checkpoint of other params, or results without a record.
    """
    if isinstance(params, EvalParams):
        return _evaluation_up_to_date(run_dir, params)
    from snnbp.run_folder import inspect_run, params_hash

    return inspect_run(run_dir, params_hash(params_to_dict(params))).state == "completed"


def execute_params(
    params_path: Path,
    *,
    output_dir: Path | None = None,
    progress: bool = True,
    report: Callable[[str], None] | None = None,
    stream: Any = None,
    device: str | None = None,
) -> Path:
    """Run the notebook named in a params file through Papermill; return the executed notebook's path.

    Everything is checked before a kernel starts: every params value (:func:`snnbp.config.load_params`),
    the notebook, and the run folder, which is locked for the whole run; a folder holding another
    run's record or checkpoint is refused, and one holding a completed run of the same params is
    left exactly as it is (``report`` is told so). The YAML's top-level keys (for an evaluation,
    every key of its ``StudyParams``, the file's values over the defaults, so that no key falls back
    to the notebook's smoke literals), ``profile`` (the file's ``profile``, else its folder name)
    and ``output_dir`` (absolute) are injected as parameters; the executed notebook is written into the run folder through a temporary file
    (:func:`execute_notebook`), with ``stream`` receiving the notebook's per-epoch lines while it
    runs (the kernel gets ``TQDM_DISABLE=1``: no bars in the stored notebook). A relative
    ``output_dir`` (and ``SNNBP_DATA_DIR`` / ``SNNBP_DATA_ROOT``) is taken from the current
    directory, not from the notebook's. ``device`` (``snnbp run --device``) replaces the file's
    ``train.device`` in the injected ``train`` section; the device is checked here
    (:func:`snnbp.devices.run_device`), so that CUDA asked for where torch sees none is refused
    before a kernel starts.

    Raises:
        ConfigError: a bad params file (naming file, key, value), or a device this machine lacks.
        snnbp.train.RunFolderError: the run folder holds other results.
        snnbp.io.RunLockedError: another run is writing into the folder.
        papermill.exceptions.PapermillExecutionError: a cell of the notebook raised.
    """
    from snnbp.io import LOCK_ENV, remove_stale_temporaries, run_lock

    params_path = Path(params_path)
    params = load_params(params_path)
    if isinstance(params, EvalParams):
        if device is not None:
            raise ConfigError(
                f"{params_path}: --device applies to training runs; the {params.method!r} evaluation "
                "has no device setting"
            )
    else:
        from snnbp.devices import run_device

        run_device(params, device, source=str(params_path))
    profile = profile_of(params, params_path)
    run_dir = Path(output_dir).resolve() if output_dir else run_dir_for(params_path, params.name, profile)
    notebook = notebooks_dir() / params.notebook
    if not notebook.is_file():
        raise ConfigError(f"{params_path}: key 'notebook' names {notebook}, which does not exist")
    output = run_dir / params.notebook
    with run_lock(run_dir):
        remove_stale_temporaries(run_dir)
        output.with_name(f".{output.stem}.running.ipynb").unlink(missing_ok=True)
        if up_to_date(run_dir, params):
            if report is not None:
                report(f"up to date: {run_dir} holds a completed run of these params; nothing changed")
            return output
        values = read_yaml(params_path)
        if isinstance(params, EvalParams):
            # every key of the evaluation, the file's over the evaluation's defaults: a key the file
            # leaves out must not fall back to the notebook's literals (the smoke profile)
            values = {**params_to_dict(params), **values}
        injected = dict(values, profile=profile, output_dir=str(run_dir))
        if device is not None:
            injected["train"] = {**injected["train"], "device": device}
        with environment(**{LOCK_ENV: str(run_dir), "TQDM_DISABLE": "1"}, **absolute_data_env()):
            execute_notebook(notebook, output, injected, progress=progress and stream is None, stream=stream)
    return output
