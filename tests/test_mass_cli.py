"""`mass` command: Table 4, Figures 11 and 12, matched and unmatched galaxies, JSON summary."""

from __future__ import annotations

import json

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import typer
from astropy.table import Table
from typer.testing import CliRunner

from spiralarms.cli.science import mass
from spiralarms.errors import SpiralArmsError
from spiralarms.science.statistics import TABLE4_CLASSES, TABLE4_COLUMNS
from report_checks import check_report_page

BASE = 587722981741363294
CLASS_P = {"1": 0.04, "2": 0.66, "3": 0.1, "4": 0.05, "5+": 0.05, "?": 0.1}


@pytest.fixture
def app():
    application = typer.Typer()
    application.command()(mass)
    return application


@pytest.fixture
def runner():
    return CliRunner()


def make_mass_fixture(folder, n=1500, shift=1.5, seed=0):
    """A synthetic MPA-JHU FITS table, a labels CSV and a predictions Parquet file.

    Class ``1`` galaxies are ``shift`` dex heavier than the rest. The catalogue has
    one row per galaxy except the last 7 galaxies (unmatched), plus 4 rows failing
    the reliability cuts (one each) for galaxies that are then unmatched too. The
    predictions copy the labels but for 3 rows with an error, one ``4`` (so class
    ``4,5+`` has a single galaxy) and no ``?``.
    """
    rng = np.random.default_rng(seed)
    ids = BASE + np.arange(n, dtype=np.int64)
    ra = rng.uniform(120.0, 240.0, n)
    dec = rng.uniform(0.0, 60.0, n)
    labels = rng.choice(list(CLASS_P), size=n, p=list(CLASS_P.values()))
    mass_values = rng.normal(10.4, 0.45, n) + np.where(labels == "1", shift, 0.0)
    in_catalogue = np.arange(n) < n - 7
    columns = {
        "SPECOBJID": 299489676975171584 + np.arange(n, dtype=np.int64),
        "DR7OBJID": ids,
        "RA": ra,
        "DEC": dec,
        "Z": rng.uniform(0.02, 0.1, n),
        "Z_WARNING": np.zeros(n, dtype=np.int16),
        "RELIABLE": np.ones(n, dtype=np.int16),
        "LGM_TOT_P50": mass_values,
    }
    columns["RELIABLE"][0] = 0
    columns["Z_WARNING"][1] = 4
    columns["LGM_TOT_P50"][2] = -9999.0
    columns["Z"][3] = 0.0
    mpajhu = folder / "galspec_dr10.fits"
    Table({k: v[in_catalogue] for k, v in columns.items()}).write(mpajhu)

    labels_path = folder / "selected.csv"
    pd.DataFrame({"dr7objid": ids, "ra": ra, "dec": dec, "label": labels, "label_original": labels}).to_csv(
        labels_path, index=False
    )

    predicted = labels.copy()
    predicted[predicted == "4"] = "2"
    predicted[predicted == "5+"] = "3"
    predicted[predicted == "?"] = "2"
    predicted[10] = "4"
    errors = np.array([""] * n, dtype=object)
    errors[[20, 21, 22]] = "truncated JPEG"
    frame = pd.DataFrame({"id": ids.astype(str), "file": [f"/img/{i}.jpg" for i in ids]})
    for c in ("1", "2", "3", "4", "5+", "?"):
        frame[f"p_{c}"] = np.where(predicted == c, 0.9, 0.02)
    frame["label"] = pd.Series(predicted, dtype=object).where(errors == "", None)
    frame["error"] = errors
    predictions_path = folder / "v2m.parquet"
    frame.to_parquet(predictions_path, index=False)
    return {
        "mpajhu": mpajhu,
        "labels": labels_path,
        "predictions": predictions_path,
        "columns": columns,
        "ids": ids,
        "label_values": labels,
        "n_unmatched": 7 + 4,
    }


@pytest.fixture
def fixture(tmp_path):
    return make_mass_fixture(tmp_path)


def invoke(runner, app, fixture, out, *extra):
    args = [str(fixture["labels"]), str(fixture["predictions"]), "--mpajhu", str(fixture["mpajhu"]), "--out", str(out)]
    return runner.invoke(app, [*args, *extra])


def test_writes_table4_figures_and_matched_rows(runner, app, fixture, tmp_path):
    out = tmp_path / "mass"
    result = invoke(runner, app, fixture, out, "--json")
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "table4.csv", dtype={"class": str})
    assert list(table.columns) == list(TABLE4_COLUMNS)
    assert table["source"].tolist() == ["labels"] * 5 + ["v2m"] * 5
    assert table["class"].tolist() == list(TABLE4_CLASSES) * 2

    n = len(fixture["ids"])
    labels = table[table["source"] == "labels"].set_index("class")
    assert labels["n"].sum() == n - fixture["n_unmatched"]
    # The shifted class stands out; unshifted ones with enough galaxies do not (the
    # whole sample holds the shifted class too, so keep it small: 4 %).
    assert labels.loc["1", "ks_p"] < 1e-6 and labels.loc["1", "t_stat"] > 0
    assert labels.loc["2", "ks_p"] > 0.05 and labels.loc["3", "ks_p"] > 0.05 and labels.loc["?", "ks_p"] > 0.05
    np.testing.assert_allclose(labels["t_p_one_sided"], labels["t_p_two_sided"] / 2, rtol=1e-9)
    np.testing.assert_allclose(labels["welch_p_one_sided"], labels["welch_p_two_sided"] / 2, rtol=1e-9)
    predictions = table[table["source"] == "v2m"].set_index("class")
    assert predictions.loc["4,5+", "n"] == 1 and predictions.loc["?", "n"] == 0
    assert np.isnan(predictions.loc["?", "ks_p"])

    matched = pd.read_parquet(out / "matched.parquet")
    for column in ("source", "id", "class", "label", "lgm_tot_p50", "z", "match_method", "separation_arcsec"):
        assert column in matched.columns
    assert len(matched) == labels["n"].sum() + predictions["n"].sum()
    assert set(matched["match_method"]) == {"id"}
    first = matched[matched["source"] == "labels"].iloc[0]
    assert first["id"] == str(BASE + 4)  # rows 0-3 fail one cut each
    assert first["lgm_tot_p50"] == pytest.approx(fixture["columns"]["LGM_TOT_P50"][4])
    # Labels carry positions, so an id match reports its separation; predictions have none.
    assert (matched.loc[matched["source"] == "labels", "separation_arcsec"] < 1e-3).all()
    assert matched.loc[matched["source"] == "v2m", "separation_arcsec"].isna().all()

    unmatched = pd.read_csv(out / "unmatched.csv", dtype={"id": str})
    expected = {str(BASE + i) for i in [0, 1, 2, 3, *range(n - 7, n)]}
    assert set(unmatched.loc[unmatched["source"] == "labels", "id"]) == expected
    assert (out / "table4.md").read_text().startswith("| | m | Sample size")


def test_json_summary_counts(runner, app, fixture, tmp_path):
    out = tmp_path / "mass"
    result = invoke(runner, app, fixture, out, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary == json.loads((out / "summary.json").read_text())
    n = len(fixture["ids"])
    assert summary["mpajhu"]["filters"]["removed"] == {
        "RELIABLE != 0": 1,
        "Z_WARNING == 0": 1,
        "LGM_TOT_P50 != -9999": 1,
        "Z > 0": 1,
    }
    assert summary["mpajhu"]["filters"]["n_input"] == n - 7
    labels, predictions = summary["sources"]["labels"], summary["sources"]["v2m"]
    assert labels["kind"] == "labels" and predictions["kind"] == "predictions"
    assert labels["n_input"] == n and labels["n_excluded_errors"] == 0
    assert labels["n_unmatched"] == fixture["n_unmatched"]
    assert labels["n_matched"] == n - fixture["n_unmatched"] == labels["n_matched_by_id"]
    assert predictions["n_excluded_errors"] == 3
    for s in (labels, predictions):
        assert s["n_input"] == s["n_excluded_errors"] + s["n_without_class"] + s["n_matched"] + s["n_unmatched"]
        assert sum(s["counts"].values()) == s["n_matched"]
    assert predictions["counts"]["4,5+"] == 1 and predictions["counts"]["?"] == 0
    assert summary["match"] == {"method": "auto", "tolerance_arcsec": 1.0}


def test_figures_render_with_tiny_and_empty_classes(runner, app, fixture, tmp_path):
    out = tmp_path / "mass"
    result = invoke(runner, app, fixture, out)
    assert result.exit_code == 0, result.output
    for name in ("figure11.png", "figure12.png"):
        path = out / name
        assert path.stat().st_size > 10_000
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 200
    page = check_report_page(out)
    assert "figure11.png" in (out / "report.md").read_text() and "paper K-S D" in page


def test_plain_output_prints_table4_and_counts(runner, app, fixture, tmp_path):
    result = invoke(runner, app, fixture, tmp_path / "mass")
    assert result.exit_code == 0, result.output
    assert "| labels | 1 |" in result.stdout
    assert "LGM_TOT_P50 != -9999: removed 1" in result.stdout
    assert "v2m (predictions)" in result.stdout and "3 with errors" in result.stdout


def test_sky_match_and_positions_for_predictions(runner, app, fixture, tmp_path):
    out = tmp_path / "mass"
    args = [str(fixture["labels"]), str(fixture["predictions"]), "--mpajhu", str(fixture["mpajhu"])]
    args += ["--out", str(out), "--match", "sky", "--tolerance", "0.5", "--positions", str(fixture["labels"]), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for name in ("labels", "v2m"):
        assert summary["sources"][name]["n_matched_by_sky"] == summary["sources"][name]["n_matched"] > 0
        assert summary["sources"][name]["n_matched_by_id"] == 0
    assert summary["sources"]["labels"]["n_unmatched"] == fixture["n_unmatched"]
    assert summary["match"] == {"method": "sky", "tolerance_arcsec": 0.5}


def test_dr7_pair_given_twice(runner, app, fixture, tmp_path):
    columns = fixture["columns"]
    keep = np.arange(len(columns["Z"])) >= 4
    obj = np.asarray(fixture["ids"])[keep] - BASE + 94
    ones = np.ones(len(obj), dtype=np.int64)
    photoid = np.stack([752 * ones, 40 * ones, ones, 263 * ones, obj], axis=1)
    info = tmp_path / "gal_info_dr7_v5_2.fit"
    totlgm = tmp_path / "totlgm_dr7_v5_2.fit"
    Table(
        {
            "PHOTOID": photoid.astype(np.int32),
            "RA": columns["RA"][keep],
            "DEC": columns["DEC"][keep],
            "Z": columns["Z"][keep],
            "Z_WARNING": columns["Z_WARNING"][keep],
        }
    ).write(info)
    Table({"MEDIAN": columns["LGM_TOT_P50"][keep]}).write(totlgm)
    out = tmp_path / "mass"
    args = [str(fixture["labels"]), "--mpajhu", str(info), "--mpajhu", str(totlgm), "--out", str(out), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mpajhu"]["id_column"] == "PHOTOID"
    assert summary["mpajhu"]["filters"]["removed"]["RELIABLE != 0"] is None
    assert summary["sources"]["labels"]["n_matched_by_id"] == len(fixture["ids"]) - 4


def test_bad_input_raises_one_line_errors(runner, app, fixture, tmp_path):
    result = invoke(runner, app, fixture, tmp_path / "m", "--match", "nearest")
    assert isinstance(result.exception, SpiralArmsError) and "--match" in str(result.exception)

    no_label = tmp_path / "no_label.csv"
    pd.DataFrame({"dr7objid": [BASE]}).to_csv(no_label, index=False)
    result = runner.invoke(app, [str(no_label), "--mpajhu", str(fixture["mpajhu"]), "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, SpiralArmsError)
    assert "'label'" in str(result.exception) and str(no_label) in str(result.exception)

    selected_34 = tmp_path / "selected_34.csv"
    pd.DataFrame({"dr7objid": [BASE + 5, BASE + 6], "label": ["3,4", "2"], "label_original": ["4", "2"]}).to_csv(
        selected_34, index=False
    )
    result = runner.invoke(
        app, [str(selected_34), "--mpajhu", str(fixture["mpajhu"]), "--out", str(tmp_path / "m"), "--json"]
    )
    assert result.exit_code == 0, result.output  # label_original holds the six-class label
    assert json.loads(result.stdout)["sources"]["labels"]["counts"] == {"1": 0, "2": 1, "3": 0, "4,5+": 1, "?": 0}

    merged_34 = tmp_path / "merged.csv"
    pd.DataFrame({"dr7objid": [BASE], "label": ["3,4"]}).to_csv(merged_34, index=False)
    result = runner.invoke(app, [str(merged_34), "--mpajhu", str(fixture["mpajhu"]), "--out", str(tmp_path / "m")])
    assert isinstance(result.exception, SpiralArmsError) and "'3,4'" in str(result.exception)

    result = runner.invoke(app, [str(fixture["labels"]), "--out", str(tmp_path / "m")])
    assert result.exit_code == 2  # --mpajhu is required


def test_help_names_the_options(runner, app):
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for option in ("--mpajhu", "--match", "--tolerance", "--out", "--json"):
        assert option in result.stdout


def test_mpajhu_fetch_downloads_the_dr7_pair(runner, tmp_path, monkeypatch):
    from spiralarms.cli.science import fetch_mpajhu as mpajhu_fetch
    from spiralarms.acquire import mpajhu as mpajhu_module

    served = tmp_path / "served"
    served.mkdir()
    for role, name in (("info", "gal_info_dr7_v5_2.fit"), ("mass", "totlgm_dr7_v5_2.fit")):
        (served / name).write_bytes(name.encode() * 10)
        monkeypatch.setitem(mpajhu_module.MPAJHU_DR7_URLS, role, (served / name).as_uri())
    application = typer.Typer()
    application.command()(mpajhu_fetch)
    result = runner.invoke(application, [str(tmp_path / "cache"), "--json"])
    assert result.exit_code == 0, result.output
    files = json.loads(result.stdout)["files"]
    assert [p.split("/")[-1] for p in files] == ["gal_info_dr7_v5_2.fit", "totlgm_dr7_v5_2.fit"]
    assert (tmp_path / "cache" / "totlgm_dr7_v5_2.fit").read_bytes() == b"totlgm_dr7_v5_2.fit" * 10
    result = runner.invoke(application, [str(tmp_path / "cache"), "--source", "ftp"])
    assert isinstance(result.exception, SpiralArmsError)
