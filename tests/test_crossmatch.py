"""Cross-match galaxies to MPA-JHU: exact ids, sky positions within a tolerance, unmatched counted."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from spiralarms.errors import SpiralArmsError
from spiralarms.science.crossmatch import crossmatch, galaxy_ids
from spiralarms.science.mpajhu import MPAJHUCatalogue

BASE = 587722981741363294  # a DR7 objid: beyond 2**53, so a double would corrupt it


def catalogue(n=4, with_ids=True, with_positions=True):
    table = pd.DataFrame(
        {
            "z": np.full(n, 0.05),
            "z_warning": np.zeros(n),
            "reliable": np.ones(n),
            "lgm_tot_p50": 10.0 + np.arange(n) / 10,
        }
    )
    if with_ids:
        table.insert(0, "objid", pd.array(BASE + np.arange(n), dtype="Int64"))
    if with_positions:
        table["ra"] = 180.0 + np.arange(n) * 0.1
        table["dec"] = np.full(n, 30.0)
    return MPAJHUCatalogue(table=table, source="test catalogue", id_origin="DR7OBJID" if with_ids else None)


def offset_ra(ra, dec, arcsec):
    """RA shifted so that the separation along the parallel is ``arcsec``."""
    return ra + arcsec / 3600.0 / np.cos(np.radians(dec))


def test_id_match_is_exact():
    galaxies = pd.DataFrame({"dr7objid": [BASE + 2, BASE + 7, BASE], "label": ["1", "2", "3"]})
    result = crossmatch(galaxies, catalogue(), method="id")
    assert result.n_matched == 2 and result.n_unmatched == 1
    assert result.matched["dr7objid"].tolist() == [BASE + 2, BASE]
    np.testing.assert_allclose(result.matched["lgm_tot_p50"], [10.2, 10.0])
    assert result.matched["mpajhu_objid"].tolist() == [BASE + 2, BASE]
    assert result.unmatched["dr7objid"].tolist() == [BASE + 7]
    assert result.n_by_method == {"id": 2, "sky": 0}
    assert set(result.matched["match_method"]) == {"id"}


def test_ids_one_apart_do_not_match():
    """BASE and BASE + 1 are the same double: ids must be compared as integers."""
    assert float(BASE) == float(BASE + 1)
    cat = catalogue(n=1)
    result = crossmatch(pd.DataFrame({"dr7objid": [BASE + 1]}), cat, method="id")
    assert result.n_matched == 0 and result.n_unmatched == 1


def test_prediction_ids_are_text():
    galaxies = pd.DataFrame({"id": [str(BASE + 1), "galaxy_0042", str(BASE + 3)], "label": ["2", "2", "?"]})
    ids = galaxy_ids(galaxies)
    assert ids.tolist()[0] == BASE + 1 and ids.isna().tolist() == [False, True, False]
    result = crossmatch(galaxies, catalogue(), method="id")
    assert result.matched["id"].tolist() == [str(BASE + 1), str(BASE + 3)]
    assert result.unmatched["id"].tolist() == ["galaxy_0042"]
    assert "no integer object id" in result.notes[0]


def test_float_ids_are_refused():
    with pytest.raises(SpiralArmsError, match="floating point"):
        galaxy_ids(pd.DataFrame({"dr7objid": [float(BASE)]}))


def test_sky_match_tolerance_just_inside_and_just_outside():
    cat = catalogue(n=2)
    ra0, dec0 = 180.0, 30.0
    galaxies = pd.DataFrame(
        {
            "name": ["inside", "outside", "far"],
            "ra": [offset_ra(ra0, dec0, 0.9), offset_ra(ra0 + 0.1, dec0, 1.1), 10.0],
            "dec": [dec0, dec0, -20.0],
        }
    )
    result = crossmatch(galaxies, cat, method="sky")
    assert result.matched["name"].tolist() == ["inside"]
    assert result.matched["separation_arcsec"].iloc[0] == pytest.approx(0.9, abs=1e-3)
    assert result.unmatched["name"].tolist() == ["outside", "far"]
    assert result.n_by_method == {"id": 0, "sky": 1}
    wider = crossmatch(galaxies, cat, method="sky", tolerance_arcsec=1.2)
    assert wider.matched["name"].tolist() == ["inside", "outside"]
    assert wider.matched["lgm_tot_p50"].tolist() == pytest.approx([10.0, 10.1])


def test_sky_match_takes_the_nearest_row_and_keeps_order():
    table = catalogue(n=3).table
    table.loc[1, ["ra", "dec"]] = [offset_ra(180.0, 30.0, 0.5), 30.0]
    cat = MPAJHUCatalogue(table, "t", "DR7OBJID")
    galaxies = pd.DataFrame({"ra": [offset_ra(180.0, 30.0, 0.4), 180.2], "dec": [30.0, 30.0]})
    result = crossmatch(galaxies, cat, method="sky")
    assert result.matched["lgm_tot_p50"].tolist() == pytest.approx([10.1, 10.2])


def test_galaxies_without_positions_are_unmatched_not_dropped():
    galaxies = pd.DataFrame({"RA": [180.0, np.nan], "Dec": [30.0, 30.0]})
    result = crossmatch(galaxies, catalogue(), method="sky")
    assert result.n_matched == 1 and result.n_unmatched == 1


def test_auto_uses_ids_then_positions():
    galaxies = pd.DataFrame(
        {
            "dr7objid": [BASE + 1, 8647474690312307154, 8647474690312307155],  # Stripe 82 coadd ids
            "ra": [0.0, offset_ra(180.3, 30.0, 0.3), 50.0],
            "dec": [0.0, 30.0, 50.0],
        }
    )
    result = crossmatch(galaxies, catalogue())
    assert result.n_by_method == {"id": 1, "sky": 1}
    assert result.matched["match_method"].tolist() == ["id", "sky"]
    assert result.matched["lgm_tot_p50"].tolist() == pytest.approx([10.1, 10.3])
    # The id match's position is far off: its separation is reported, not used.
    assert result.matched["separation_arcsec"].iloc[0] > 3600
    assert result.n_unmatched == 1


def test_auto_without_ids_in_the_catalogue_matches_by_sky():
    galaxies = pd.DataFrame({"dr7objid": [BASE], "ra": [180.0], "dec": [30.0]})
    result = crossmatch(galaxies, catalogue(with_ids=False))
    assert result.n_by_method == {"id": 0, "sky": 1}


def test_repeated_catalogue_ids_use_the_first_row():
    table = catalogue(n=3).table
    table["objid"] = pd.array([BASE, BASE, BASE + 1], dtype="Int64")
    result = crossmatch(pd.DataFrame({"dr7objid": [BASE]}), MPAJHUCatalogue(table, "t", "OBJID"), method="id")
    assert result.matched["lgm_tot_p50"].tolist() == [10.0]
    assert any("repeat" in note for note in result.notes)


def test_clashing_column_names_keep_the_galaxy_value():
    galaxies = pd.DataFrame({"dr7objid": [BASE], "z": [0.5]})
    result = crossmatch(galaxies, catalogue(), method="id")
    assert result.matched["z_input"].tolist() == [0.5]
    assert result.matched["z"].tolist() == [0.05]


def test_what_each_method_needs():
    no_positions = pd.DataFrame({"id": [str(BASE)]})
    with pytest.raises(SpiralArmsError, match="'ra'"):
        crossmatch(no_positions, catalogue(), method="sky")
    with pytest.raises(SpiralArmsError, match="RA/DEC"):
        crossmatch(pd.DataFrame({"ra": [1.0], "dec": [1.0]}), catalogue(with_positions=False), method="sky")
    with pytest.raises(SpiralArmsError, match="id column"):
        crossmatch(pd.DataFrame({"ra": [1.0], "dec": [1.0]}), catalogue(), method="id")
    with pytest.raises(SpiralArmsError, match="neither"):
        crossmatch(no_positions, catalogue(with_ids=False))
    with pytest.raises(SpiralArmsError, match="choose"):
        crossmatch(no_positions, catalogue(), method="nearest")
    with pytest.raises(SpiralArmsError, match="positive"):
        crossmatch(no_positions, catalogue(), tolerance_arcsec=0)


def test_counts_are_serialisable():
    result = crossmatch(pd.DataFrame({"dr7objid": [BASE, 1]}), catalogue())
    assert result.to_dict() == {
        "n_matched": 1,
        "n_unmatched": 1,
        "n_by_method": {"id": 1, "sky": 0},
        "method": "auto",
        "tolerance_arcsec": 1.0,
        "notes": [],
    }


def test_galaxy_ids_and_catalogue_ids_share_one_parser():
    """A prediction table's ids: text beyond int64 or not an integer becomes missing, as in
    io.ids.exact_ids(non_integer="missing"); a catalogue's id column refuses the same text."""
    from spiralarms.io.ids import exact_ids

    values = [str(BASE), "galaxy.jpg", str(2**70), None, " 42 "]
    table = pd.DataFrame({"id": values}, index=[10, 11, 12, 13, 14])
    ids = galaxy_ids(table)
    assert ids.index.tolist() == [10, 11, 12, 13, 14]
    assert ids.tolist()[0] == BASE and ids.tolist()[4] == 42 and ids.isna().tolist() == [False, True, True, True, False]
    assert exact_ids(values, "p.parquet", "id", non_integer="missing").isna().tolist() == ids.isna().tolist()
    with pytest.raises(SpiralArmsError, match=r"p.parquet: id column 'id' has a non-integer value 'galaxy.jpg' in row 2"):
        exact_ids(values, "p.parquet", "id")
    with pytest.raises(SpiralArmsError, match="non_integer"):
        exact_ids(values, "p.parquet", "id", non_integer="skip")
    with pytest.raises(SpiralArmsError, match="booleans"):
        galaxy_ids(pd.DataFrame({"dr7objid": [True, False]}))
