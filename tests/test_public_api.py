"""``import spiralarms``: the main entry points resolve lazily; the CLI's choices match the library's."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

import spiralarms

ENTRY_POINTS = {
    "select_clean_sample": "spiralarms.catalog.selection",
    "read_clean_sample": "spiralarms.catalog.selection",
    "synthesize_dataset": "spiralarms.data.synthetic",
    "train": "spiralarms.training.train",
    "load_model": "spiralarms.models.loading",
    "predict": "spiralarms.predictions.engine",
    "evaluate_run": "spiralarms.evaluation.evaluate",
    "explain_run": "spiralarms.explain.run",
    "run_mass": "spiralarms.science.mass",
}


@pytest.mark.parametrize("name", sorted(ENTRY_POINTS))
def test_each_entry_point_resolves_to_its_function(name):
    import importlib

    assert name in spiralarms.__all__ and name in dir(spiralarms)
    value = getattr(spiralarms, name)
    assert value is getattr(importlib.import_module(ENTRY_POINTS[name]), name)
    assert callable(value) and "Parameters" in (value.__doc__ or "")


@pytest.mark.parametrize("package", ["spiralarms.data", "spiralarms.models"])
def test_subpackages_export_what_their_docs_show(package):
    import importlib

    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name).__module__.startswith(package), name


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        spiralarms.trian  # noqa: B018


def test_import_spiralarms_and_the_cli_do_not_import_torch_or_pandas():
    code = "import sys, spiralarms, spiralarms.cli; print(sorted({'torch', 'pandas', 'lightning'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_training_does_not_import_evaluation():
    code = ("import sys, spiralarms.training.train, spiralarms.cli.train; "
            "print(sorted(m for m in sys.modules if m.startswith('spiralarms.evaluation')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cli_choices_are_the_librarys():
    from spiralarms.acquire.sources import GZ2_TABLES
    from spiralarms.catalog.readers import SCHEMAS
    from spiralarms.cli import common
    from spiralarms.explain.faithfulness import DELETION_BASELINES
    from spiralarms.science.crossmatch import MATCH_METHODS

    assert set(typing.get_args(common.CatalogSchema)) == {*SCHEMAS, "auto"}
    assert set(typing.get_args(common.GZ2Table)) == set(GZ2_TABLES)
    assert set(typing.get_args(common.MatchMethod)) == set(MATCH_METHODS)
    assert set(typing.get_args(common.DeletionBaseline)) == set(DELETION_BASELINES)


def test_a_bad_choice_is_a_one_line_error_with_exit_1(tmp_path):
    from typer.testing import CliRunner

    from spiralarms.cli import app

    result = CliRunner().invoke(app, ["fetch-mpajhu", str(tmp_path), "--source", "ftp"])
    assert result.exit_code == 1
    assert result.stderr == "error: --source 'ftp': choose dr7 or skyserver\n"
