"""``ledgerflow run|resume --backend``: a run started on the cluster resumes in-process."""

from __future__ import annotations

from pathlib import Path

from tests.workflow.test_cli import APP, fields, ledgerflow, one_error_line

from .conftest import RayCluster


def test_run_on_ray_then_resume_locally(ray_cluster: RayCluster, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    backend = f"ray:{ray_cluster.address}"
    done = ledgerflow(
        tmp_path,
        "run",
        "app.py",
        "--input",
        "cats",
        "--run-id",
        "r1",
        "--backend",
        backend,
        timeout=180,
    )
    assert done.returncode == 3, done.stderr
    (waiting,) = fields(done.stdout)["waiting"]
    request_id = waiting.split()[0]
    done = ledgerflow(
        tmp_path,
        "resume",
        "app.py",
        "r1",
        "--respond",
        f'{request_id}="yes"',
        "--backend",
        "local",
    )
    assert done.returncode == 0, done.stderr
    assert fields(done.stdout)["output"] == ["yes: publish 'a post about cats'?"]


def test_a_bad_backend_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP)
    for bad in ("rya", "ray:", "local:x"):
        done = ledgerflow(tmp_path, "run", "app.py", "--input", "cats", "--backend", bad)
        one_error_line(done, 2, f"--backend {bad!r}", "ray:ADDRESS")
